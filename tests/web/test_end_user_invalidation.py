"""Two replicas on one PostgreSQL + Redis: an end-user change made through one reaches
the other's cache at once (Redis pub/sub), not after the 60 s cache lifetime."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from meterline.config import Settings
from meterline.container import build_container
from meterline.services.bootstrap import initialize
from meterline.web.app import create_app

QUOTA = "/api/v1/billing/check-quota"


@pytest.fixture
async def replicas(tmp_path, pg_database_url, redis_url) -> AsyncIterator[tuple]:
    settings = Settings(
        home=tmp_path,
        database_url=pg_database_url,
        redis_url=redis_url,
        secret_key="t",
        end_user_cache_ttl_seconds=60,  # long: only an invalidation can make B see it
    )
    a = await build_container(settings)
    b = await build_container(settings)
    init = await initialize(a.accounts)
    headers = {"Authorization": f"Bearer {init.live_key}"}
    clients = [
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(container=c)),
            base_url="http://replica",
            headers=headers,
        )
        for c in (a, b)
    ]
    for c in (a, b):
        assert c.invalidations is not None
        await asyncio.wait_for(c.invalidations.subscribed.wait(), 10)
    try:
        yield clients[0], clients[1]
    finally:
        for client in clients:
            await client.aclose()
        await a.close()
        await b.close()


async def _allowed(client: httpx.AsyncClient, user: str) -> bool:
    r = await client.get(QUOTA, params={"end_user_id": user})
    assert r.status_code == 200, r.text
    return bool(r.json()["allowed"])


async def _until(predicate, seconds: float = 5.0) -> float:
    """Seconds until ``predicate()`` held; fails after ``seconds`` (far below the TTL)."""
    start = time.monotonic()
    while not await predicate():
        if time.monotonic() - start > seconds:
            pytest.fail(f"not seen within {seconds} s")
        await asyncio.sleep(0.02)
    return time.monotonic() - start


@pytest.mark.postgres
async def test_block_and_plan_change_reach_the_other_replica_at_once(replicas):
    a, b = replicas
    plan = (await a.post("/api/v1/billing/rate-plans", json={"name": "Other"})).json()
    user = "shared-user"
    assert await _allowed(b, user) and await _allowed(b, user)  # B has it cached now

    assert (await a.patch(f"/api/v1/billing/end-users/{user}", json={"blocked": True})).is_success

    async def b_denies() -> bool:
        return not await _allowed(b, user)

    await _until(b_denies)
    await a.patch(f"/api/v1/billing/end-users/{user}", json={"blocked": False})

    async def b_allows() -> bool:
        return await _allowed(b, user)

    await _until(b_allows)
    await a.patch(f"/api/v1/billing/end-users/{user}", json={"rate_plan_id": plan["id"]})

    async def b_sees_plan() -> bool:
        r = await b.get(QUOTA, params={"end_user_id": user})
        return bool(r.json()["rate_plan"]["id"] == plan["id"])

    await _until(b_sees_plan)
