"""The per-user and per-project daily rollups always equal the fine rollups summed over
the dimensions they drop — after random batches with repeats, concurrent writers,
repricing and the migration that fills them — and the reports read from them agree
with sums computed from the events themselves. Both backends."""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select

from meterline.adapters.db import create_engine, migrate
from meterline.adapters.db import tables as t
from meterline.adapters.db.repricing import SqlRepricer
from meterline.adapters.db.rollups import ROLLUP_SUMS
from meterline.domain.entities import Environment, UsageEvent, UserKey
from meterline.domain.money import from_nanos
from meterline.ports import RecordStatus, RepricedEvent

LIVE, TEST = Environment.LIVE, Environment.TEST
DAY0 = datetime(2025, 3, 30, 12, tzinfo=UTC)  # the month turns inside the scenarios
USERS = ["u1", "u2", "u3", "big spender", None]
MODELS = [("gpt-4o", "openai"), ("claude", "anthropic"), (None, None)]


async def fine_grouped(conn: Any, key: tuple[str, ...]) -> dict[tuple[Any, ...], tuple[int, ...]]:
    fine = t.usage_daily_rollups.c
    query = select(*(fine[k] for k in key), *(func.sum(fine[s]) for s in ROLLUP_SUMS)).group_by(
        *(fine[k] for k in key)
    )
    rows = (await conn.execute(query)).all()
    return {tuple(r[: len(key)]): tuple(int(v) for v in r[len(key) :]) for r in rows}


async def table_rows(conn: Any, table: Any, key: tuple[str, ...]) -> dict[tuple[Any, ...], Any]:
    rows = (await conn.execute(select(table))).mappings().all()
    return {tuple(r[k] for k in key): tuple(int(r[s]) for s in ROLLUP_SUMS) for r in rows}


async def assert_coarse_equals_fine(engine: Any) -> None:
    user_key = ("project_id", "environment", "end_user_id", "day")
    project_key = ("project_id", "environment", "day")
    async with engine.connect() as conn:
        assert await table_rows(conn, t.usage_user_daily, user_key) == await fine_grouped(
            conn, user_key
        )
        assert await table_rows(conn, t.usage_project_daily, project_key) == await fine_grouped(
            conn, project_key
        )


def random_event(rng: random.Random, project_id: str, n: int) -> UsageEvent:
    model, provider = rng.choice(MODELS)
    priced = rng.random() < 0.85
    cost = Decimal(rng.randrange(10**10)).scaleb(-9) if priced else None
    tokens = rng.randrange(0, 5000)
    return UsageEvent(
        project_id=project_id,
        environment=rng.choice([LIVE, LIVE, TEST]),
        event_id=f"e{rng.randrange(n)}",  # repeats: duplicates and conflicts
        end_user_id=rng.choice(USERS),
        timestamp=DAY0 + timedelta(hours=rng.randrange(0, 72)),
        model=model,
        provider=provider,
        prompt_tokens=tokens,
        total_tokens=tokens + 7,
        priced=priced,
        provider_cost=cost,
        markup=None if cost is None else cost / 4,
        charge=None if cost is None else cost + cost / 4,
        fingerprint=f"fp{rng.randrange(3)}",
    )


