"""Losing Redis never resets anyone's quota: counters are rebuilt from the ledger."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from meterline.config import Settings

QUOTA = "/api/v1/billing/check-quota"
EVENTS = "/api/v1/billing/usage-events"


@pytest.fixture
def gw_settings(request, tmp_path) -> Settings:
    return Settings(
        home=tmp_path,
        database_url=request.getfixturevalue("pg_database_url"),
        redis_url=request.getfixturevalue("redis_url"),
        secret_key="t",
    )


async def test_user_at_token_limit_still_denied_after_flushall(gw, redis_url):
    r = await gw.post(
        "/api/v1/billing/rate-plans",
        {"name": "T", "is_default": True, "daily_token_limit": 100, "daily_request_limit": 5},
    )
    assert r.status_code == 201
    await gw.post(EVENTS, {"end_user_id": "heavy", "prompt_tokens": 80, "completion_tokens": 40})
    for _ in range(2):
        await gw.get(QUOTA, params={"end_user_id": "counted", "reserve": "true"})
    await gw.post(EVENTS, {"end_user_id": "counted", "prompt_tokens": 1})
    before = (await gw.get(QUOTA, params={"end_user_id": "heavy"})).json()
    assert before["allowed"] is False and before["reason"] == "daily_token_limit_exceeded"

    client = aioredis.from_url(redis_url)
    try:
        await client.flushall()
    finally:
        await client.aclose()

    after = (await gw.get(QUOTA, params={"end_user_id": "heavy"})).json()
    assert after["allowed"] is False
    assert after["reason"] == "daily_token_limit_exceeded"
    assert after["usage"]["daily_tokens"]["used"] == 120
    # Request counts come back from the ledger too: only settled usage is in the ledger,
    # so the two reservations that were never reported are gone with Redis, the event stays.
    counted = (await gw.get(QUOTA, params={"end_user_id": "counted"})).json()
    assert counted["usage"]["daily_requests"]["used"] == 1
