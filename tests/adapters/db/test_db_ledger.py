"""Ledger contract: idempotent recording, rollups, window totals, usage and revenue."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from meterline.adapters.db import tables as t
from meterline.domain.entities import Environment, UsageEvent, UsageTotals, UserKey
from meterline.domain.money import to_nanos
from meterline.ports import RecordStatus

LIVE, TEST = Environment.LIVE, Environment.TEST
REC, DUP, CONFLICT = RecordStatus.RECORDED, RecordStatus.DUPLICATE, RecordStatus.CONFLICT
D = Decimal


def event(project, event_id, *, user="u1", at=None, env=LIVE, cost="0.001", **kw) -> UsageEvent:
    """A priced event: charge = cost × 1.5 + 0.000000001."""
    provider_cost = D(cost)
    fields = {
        "model": "gpt-4o",
        "provider": "openai",
        "prompt_tokens": 100,
        "completion_tokens": 20,
        "total_tokens": 120,
        "provider_cost": provider_cost,
        "markup": provider_cost * D("0.5"),
        "charge": provider_cost * D("1.5") + D("0.000000001"),
        "fingerprint": f"fp-{event_id}",
        **kw,
    }
    return UsageEvent(
        project_id=project.id,
        environment=env,
        event_id=event_id,
        end_user_id=user,
        timestamp=at or datetime(2025, 3, 14, 12, 0, tzinfo=UTC),
        **fields,
    )


async def rollup_rows(db):
    async with db.engine.connect() as conn:
        return (await conn.execute(select(t.usage_daily_rollups))).mappings().all()


async def count_events(db) -> int:
    async with db.engine.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(t.usage_events))).scalar()


async def test_recorded_duplicate_conflict(db, ledger, project):
    original = event(
        project,
        "e1",
        metadata={"route": "/v1/chat", "n": [1, 2]},
        latency_ms=321,
        reservation_id="res_1",
        cached_tokens=7,
        estimated=True,
        source="gateway",
    )
    [outcome] = await ledger.record_events([original])
    assert outcome.status is REC
    stored = outcome.event
    assert stored.recorded_at is not None and stored.recorded_at.tzinfo is UTC
    assert stored.charge == D("0.001500001")
    assert [o.status for o in await ledger.record_events([original])] == [DUP]
    replay = await ledger.record_events([event(project, "e1", fingerprint="other")])
    assert [o.status for o in replay] == [CONFLICT]
    assert replay[0].event == stored  # the original, as stored
    [again] = await ledger.record_events([original])
    assert again.event == stored
    assert again.event.metadata == {"route": "/v1/chat", "n": [1, 2]}
    assert (again.event.latency_ms, again.event.reservation_id) == (321, "res_1")
    assert again.event.timestamp == datetime(2025, 3, 14, 12, 0, tzinfo=UTC)
    assert await count_events(db) == 1
    [row] = await rollup_rows(db)
    assert row["requests"] == 1 and row["charge_nanos"] == 1_500_001


async def test_every_value_round_trips_exactly(db, ledger, project):
    """What a write sends (one JSON document on PostgreSQL, bound rows on SQLite) comes
    back unchanged: odd text, huge and negative integers inside metadata, nulls,
    non-UTC and sub-second times, money below a cent."""
    from datetime import timedelta, timezone

    odd = 'é "quoted" \\ back\tslash \u2028 😀 \x7f'
    metadata = {"text": odd, "big": 2**70, "neg": -(2**63), "nested": {"l": [None, True]}}
    at = datetime(2025, 3, 14, 13, 30, 0, 123456, tzinfo=timezone(timedelta(hours=1)))
    sent = [
        event(project, "odd-1", user=odd, metadata=metadata, at=at, cost="0.000000007"),
        event(
            project,
            odd,
            user=None,
            model=None,
            provider=None,
            provider_cost=None,
            markup=None,
            charge=None,
            priced=False,
            latency_ms=None,
        ),
    ]
    recorded = await ledger.record_events(sent)
    assert [o.status for o in recorded] == [REC, REC]
    replayed = await ledger.record_events(sent)  # read back from the table
    assert [o.status for o in replayed] == [DUP, DUP]
    for first, again in zip(recorded, replayed, strict=True):
        assert again.event == first.event
    stored = replayed[0].event
    assert stored.metadata == metadata and stored.end_user_id == odd
    assert stored.timestamp == at and stored.timestamp.tzinfo is UTC
    assert stored.provider_cost == D("0.000000007")
    assert replayed[1].event.event_id == odd and replayed[1].event.charge is None
    unpriced = [r for r in await rollup_rows(db) if r["end_user_id"] == ""]
    assert unpriced[0]["unpriced_requests"] == 1 and unpriced[0]["charge_nanos"] == 0


async def test_same_event_id_in_other_environment_or_project_is_new(accounts, ledger, project):
    other = await accounts.create_project(project.organization_id, "Other")
    outcomes = await ledger.record_events(
        [event(project, "e1"), event(project, "e1", env=TEST), event(other, "e1")]
    )
    assert [o.status for o in outcomes] == [REC, REC, REC]


async def test_batch_internal_duplicates(db, ledger, project):
    a = event(project, "a")
    outcomes = await ledger.record_events(
        [a, event(project, "b"), a, event(project, "a", fingerprint="x"), a]
    )
    assert [o.status for o in outcomes] == [REC, REC, DUP, CONFLICT, DUP]
    assert outcomes[2].event == outcomes[0].event == outcomes[3].event
    assert sum(r["requests"] for r in await rollup_rows(db)) == 2
    outcomes = await ledger.record_events([event(project, "a", fingerprint="x"), a])
    assert [o.status for o in outcomes] == [CONFLICT, DUP]


async def test_rollups_equal_the_sum_of_inserted_events(db, ledger, project):
    rng = random.Random(7)
    events = []
    for i in range(300):
        unpriced = rng.random() < 0.1
        cost = D(rng.randrange(0, 10**10)).scaleb(-9)
        events.append(
            event(
                project,
                f"e{i}",
                user=rng.choice(["u1", "u2", None]),
                at=datetime(2025, 3, rng.randint(1, 31), rng.randint(0, 23), tzinfo=UTC),
                model=rng.choice(["gpt-4o", "claude", None]),
                provider=rng.choice(["openai", None]),
                prompt_tokens=rng.randrange(10_000),
                completion_tokens=rng.randrange(10_000),
                total_tokens=rng.randrange(20_000),
                priced=not unpriced,
                provider_cost=None if unpriced else cost,
                markup=None if unpriced else cost / 4,
                charge=None if unpriced else cost * D("1.25"),
            )
        )
    # In several batches, with replays mixed in.
    for start in range(0, 300, 70):
        await ledger.record_events(events[start : start + 70] + events[: start // 10])
    expected: Counter = Counter()
    for ev in events:
        key = (ev.end_user_id or "", ev.model or "", ev.provider or "", ev.timestamp.date())
        expected[(*key, "requests")] += 1
        expected[(*key, "total_tokens")] += ev.total_tokens
        expected[(*key, "charge_nanos")] += to_nanos(ev.charge or D(0))  # half-even
        expected[(*key, "unpriced_requests")] += 0 if ev.priced else 1
    actual: Counter = Counter()
    for row in await rollup_rows(db):
        key = (row["end_user_id"], row["model"], row["provider"], row["day"])
        for name in ("requests", "total_tokens", "charge_nanos", "unpriced_requests"):
            actual[(*key, name)] += row[name]
    assert +actual == +expected


async def test_unpriced_events_keep_null_money(db, ledger, project):
    unpriced = event(project, "u", priced=False, provider_cost=None, markup=None, charge=None)
    [outcome] = await ledger.record_events([unpriced])
    assert outcome.event.charge is None and outcome.event.provider_cost is None
    async with db.engine.connect() as conn:
        row = (await conn.execute(select(t.usage_events))).mappings().one()
    assert row["provider_cost_nanos"] is None and row["charge_nanos"] is None
    assert row["markup_nanos"] is None and row["priced"] is False
    [rollup] = await rollup_rows(db)
    assert (rollup["unpriced_requests"], rollup["charge_nanos"], rollup["requests"]) == (
        0 + 1,
        0,
        1,
    )
    [dup] = await ledger.record_events([unpriced])
    assert dup.status is DUP and dup.event.charge is None


async def test_200_concurrent_batches_with_overlapping_ids(db, ledger, project):
    rng = random.Random(42)
    pool = [event(project, f"e{i:03d}", total_tokens=i) for i in range(120)]
    batches = [rng.sample(pool, 6) for _ in range(200)]
    results = await asyncio.gather(*(ledger.record_events(batch) for batch in batches))
    recorded = Counter(
        o.event.event_id for outcomes in results for o in outcomes if o.status is REC
    )
    distinct = {ev.event_id for batch in batches for ev in batch}
    assert set(recorded) == distinct and set(recorded.values()) == {1}
    assert all(o.status in (REC, DUP) for outcomes in results for o in outcomes)
    assert await count_events(db) == len(distinct)
    rows = await rollup_rows(db)
    assert sum(r["requests"] for r in rows) == len(distinct)
    assert sum(r["total_tokens"] for r in rows) == sum(int(e[1:]) for e in distinct)


async def _scenario(ledger, project):
    """u1: two events on 2025-03-14, one on 03-02, one on 04-01; u2 and project-level too."""
    await ledger.record_events(
        [
            event(project, "a", cost="0.010000002", at=datetime(2025, 3, 14, 1, tzinfo=UTC)),
            event(project, "b", cost="0.02", at=datetime(2025, 3, 14, 23, 59, tzinfo=UTC),
                  model="claude", provider="anthropic", total_tokens=30),
            event(project, "c", cost="0.5", at=datetime(2025, 3, 2, tzinfo=UTC)),
            event(project, "d", cost="1", at=datetime(2025, 4, 1, tzinfo=UTC)),
            event(project, "e", user="u2", cost="3", at=datetime(2025, 3, 14, tzinfo=UTC)),
            event(project, "f", user=None, cost="7", at=datetime(2025, 3, 15, tzinfo=UTC)),
            event(project, "g", priced=False, provider_cost=None, markup=None, charge=None,
                  at=datetime(2025, 3, 14, 5, tzinfo=UTC)),
            event(project, "h", env=TEST, cost="100", at=datetime(2025, 3, 14, tzinfo=UTC)),
        ]
    )  # fmt: skip


def totals(requests, cost, *, tokens=None, unpriced=0) -> UsageTotals:
    cost = D(cost)
    return UsageTotals(
        requests=requests,
        prompt_tokens=100 * requests,
        completion_tokens=20 * requests,
        total_tokens=tokens if tokens is not None else 120 * requests,
        provider_cost=cost,
        markup=cost / 2,
        charge=cost * D("1.5") + D("0.000000001") * (requests - unpriced),
        unpriced_requests=unpriced,
    )


async def test_window_totals(ledger, project):
    await _scenario(ledger, project)
    key = UserKey(project.id, LIVE, "u1")
    wt = await ledger.window_totals(key, date(2025, 3, 14))
    assert wt.day == date(2025, 3, 14)
    assert (wt.daily_requests, wt.monthly_requests) == (3, 4)
    assert (wt.daily_tokens, wt.monthly_tokens) == (120 + 30 + 120, 120 + 30 + 120 + 120)
    assert wt.daily_cost_nanos == 30_000_002
    assert wt.monthly_cost_nanos == 530_000_002
    empty = await ledger.window_totals(key, date(2025, 5, 1))
    assert (empty.monthly_requests, empty.monthly_cost_nanos) == (0, 0)
    april = await ledger.window_totals(key, date(2025, 4, 30))
    assert (april.daily_requests, april.monthly_requests) == (0, 1)
    test_env = await ledger.window_totals(UserKey(project.id, TEST, "u1"), date(2025, 3, 14))
    assert test_env.daily_cost_nanos == 100 * 10**9


async def test_usage_by_day_and_month(ledger, project):
    await _scenario(ledger, project)
    key = UserKey(project.id, LIVE, "u1")
    days = await ledger.usage(key, "day", date(2025, 3, 1), date(2025, 4, 1))
    assert [r.period for r in days] == ["2025-03-02", "2025-03-14", "2025-04-01"]
    assert days[0].totals == totals(1, "0.5")
    assert days[1].totals == totals(3, "0.030000002", tokens=270, unpriced=1)
    months = await ledger.usage(key, "month", date(2025, 1, 1), date(2025, 12, 31))
    assert [r.period for r in months] == ["2025-03", "2025-04"]
    assert months[0].totals == totals(4, "0.530000002", tokens=390, unpriced=1)
    assert months[1].totals == totals(1, "1")
    inclusive = await ledger.usage(key, "day", date(2025, 3, 14), date(2025, 3, 14))
    assert [r.period for r in inclusive] == ["2025-03-14"]
    with pytest.raises(ValueError):
        await ledger.usage(key, "week", date(2025, 3, 1), date(2025, 3, 31))


async def test_revenue(ledger, project):
    await _scenario(ledger, project)
    report = await ledger.revenue(project.id, LIVE, date(2025, 3, 1), date(2025, 3, 31))
    assert report.totals.requests == 6
    assert report.totals.provider_cost == D("10.530000002")
    assert report.totals.charge == D("10.530000002") * D("1.5") + D("0.000000005")
    assert report.totals.unpriced_requests == 1
    assert [d.day for d in report.daily] == [date(2025, 3, 2), date(2025, 3, 14), date(2025, 3, 15)]
    assert report.daily[2].totals == totals(1, "7")
    assert [(u.end_user_id, u.totals.charge) for u in report.top_users] == [
        ("u2", D("4.500000001")),
        ("u1", D("0.795000006")),
    ]
    top1 = await ledger.revenue(project.id, LIVE, date(2025, 3, 1), date(2025, 3, 31), top=1)
    assert [u.end_user_id for u in top1.top_users] == ["u2"]
    empty = await ledger.revenue(project.id, LIVE, date(2024, 1, 1), date(2024, 12, 31))
    assert empty.totals == UsageTotals() and empty.daily == [] and empty.top_users == []
    test_env = await ledger.revenue(project.id, TEST, date(2025, 3, 1), date(2025, 3, 31))
    assert test_env.totals.provider_cost == D(100)


async def test_sums_are_python_ints_and_exact_decimals(ledger, project):
    await ledger.record_events([event(project, "x", cost="0.000000002")])
    report = await ledger.revenue(project.id, LIVE, date(2025, 3, 14), date(2025, 3, 14))
    assert type(report.totals.requests) is int
    assert isinstance(report.totals.charge, Decimal)
    assert report.totals.charge == D("0.000000004")


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_every_rollup_sum_is_the_python_fold_of_the_rows_inserted(db, ledger, project, seed):
    """Each rollup table holds exactly ``add_row_delta`` (and ``project_deltas``) folded
    over the rows the ledger inserted: every sum, every key part. On PostgreSQL the
    rollups are computed in SQL from the inserted rows (``pg_ledger_write``), so this
    holds that SQL to the Python rule: absent parts, unpriced rows, days in UTC for
    timestamps given at other offsets around midnight, large numbers, replays."""
    from datetime import timedelta, timezone

    from meterline.adapters.db.coarse_rollups import project_deltas
    from meterline.adapters.db.ledger_rows import add_row_delta, event_rows, new_event_ids
    from meterline.adapters.db.rollups import ROLLUP_KEY, ROLLUP_SUMS

    rng = random.Random(seed)
    zones = [UTC, timezone(timedelta(hours=-8)), timezone(timedelta(hours=5, minutes=30))]

    def random_event(i: int) -> UsageEvent:
        priced = rng.random() < 0.8
        cost = D(rng.choice([0, 1, rng.randrange(10**13)])).scaleb(-9) if priced else None
        midnight = datetime(2025, 3, rng.randint(1, 3), tzinfo=UTC)
        at = (midnight + timedelta(minutes=rng.randint(-600, 600))).astimezone(rng.choice(zones))
        prompt = rng.choice([0, rng.randrange(10**6), 2**31 - 1])
        return event(
            project,
            f"e{rng.randrange(i + 1)}",  # replays, some with another fingerprint
            user=rng.choice(["u1", "u2", "", None]),
            env=rng.choice([LIVE, TEST]),
            at=at,
            model=rng.choice(["gpt-4o", "claude", None]),
            provider=rng.choice(["openai", "anthropic", None]),
            prompt_tokens=prompt,
            completion_tokens=rng.randrange(10**4),
            total_tokens=prompt + rng.randrange(10**4),
            priced=priced,
            provider_cost=cost,
            markup=None if cost is None else cost / 3,
            charge=None if cost is None else cost + cost / 3,
            fingerprint=f"fp{rng.randrange(2)}",
        )

    fine: dict = {}
    for start in range(0, 240, 40):
        batch = [random_event(start + i) for i in range(rng.randrange(1, 40))]
        for outcome in await ledger.record_events(batch):
            if outcome.status is REC:
                _, (row,) = event_rows([outcome.event], new_event_ids(1), datetime.now(UTC))
                add_row_delta(fine, row)
    users, projects = project_deltas(fine)
    assert len(fine) > 20

    async def stored(table, key) -> dict:
        async with db.engine.connect() as conn:
            rows = (await conn.execute(select(table))).mappings().all()
        return {tuple(r[k] for k in key): [int(r[s]) for s in ROLLUP_SUMS] for r in rows}

    assert await stored(t.usage_daily_rollups, ROLLUP_KEY) == fine
    assert (
        await stored(t.usage_user_daily, ("project_id", "environment", "end_user_id", "day"))
        == users
    )
    assert await stored(t.usage_project_daily, ("project_id", "environment", "day")) == projects
