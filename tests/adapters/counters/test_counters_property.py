"""Random operation sequences give identical results on memory and on Redis.

The Redis admit script re-implements ``domain.limits.exceeded_limits`` in Lua; the
in-process adapter calls the Python rule itself. Driving both with the same random
sequences of seed/admit/settle/settle_many/release/snapshot (time jumping across minutes,
midnights, month and year ends) and comparing every result holds the Lua to the rule.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from counters_testkit import delete_prefix, new_prefix, redis_url
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from meterline.adapters.counters import MemoryCounters, RedisCounters
from meterline.domain.entities import Environment, UserKey
from meterline.domain.plans import Limits
from meterline.ports import Counters, Reservation, Settlement, WindowTotals

KEYS = [UserKey("p", Environment.LIVE, "u{1}"), UserKey("p", Environment.TEST, "u{1}")]
IDS = ["r0", "r1", "r2"]
STARTS = [
    datetime(2024, 3, 15, 12, 0, tzinfo=UTC),
    datetime(2024, 1, 31, 23, 59, 0, tzinfo=UTC),
    datetime(2024, 2, 29, 23, 58, 30, 500_250, tzinfo=UTC),
    datetime(2024, 12, 31, 23, 59, 45, tzinfo=UTC),
]

small = st.one_of(st.none(), st.none(), st.integers(0, 12))
tokens_cap = st.one_of(st.none(), st.integers(0, 400), st.integers(60, 400))
cost_cap = st.one_of(
    st.none(),
    st.none(),
    st.integers(0, 40).map(lambda n: Decimal(n) / 1000),
    st.integers(10_000_000, 40_000_000).map(lambda n: Decimal(n).scaleb(-9)),
    st.sampled_from([Decimal("0.0000000015"), Decimal("0.0123456789"), Decimal(0)]),
)
limits_st = st.builds(
    Limits,
    daily_token_limit=tokens_cap,
    monthly_token_limit=tokens_cap,
    daily_request_limit=small,
    monthly_request_limit=st.one_of(st.none(), st.integers(0, 12)),
    requests_per_minute=small,
    daily_cost_limit_usd=cost_cap,
    monthly_cost_limit_usd=cost_cap,
)
# Microsecond steps, plus jumps onto and across window edges.
advance = st.one_of(
    st.integers(0, 5_000_000),
    st.integers(0, 25_000_000),
    st.sampled_from([0, 999, 1000, 59_999_000, 60_000_000]),
    st.sampled_from([0, 1, 3_600_000_000, 86_400_000_000]),
).map(lambda us: timedelta(microseconds=us))
key_i = st.integers(0, len(KEYS) - 1)
reservation = st.one_of(
    st.none(),
    held := st.builds(
        lambda rid, tokens, cost, ttl: (rid, tokens, cost, ttl),
        st.sampled_from(IDS),
        st.one_of(st.integers(0, 80), st.integers(40, 200)),
        st.one_of(st.integers(0, 20_000_000), st.integers(8_000_000, 20_000_000)),
        st.one_of(st.none(), st.integers(-1_000, 120_000_000)),
    ),
    held,
)
totals = st.tuples(*(st.integers(0, 8) for _ in range(4)), st.integers(0, 5_000_000))
common_op = st.one_of(
    st.tuples(st.just("admit"), advance, key_i, st.booleans(), reservation),
    st.tuples(st.just("admit"), advance, key_i, st.booleans(), reservation),
    st.tuples(
        st.just("settle"),
        advance,
        key_i,
        st.integers(0, 120),
        st.integers(0, 2_000_000),
        st.one_of(st.none(), st.sampled_from(IDS), st.sampled_from(IDS)),
        st.sampled_from([0, 0, 30, 90, 86_400, 40 * 86_400]),
    ),
    st.tuples(
        st.just("settle_many"),
        advance,
        key_i,
        st.lists(
            st.tuples(
                key_i,
                st.integers(0, 120),
                st.integers(0, 2_000_000),
                st.one_of(st.none(), st.none(), st.sampled_from(IDS)),
                st.sampled_from([0, 0, 0, 30, 90, 86_400, 40 * 86_400]),
            ),
            max_size=6,
        ),
    ),
    st.tuples(st.just("release"), advance, key_i, st.sampled_from(IDS)),
    st.tuples(st.just("snapshot"), advance, key_i),
    st.tuples(st.just("seed"), advance, key_i, totals, st.booleans()),
).map(tuple)  # mapped, so the one_of below does not flatten it and weights hold
forget_op = st.tuples(st.just("forget"), advance, key_i)
# Forgetting wipes every reservation: keep it rare so sequences build up state.
ops_st = st.lists(st.one_of(*[common_op] * 8, forget_op), min_size=8, max_size=60)


async def apply(c: Counters, op: tuple[Any, ...], now: datetime, limits: Limits) -> Any:
    kind, _, k = op[0], op[1], KEYS[op[2]]
    if kind == "admit":
        alert_only, res = op[3], op[4]
        r = None
        if res is not None:
            rid, tokens, cost, ttl = res
            expires = None if ttl is None else now + timedelta(microseconds=ttl)
            r = Reservation(rid, tokens, cost, expires)
        return await c.admit(k, limits, alert_only=alert_only, now=now, reservation=r)
    if kind == "settle":
        _, _, _, tokens, cost, rid, back = op
        at = now - timedelta(seconds=back)
        return await c.settle(k, now=now, at=at, tokens=tokens, cost_nanos=cost, reservation_id=rid)
    if kind == "settle_many":
        items = [
            Settlement(KEYS[ki], now - timedelta(seconds=back), tokens, cost, rid)
            for ki, tokens, cost, rid, back in op[3]
        ]
        return await c.settle_many(items, now=now)
    if kind == "release":
        return await c.release(k, op[3], now=now)
    if kind == "snapshot":
        return await c.snapshot(k, now)
    if kind == "seed":
        (dr, mr, dt, mt, cost), today = op[3], op[4]
        day: date = now.date() if today else now.date() - timedelta(days=1)
        wt = WindowTotals(day, dt, dt + mt, dr, dr + mr, cost, cost * 3)
        return await c.seed(k, wt, now)
    await c.forget(k)
    return None


async def outcome(c: Counters, op: tuple[Any, ...], now: datetime, limits: Limits) -> Any:
    try:
        return ("ok", await apply(c, op, now, limits))
    except Exception as exc:  # compared, not swallowed: both must raise alike
        return ("raised", type(exc).__name__)


async def run(url: str, start: datetime, limits: Limits, ops: list[tuple[Any, ...]]) -> None:
    client = Redis.from_url(url)
    prefix = new_prefix()
    memory, redis = MemoryCounters(), RedisCounters(client, prefix=prefix)
    try:
        now = start
        for c in (memory, redis):
            await c.seed(KEYS[0], WindowTotals(now.date()), now)
        for step, op in enumerate(ops):
            now += op[1]
            expected = await outcome(memory, op, now, limits)
            got = await outcome(redis, op, now, limits)
            assert got == expected, f"step {step}: {op!r} at {now.isoformat()}"
            if expected == ("raised", "SeedNeeded"):
                # As a caller would: seed from the "ledger", then retry.
                k = KEYS[op[2]]
                wt = WindowTotals(now.date(), step, 2 * step, step % 3, step % 5, step * 1000)
                for c in (memory, redis):
                    await c.seed(k, wt, now)
                expected = await outcome(memory, op, now, limits)
                got = await outcome(redis, op, now, limits)
                assert got == expected, f"step {step} (seeded): {op!r} at {now.isoformat()}"
        for k in KEYS:
            assert await outcome(redis, ("snapshot", 0, KEYS.index(k)), now, limits) == (
                await outcome(memory, ("snapshot", 0, KEYS.index(k)), now, limits)
            )
    finally:
        await delete_prefix(client, prefix)
        await client.aclose()


@pytest.fixture(scope="module")
def redis_test_url() -> str:
    # Module scope: checked once, outside Hypothesis (skips, or fails on CI).
    return redis_url()


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(start=st.sampled_from(STARTS), limits=limits_st, ops=ops_st)
def test_memory_and_redis_agree(
    redis_test_url: str, start: datetime, limits: Limits, ops: list[tuple[Any, ...]]
) -> None:
    asyncio.run(run(redis_test_url, start, limits, ops))
