"""Every response of a realistic session matches what /openapi.json declares for its
route and status: body, content type and the request-id header.

Schemathesis (``test_schemathesis.py``) fuzzes every route, but with generated ids most
invoice routes only ever answer 404 there, and usage is never priced. This walks the
happy paths too — plans, quota, priced and unpriced usage, invoices through their whole
lifecycle, exports, prices, providers — so the success bodies are checked as well.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jsonschema_rs
import pytest

from meterline.config import Settings
from meterline.container import build_container
from meterline.services.bootstrap import initialize
from meterline.web.app import create_app

B = "/api/v1/billing"


class Client:
    def __init__(self, client: httpx.AsyncClient, key: str) -> None:
        self.client = client
        self.auth = {"Authorization": f"Bearer {key}"}

    async def __call__(self, method: str, path: str, body: Any = None, **kw: Any) -> httpx.Response:
        headers = {**self.auth, **kw.pop("headers", {})}
        if body is not None:
            kw["json"] = body
        return await self.client.request(method, path, headers=headers, **kw)


@pytest.fixture
async def api(tmp_path, clock) -> AsyncIterator[Client]:
    """sqlite+memory only: this is about shapes, not storage (the other suites are)."""
    settings = Settings(home=tmp_path, database_url=f"sqlite:///{tmp_path}/t.db", secret_key="t")
    container = await build_container(settings, clock=clock)
    init = await initialize(container.accounts)
    transport = httpx.ASGITransport(app=create_app(container=container))
    async with httpx.AsyncClient(transport=transport, base_url="http://meterline") as client:
        yield Client(client, init.live_key or "")
    await container.close()


def _param(match: re.Match[str]) -> str:
    return ".+" if match.group(1) == "model" else "[^/]+"  # {model:path} spans slashes


class Conformance:
    """Checks responses against the app's own OpenAPI document."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.routes = [
            (re.compile("^" + re.sub(r"\{(\w+)\}", _param, p) + "$"), p) for p in spec["paths"]
        ]
        self.seen: set[tuple[str, str, int]] = set()

    def template(self, path: str) -> str:
        # Static paths first (/invoices/export before /invoices/{invoice_id}).
        matches = [t for rx, t in self.routes if rx.match(path)]
        assert matches, f"{path} is not in the OpenAPI document"
        return min(matches, key=lambda t: t.count("{"))

    def check(self, response: httpx.Response) -> httpx.Response:
        method = response.request.method.lower()
        path = self.template(response.request.url.path)
        operation = self.spec["paths"][path].get(method)
        assert operation is not None, f"{method.upper()} {path} undocumented"
        documented = operation["responses"].get(str(response.status_code))
        assert documented is not None, (
            f"{method.upper()} {path} answered {response.status_code}, documented: "
            f"{sorted(operation['responses'])}: {response.text}"
        )
        for name, header in documented.get("headers", {}).items():
            if header.get("required"):
                assert name.lower() in response.headers, f"{path}: no {name} header"
        self.seen.add((method.upper(), path, response.status_code))
        content = documented.get("content")
        if not content:
            assert not response.content, f"{path}: {response.status_code} has a body"
            return response
        media = response.headers["content-type"].split(";")[0].strip()
        assert media in content, f"{path}: {media} not in {sorted(content)}"
        if media != "application/json":
            return response
        schema = {**content[media]["schema"], "components": self.spec["components"]}
        validator = jsonschema_rs.Draft202012Validator(schema, validate_formats=True)
        errors = [
            f"{e.message} at {list(e.instance_path)}"
            for e in validator.iter_errors(response.json())
        ]
        assert not errors, (
            f"{method.upper()} {path} {response.status_code}: {errors}\n{response.text}"
        )
        return response


