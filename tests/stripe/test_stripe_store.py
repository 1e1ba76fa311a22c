"""``SqlStripeStore`` on SQLite: one connection per organization, first-time webhook ids."""

from __future__ import annotations

import asyncio

import pytest

from meterline.adapters.db import SqlAccounts, create_engine, migrate
from meterline.adapters.db.stripe import SqlStripeStore


@pytest.fixture
async def store_and_orgs(tmp_path, clock):
    url = f"sqlite:///{tmp_path}/s.db"
    await migrate(url)
    engine = create_engine(url)
    accounts = SqlAccounts(engine)
    orgs = [await accounts.create_organization(f"org {i}") for i in range(2)]
    yield SqlStripeStore(engine, clock), orgs
    await engine.dispose()


async def test_connection_round_trip_and_replace(store_and_orgs, clock):
    store, (org, other) = store_and_orgs
    assert await store.get_connection(org) is None
    await store.set_connection(org, "acct_1", livemode=False)
    got = await store.get_connection(org)
    assert (got.account_id, got.livemode, got.connected_at) == ("acct_1", False, clock.now())
    await store.set_connection(org, "acct_2", livemode=True)
    got = await store.get_connection(org)
    assert (got.account_id, got.livemode) == ("acct_2", True)
    assert await store.get_connection(other) is None
    assert await store.delete_connection(org) is True
    assert await store.delete_connection(org) is False
    assert await store.get_connection(org) is None


async def test_delete_account_drops_every_organization_using_it(store_and_orgs):
    store, (org, other) = store_and_orgs
    await store.set_connection(org, "acct_shared", livemode=False)
    await store.set_connection(other, "acct_other", livemode=False)
    assert await store.delete_account("acct_shared") == [org]
    assert await store.get_connection(org) is None
    assert await store.get_connection(other) is not None
    assert await store.delete_account("acct_none") == []


async def test_webhook_ids_are_processed_once_even_concurrently(store_and_orgs):
    store, _ = store_and_orgs
    results = await asyncio.gather(
        *(store.mark_webhook_processed("evt_1", "invoice.paid") for _ in range(8))
    )
    assert sorted(results) == [False] * 7 + [True]
    assert await store.mark_webhook_processed("evt_2", "invoice.paid") is True
    await store.unmark_webhook("evt_1")
    assert await store.mark_webhook_processed("evt_1", "invoice.paid") is True
