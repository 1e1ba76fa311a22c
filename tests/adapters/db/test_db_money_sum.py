"""A million nano-precision charges at rest sum to exactly their Decimal sum, through the
fine rollups, the coarse ones built from them in SQL, and the revenue report."""

from __future__ import annotations

import random
import time
from datetime import date, timedelta
from decimal import Decimal
from functools import reduce

import pytest

from meterline.adapters.db import tables as t
from meterline.adapters.db.coarse_rollups import rebuild
from meterline.domain.entities import Environment
from meterline.domain.money import CTX, from_nanos

ROWS = 1_000_000
CHUNK = 50_000
USERS = 1_000


COLUMNS = [c.name for c in t.usage_daily_rollups.columns]


async def bulk_insert(db, rows: list[tuple]) -> None:
    """The fastest load each backend offers, so the test measures sums, not inserts:
    COPY on PostgreSQL (server-side index maintenance alone is most of the time), one
    driver-level executemany on SQLite."""
    async with db.engine.begin() as conn:
        if db.backend == "postgres":
            raw = await conn.get_raw_connection()
            await raw.driver_connection.copy_records_to_table(
                t.usage_daily_rollups.name, records=rows, columns=COLUMNS
            )
            await rebuild(conn, rows[0][0])  # the per-user and per-project sums, in SQL
            return
        day = COLUMNS.index("day")
        sql = (
            f"INSERT INTO {t.usage_daily_rollups.name} ({', '.join(COLUMNS)}) "
            f"VALUES ({', '.join('?' * len(COLUMNS))})"
        )
        for start in range(0, len(rows), CHUNK):
            chunk = [
                (*r[:day], r[day].isoformat(), *r[day + 1 :]) for r in rows[start : start + CHUNK]
            ]
            await conn.exec_driver_sql(sql, chunk)
        await rebuild(conn, rows[0][0])


@pytest.mark.slow
async def test_summing_a_million_random_charges_is_exact(db, ledger, project):
    rng = random.Random(20250314)
    # Up to $1,000 each, every nano-dollar digit random: a float sum would drift.
    charges = [rng.randrange(10**12) for _ in range(ROWS)]
    first_day = date(2024, 1, 1)
    rows = [
        (
            project.id,
            "live",
            f"u{i % USERS:04d}",
            "",
            "",
            first_day + timedelta(days=i // USERS),
            1,
            0,
            0,
            0,
            charges[i] // 3,
            charges[i] - charges[i] // 3,
            charges[i],
            0,
        )
        for i in range(ROWS)
    ]
    started = time.monotonic()
    await bulk_insert(db, rows)
    inserted = time.monotonic() - started

    expected = reduce(CTX.add, (from_nanos(n) for n in charges), Decimal(0))
    last_day = first_day + timedelta(days=ROWS // USERS - 1)
    report = await ledger.revenue(project.id, Environment.LIVE, first_day, last_day, top=3)
    assert report.totals.requests == ROWS
    assert report.totals.charge == expected
    assert report.totals.provider_cost + report.totals.markup == expected
    assert len(report.daily) == ROWS // USERS
    assert reduce(CTX.add, (d.totals.charge for d in report.daily), Decimal(0)) == expected
    by_user = [Decimal(0)] * USERS
    for i, nanos in enumerate(charges):
        by_user[i % USERS] += from_nanos(nanos)
    best = sorted(range(USERS), key=lambda u: (-by_user[u], u))[:3]
    assert [u.end_user_id for u in report.top_users] == [f"u{u:04d}" for u in best]
    assert [u.totals.charge for u in report.top_users] == [by_user[u] for u in best]
    assert inserted < 60, f"bulk insert took {inserted:.1f}s"
