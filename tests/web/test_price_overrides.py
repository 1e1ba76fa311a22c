"""Price overrides: a provider that is not a string is refused, not read as "any"."""

from __future__ import annotations

import pytest

PRICE = "/api/v1/billing/prices/mystery-9000"
RATES = {"input_per_mtok": "2.5", "output_per_mtok": "10"}


@pytest.mark.parametrize("provider", [{}, [], 0, False, 7, ["openai"]])
async def test_a_provider_that_is_not_a_string_is_refused(gw, provider):
    r = await gw.client.put(PRICE, json={**RATES, "provider": provider}, headers=gw.headers())
    assert r.status_code == 422, r.text
    assert r.json()["error"]["param"] == "provider"
    assert (await gw.get("/api/v1/billing/prices")).json()["data"] == []


@pytest.mark.parametrize(("provider", "stored"), [(None, None), ("", None), ("openai", "openai")])
async def test_absent_or_empty_provider_means_any(gw, provider, stored):
    r = await gw.client.put(PRICE, json={**RATES, "provider": provider}, headers=gw.headers())
    assert r.status_code == 200, r.text
    [row] = (await gw.get("/api/v1/billing/prices")).json()["data"]
    assert row["provider"] == stored
