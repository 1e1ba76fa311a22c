"""Helpers shared by the counters tests (a unique module name: tests have no packages)."""

from __future__ import annotations

import os
import uuid

import pytest
from redis.asyncio import Redis

REDIS_URL_ENV = "METERLINE_TEST_REDIS_URL"


def redis_url() -> str:
    url = os.environ.get(REDIS_URL_ENV)
    if not url:
        if os.environ.get("CI"):
            pytest.fail(f"{REDIS_URL_ENV} is not set but CI is: the Redis suite must run")
        pytest.skip(f"{REDIS_URL_ENV} not set: Redis counters not tested")
    return url


def new_prefix() -> str:
    return f"mltest-{uuid.uuid4().hex[:16]}"


async def delete_prefix(client: Redis, prefix: str) -> None:
    keys = [k async for k in client.scan_iter(match=f"{prefix}:*", count=500)]
    if keys:
        await client.delete(*keys)
