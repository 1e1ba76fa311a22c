"""RedisInvalidations over a real Redis: delivery between processes' instances, no echo to
the sender, and a "drop everything" on every (re)subscription."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from meterline.adapters.invalidation import RedisInvalidations

pytestmark = pytest.mark.redis


async def _until(condition, seconds: float = 5.0) -> None:
    for _ in range(int(seconds / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    pytest.fail("condition not met")


async def test_delivery_no_echo_and_resync(redis_url):
    client = aioredis.from_url(redis_url, socket_timeout=5)
    a, b = RedisInvalidations(client), RedisInvalidations(client)
    seen_a: list[object] = []
    seen_b: list[object] = []
    a.subscribe("end_user", lambda topic, key: seen_a.append(key))
    b.subscribe("end_user", lambda topic, key: seen_b.append(key))
    b.subscribe("other", lambda topic, key: seen_b.append((topic, key)))
    a.start()
    b.start()
    try:
        await asyncio.wait_for(asyncio.gather(a.subscribed.wait(), b.subscribed.wait()), 10)
        assert seen_a == [None] and None in seen_b  # resync on subscribing
        await a.publish("end_user", ("proj_1", "live", "u-1"))
        await _until(lambda: ("proj_1", "live", "u-1") in seen_b)
        await asyncio.sleep(0.2)
        assert seen_a == [None]  # the sender does not hear itself
        assert ("other", ("proj_1", "live", "u-1")) not in seen_b  # topics are separate
        await client.publish("meterline:invalidate", b"not json")  # ignored, no crash
        await b.publish("end_user", ("p", "test", "u-2"))
        await _until(lambda: ("p", "test", "u-2") in seen_a)
    finally:
        await a.stop()
        await b.stop()
        await client.aclose()