async def test_random_batches_keep_coarse_equal_to_fine_and_reports_exact(db, ledger, project):
    rng = random.Random(20261127)
    recorded: list[UsageEvent] = []
    for _ in range(25):
        batch = [random_event(rng, project.id, 150) for _ in range(rng.randrange(1, 40))]
        for outcome in await ledger.record_events(batch):
            if outcome.status is RecordStatus.RECORDED:
                recorded.append(outcome.event)
    assert len(recorded) > 60
    await assert_coarse_equals_fine(db.engine)

    # Reports from the coarse tables agree with sums over the recorded events.
    start, end = DAY0.date(), DAY0.date() + timedelta(days=3)
    for env in (LIVE, TEST):
        mine = [e for e in recorded if e.environment is env]
        report = await ledger.revenue(project.id, env, start, end, top=3)
        assert report.totals.requests == len(mine)
        assert report.totals.charge == sum((e.charge or Decimal(0) for e in mine), Decimal(0))
        assert report.totals.unpriced_requests == sum(not e.priced for e in mine)
        by_day: dict[date, int] = defaultdict(int)
        for e in mine:
            by_day[e.timestamp.date()] += 1
        assert [(d.day, d.totals.requests) for d in report.daily] == sorted(by_day.items())
        spend: dict[str, Decimal] = defaultdict(Decimal)
        for e in mine:
            if e.end_user_id is not None:
                spend[e.end_user_id] += e.charge or Decimal(0)
        best = sorted(spend.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
        assert [(u.end_user_id, u.totals.charge) for u in report.top_users] == best
        for user in ("u1", "big spender"):
            usage = await ledger.usage(UserKey(project.id, env, user), "day", start, end)
            theirs = [e for e in mine if e.end_user_id == user]
            assert sum(r.totals.requests for r in usage) == len(theirs)
            assert sum(r.totals.total_tokens for r in usage) == sum(e.total_tokens for e in theirs)
            totals = await ledger.window_totals(UserKey(project.id, env, user), end)
            this_month = [e for e in theirs if e.timestamp.month == end.month]
            assert totals.monthly_requests == len(this_month)


async def test_concurrent_writers_keep_coarse_equal_to_fine(db, ledger, project):
    rng = random.Random(7)
    batches = [[random_event(rng, project.id, 400) for _ in range(12)] for _ in range(60)]
    await asyncio.gather(*(ledger.record_events(b) for b in batches))  # no deadlock, no loss
    await assert_coarse_equals_fine(db.engine)
    async with db.engine.connect() as conn:
        events = (await conn.execute(select(func.count()).select_from(t.usage_events))).scalar()
        requests = (await conn.execute(select(func.sum(t.usage_project_daily.c.requests)))).scalar()
    assert int(requests) == events


async def test_repricing_moves_the_coarse_rows_with_the_fine_ones(db, ledger, project):
    events = [
        UsageEvent(
            project_id=project.id,
            environment=LIVE,
            event_id=f"unpriced-{i}",
            end_user_id=["u1", "u2", None][i % 3],
            timestamp=DAY0 + timedelta(hours=13 * i),
            model="mystery",
            total_tokens=10,
            priced=False,
        )
        for i in range(9)
    ]
    await ledger.record_events(events)
    repricer = SqlRepricer(db.engine)
    unpriced = await repricer.unpriced_events(project.id, LIVE)
    assert len(unpriced) == 9
    updates = [
        RepricedEvent(u.pk, Decimal("0.000000003") * (i + 1), Decimal("0.1"), Decimal("0.2"))
        for i, u in enumerate(unpriced)
    ]
    assert await repricer.reprice_events(project.id, LIVE, updates) == 9
    await assert_coarse_equals_fine(db.engine)
    report = await ledger.revenue(project.id, LIVE, DAY0.date(), DAY0.date() + timedelta(days=5))
    assert report.totals.unpriced_requests == 0
    assert report.totals.charge == Decimal("1.8")
    assert report.totals.provider_cost == from_nanos(3 * 45)


async def test_the_migration_fills_the_coarse_tables_from_existing_rollups(
    tmp_path, pg_database_url
):
    """Rollups written before revision 0004 are summed into the new tables."""
    for url in (f"sqlite:///{tmp_path}/old.db", pg_database_url):
        engine = create_engine(url)
        try:
            await migrate(engine, "0003")
            async with engine.begin() as conn:
                rng = random.Random(3)
                rows = {}
                for _ in range(300):
                    key = (
                        rng.choice(["p1", "p2"]),
                        rng.choice(["live", "test"]),
                        rng.choice(["", "u1", "u2", "u3"]),
                        rng.choice(["", "gpt-4o", "claude"]),
                        rng.choice(["", "openai"]),
                        date(2025, 3, 1) + timedelta(days=rng.randrange(40)),
                    )
                    rows[key] = [rng.randrange(10**12) for _ in ROLLUP_SUMS]
                await conn.execute(
                    t.usage_daily_rollups.insert(),
                    [
                        dict(
                            zip(
                                ("project_id", "environment", "end_user_id", "model",
                                 "provider", "day", *ROLLUP_SUMS),
                                (*k, *v),
                                strict=True,
                            )
                        )
                        for k, v in rows.items()
                    ],
                )  # fmt: skip
            await migrate(engine)
            await assert_coarse_equals_fine(engine)
            async with engine.connect() as conn:
                n = await conn.execute(select(func.count()).select_from(t.usage_user_daily))
                assert n.scalar() > 100
        finally:
            await engine.dispose()
