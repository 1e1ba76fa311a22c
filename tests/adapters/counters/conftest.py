"""Fixtures for the counters contract suite: one test set, every adapter.

Redis comes from ``METERLINE_TEST_REDIS_URL``; without it the Redis half is skipped
with a visible reason, unless ``CI`` is set, where a missing Redis is a failure. Each
test gets its own key prefix and deletes only its own keys afterwards: other suites
share the server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from counters_testkit import delete_prefix, new_prefix, redis_url
from redis.asyncio import BlockingConnectionPool, Redis

from meterline.adapters.counters import MemoryCounters, RedisCounters
from meterline.adapters.counters.redis_client import packing_in_c
from meterline.ports import Counters


@pytest.fixture(params=["memory", "redis"])
async def counters(request: pytest.FixtureRequest) -> AsyncIterator[Counters]:
    if request.param == "memory":
        yield MemoryCounters()
        return
    # Several connections, so concurrent admits really race on the server.
    pool = packing_in_c(BlockingConnectionPool.from_url(redis_url(), max_connections=8))
    client = Redis(connection_pool=pool)
    prefix = new_prefix()
    try:
        yield RedisCounters(client, prefix=prefix)
    finally:
        await delete_prefix(client, prefix)
        await client.aclose()
        await pool.disconnect()
