"""Redis-only behaviour: key layout, hash tags, TTLs, script reloading, lost data."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from counters_testkit import delete_prefix, new_prefix, redis_url
from redis.asyncio import Redis
from redis.crc import key_slot

from meterline.adapters.counters import RedisCounters
from meterline.domain.entities import Environment, UserKey
from meterline.domain.plans import Limits
from meterline.ports import Reservation, SeedNeeded, Settlement, WindowTotals

T0 = datetime(2024, 3, 15, 12, 0, tzinfo=UTC)
KEY = UserKey("proj_1", Environment.LIVE, "we}ird{user}")


@pytest.fixture
async def env() -> AsyncIterator[tuple[RedisCounters, Redis, str]]:
    client = Redis.from_url(redis_url(), decode_responses=True)
    prefix = new_prefix()
    try:
        yield RedisCounters(client, prefix=prefix), client, prefix
    finally:
        await delete_prefix(client, prefix)
        await client.aclose()


async def keys_of(client: Redis, prefix: str) -> list[str]:
    return sorted([k async for k in client.scan_iter(match=f"{prefix}:*")])


async def seed_and_use(c: RedisCounters, key: UserKey = KEY) -> None:
    await c.seed(key, WindowTotals(day=T0.date(), daily_requests=1), T0)
    res = Reservation("r1", tokens=5, expires_at=T0 + timedelta(minutes=5))
    await c.admit(key, Limits(), alert_only=False, now=T0, reservation=res)


async def test_one_hash_tag_per_user(env: tuple[RedisCounters, Redis, str]) -> None:
    c, client, prefix = env
    await seed_and_use(c)
    other = UserKey("proj_1", Environment.LIVE, "someone-else")
    await seed_and_use(c, other)
    keys = await keys_of(client, prefix)
    assert len(keys) == 12  # day, month, minute, reservations, expiries, index × 2 users
    tags = {k.split("{", 1)[1].split("}", 1)[0] for k in keys}
    assert len(tags) == 2
    for tag in tags:
        slots = {key_slot(k.encode()) for k in keys if f"{{{tag}}}" in k}
        assert len(slots) == 1
    assert f"{prefix}:{{" in keys[0]
    assert any(k.endswith(":d:2024-03-15") for k in keys)
    assert any(k.endswith(":m:2024-03") for k in keys)


async def test_keys_expire_after_their_window(env: tuple[RedisCounters, Redis, str]) -> None:
    c, client, prefix = env
    await seed_and_use(c)
    ttl = {k.rsplit(":", 1)[-1]: await client.pttl(k) for k in await keys_of(client, prefix)}
    hour = 3_600_000
    assert 12 * hour < ttl["2024-03-15"] <= 13 * hour  # 12 h left + 1 h grace
    assert 17 * 24 * hour - 12 * hour < ttl["2024-03"] <= 17 * 24 * hour - 11 * hour
    assert 0 < ttl["min"] <= 65_000
    assert 0 < ttl["res"] and 0 < ttl["rexp"] and 0 < ttl["idx"]


async def test_settle_and_release_never_create_keys(env: tuple[RedisCounters, Redis, str]) -> None:
    c, client, prefix = env
    await c.settle(KEY, now=T0, at=T0, tokens=1, cost_nanos=1)
    await c.settle(KEY, now=T0, at=T0, tokens=1, cost_nanos=1, reservation_id="x")
    await c.release(KEY, "x", now=T0)
    with pytest.raises(SeedNeeded):
        await c.snapshot(KEY, T0)
    assert await keys_of(client, prefix) == []


async def test_forget_deletes_every_key(env: tuple[RedisCounters, Redis, str]) -> None:
    c, client, prefix = env
    await seed_and_use(c)
    await c.forget(KEY)
    assert await keys_of(client, prefix) == []


async def test_lost_data_means_seed_needed(env: tuple[RedisCounters, Redis, str]) -> None:
    c, client, prefix = env
    await seed_and_use(c)
    await delete_prefix(client, prefix)  # what a FLUSHALL does to this user's keys
    with pytest.raises(SeedNeeded):
        await c.admit(KEY, Limits(), alert_only=False, now=T0)


async def test_scripts_reload_when_missing(env: tuple[RedisCounters, Redis, str]) -> None:
    c, _, _ = env
    # As after SCRIPT FLUSH or a restart (without flushing other suites' scripts).
    real = c._admit_lua.sha
    c._admit_lua.sha = "0" * 40
    await c.seed(KEY, WindowTotals(day=T0.date()), T0)
    assert (await c.admit(KEY, Limits(), alert_only=False, now=T0)).decision.allowed
    assert c._admit_lua.sha == real


def test_prefix_may_not_carry_a_hash_tag() -> None:
    with pytest.raises(ValueError, match="braces"):
        RedisCounters(Redis(), prefix="ml{x}")


async def test_settle_many_reloads_scripts_a_restarted_redis_forgot(
    env: tuple[RedisCounters, Redis, str],
) -> None:
    counters, client, _ = env
    await counters.seed(KEY, WindowTotals(day=T0.date()), T0)
    await client.script_flush()
    items = [Settlement(KEY, T0, tokens=1, cost_nanos=0) for _ in range(50)]
    assert await counters.settle_many(items, now=T0) == [False] * 50
    snap = await counters.snapshot(KEY, T0)
    assert (snap.daily_requests, snap.daily_tokens) == (50, 50)


async def test_settle_many_on_an_unreachable_redis_raises_counters_unavailable() -> None:
    from meterline.ports import CountersUnavailable
    from meterline.testing.server import free_port

    client = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.5)
    try:
        with pytest.raises(CountersUnavailable):
            await RedisCounters(client).settle_many([Settlement(KEY, T0, 1, 1)], now=T0)
    finally:
        await client.aclose()