async def test_a_whole_session_matches_the_openapi_document(api: Client) -> None:
    spec = (await api("GET", "/openapi.json")).json()
    c = Conformance(spec)

    async def get(path: str, **kw: Any) -> httpx.Response:
        return await api("GET", path, **kw)

    async def post(path: str, body: Any = None, **kw: Any) -> httpx.Response:
        return await api("POST", path, body, **kw)

    async def patch(path: str, body: Any) -> httpx.Response:
        return await api("PATCH", path, body)

    async def put(path: str, body: Any) -> httpx.Response:
        return await api("PUT", path, body)

    async def delete(path: str) -> httpx.Response:
        return await api("DELETE", path)

    # Plans
    c.check(await get(f"{B}/rate-plans"))
    body = {"name": "Pro", "markup_percentage": "20", "flat_rate_per_request": "0.001"}
    plan = c.check(await post(f"{B}/rate-plans", body)).json()
    c.check(await post(f"{B}/rate-plans", {**body, "slug": plan["slug"]}))  # 409
    c.check(await get(f"{B}/rate-plans/{plan['id']}"))
    c.check(await get(f"{B}/rate-plans/nope"))  # 404
    c.check(await patch(f"{B}/rate-plans/{plan['id']}", {"daily_token_limit": 10**6}))
    c.check(await put(f"{B}/rate-plans/{plan['id']}", {"allowed_models": None}))
    c.check(await post(f"{B}/rate-plans", {"name": ""}))  # 422
    c.check(
        await post(f"{B}/rate-plans", content=b"{", headers={"content-type": "application/json"})
    )  # 400
    c.check(
        await post(f"{B}/rate-plans", content=b"{}", headers={"content-type": "text/plain"})
    )  # 415
    spare = c.check(await post(f"{B}/rate-plans", {"name": "Spare"})).json()
    c.check(await delete(f"{B}/rate-plans/{spare['id']}"))  # 204

    # Quota and usage
    quota = f"{B}/check-quota"
    c.check(await get(quota, params={"end_user_id": "alice"}))
    c.check(await post(quota, {"end_user_id": "alice", "reserve": True, "model": "gpt-4o"}))
    c.check(await api.client.get(quota, params={"end_user_id": "alice"}))  # 401
    c.check(await patch(f"{B}/end-users/alice", {"rate_plan_id": plan["id"], "email": "a@x.io"}))
    events = [
        {
            "end_user_id": user,
            "provider": "openai",
            "model": model,
            "prompt_tokens": 1200,
            "completion_tokens": 300,
            "cost_usd": cost,
            "event_id": f"e-{user}-{i}",
            "timestamp": "2026-10-10T10:00:00Z",
        }
        for i, (user, model, cost) in enumerate(
            [("alice", "gpt-4o", "0.012"), ("bob", "gpt-4o", "0.5"), ("bob", "mystery-1", None)]
        )
    ]
    c.check(await post(f"{B}/usage-events", {"events": events}))
    c.check(await post(f"{B}/usage-events", events[0]))  # duplicate
    c.check(await post(f"{B}/usage-events", {**events[0], "prompt_tokens": 1}))  # 409
    c.check(await post(f"{B}/usage-events", {"events": [{"model": "x"}]}))  # 422 + result
    c.check(await post(f"{B}/usage-events", {"events": []}))  # 422
    c.check(await post(quota, {"end_user_id": "alice", "estimated_cost_usd": "0.01"}))

    # End users, config, revenue, alerts
    c.check(await get(f"{B}/end-users", params={"limit": 1}))
    c.check(await get(f"{B}/end-users/alice"))
    c.check(await get(f"{B}/end-users/nobody"))  # 404
    for granularity in ("day", "month"):
        params = {"granularity": granularity, "from": "2026-10-01", "to": "2026-11-15"}
        c.check(await get(f"{B}/end-users/bob/usage", params=params))
    c.check(await get(f"{B}/end-users/bob/usage", params={"to": "0"}))  # 422
    c.check(await get(f"{B}/config"))
    c.check(await patch(f"{B}/config", {"default_markup_percentage": "5"}))
    c.check(await get(f"{B}/revenue", params={"from": "2026-10-01", "to": "2026-11-15"}))
    c.check(await get(f"{B}/alerts"))

    # Prices and repricing
    c.check(await put(f"{B}/prices/mystery-1", {"input_per_mtok": "1", "output_per_mtok": 2}))
    c.check(await put(f"{B}/prices/mystery-1", {"provider": {}, "input_per_mtok": "1"}))  # 422
    c.check(await get(f"{B}/prices"))
    c.check(await post(f"{B}/usage/reprice"))

    # Providers
    c.check(await get("/api/v1/providers"))
    c.check(await put("/api/v1/providers/openai", {"api_key": "sk-test-1234567890"}))
    c.check(await get("/api/v1/providers"))
    c.check(await delete("/api/v1/providers/openai"))  # 204
    c.check(await delete("/api/v1/providers/openai"))  # 404

    # Invoices through their lifecycle
    period = {"period_start": "2026-10-01", "period_end": "2026-10-31"}
    generated = c.check(await post(f"{B}/invoices", period)).json()
    c.check(await post(f"{B}/invoices", {"period_start": "2026-10-01"}))  # 422
    ids = {inv["end_user_id"]: inv["id"] for inv in generated["invoices"]}
    c.check(await get(f"{B}/invoices", params={"status": "draft"}))
    c.check(await get(f"{B}/invoices/{ids['alice']}"))
    for fmt in ("json", "csv"):
        for include in (None, "events"):
            params = {**period, "format": fmt, **({"include": include} if include else {})}
            c.check(await get(f"{B}/invoices/export", params=params))
            c.check(await get(f"{B}/invoices/{ids['bob']}/export", params=params))
    c.check(await post(f"{B}/invoices/{ids['alice']}/finalize"))
    c.check(await post(f"{B}/invoices/{ids['alice']}/finalize"))  # 409
    c.check(await post(f"{B}/invoices", period))  # alice skipped: finalized
    c.check(await post(f"{B}/invoices/{ids['alice']}/send"))  # 409: no Stripe here
    c.check(await post(f"{B}/invoices/{ids['alice']}/mark-uncollectible"))
    c.check(await post(f"{B}/invoices/{ids['alice']}/void"))
    c.check(await delete(f"{B}/invoices/{ids['alice']}"))  # 409: not a draft
    c.check(await delete(f"{B}/invoices/{ids['bob']}"))  # 204
    c.check(await get(f"{B}/invoices/{ids['bob']}"))  # 404

    # Stripe (not configured on this server) and ops
    c.check(await get("/api/v1/stripe/status"))
    c.check(await get("/api/v1/stripe/connect"))
    c.check(await api.client.post("/api/v1/stripe/webhook", content=b"{}"))
    c.check(await api.client.get("/healthz"))
    c.check(await api.client.get("/readyz"))

    statuses = {status for _, _, status in c.seen}
    assert {200, 201, 204, 400, 401, 404, 409, 415, 422} <= statuses, sorted(c.seen)
