# Ad-hoc: time the invoice run (``Invoicing.generate`` for every end user of a month) on
# PostgreSQL at scale. Run from the repository root:
#
#   .venv/bin/python bench/adhoc/invoice_run_pg.py setup --db ml_inv_1k \
#       --users 1000 --events 1000000
#   .venv/bin/python bench/adhoc/invoice_run_pg.py run --db ml_inv_1k       # current tree
#   .venv/bin/python bench/adhoc/invoice_run_pg.py run --db ml_inv_1k --src /tmp/inv_before
#
# ``setup`` creates a fresh database (dropped first if it exists), migrates it with
# meterline's own migrations, creates a project and COPYs usage into it: ``--users`` end
# users with a Zipf-like activity (s = 0.9), ``--events`` events spread over 2026-10
# (plus 1 % in the first days of 2026-11, outside the period), 20 models over 3 providers,
# a 20 % markup, a flat fee of $0.001 per request for every third user, 1 % unpriced
# events, 2 % in the test environment and 0.5 % without an end user. The secondary indexes
# of ``usage_events`` are dropped during the COPY and rebuilt after (same definitions), and
# the daily rollups are built from the events with one INSERT … SELECT (as bench/scale.py).
#
# ``run`` deletes every invoice, then times ``Invoicing.generate`` in-process (no HTTP) for
# the live environment and 2026-10-01 … 2026-10-31, once on an empty invoice table (the
# first run) and once more on top of the drafts it wrote (the re-run: every draft is
# recomputed and replaced). ``--src DIR`` puts DIR first on sys.path, so a saved copy of
# the package (the code before a change) can be timed against the same database.
# ``--sqlite`` copies the PostgreSQL data into a SQLite file first and times that instead;
# ``--explicit N`` also times a run for the N most active users passed by id.
# Not part of `make bench`.
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
import uuid
from datetime import UTC, date, datetime, timedelta

PG_BASE = os.environ.get("METERLINE_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
PERIOD = (date(2026, 10, 1), date(2026, 10, 31))

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from scale import EVENT_COLUMNS, MODELS, _cumulative, _user_weights  # noqa: E402

ROLLUPS = """
INSERT INTO usage_daily_rollups (project_id, environment, end_user_id, model, provider, day,
    requests, prompt_tokens, completion_tokens, total_tokens, provider_cost_nanos, markup_nanos,
    charge_nanos, unpriced_requests)
SELECT project_id, environment, coalesce(end_user_id, ''), coalesce(model, ''),
       coalesce(provider, ''), ("timestamp" AT TIME ZONE 'UTC')::date,
       count(*), sum(prompt_tokens), sum(completion_tokens), sum(total_tokens),
       coalesce(sum(provider_cost_nanos), 0), coalesce(sum(markup_nanos), 0),
       coalesce(sum(charge_nanos), 0), count(*) FILTER (WHERE NOT priced)
FROM usage_events GROUP BY 1, 2, 3, 4, 5, 6
"""


def _records(rng: random.Random, project_id: str, users: list[str], cum, n: int, base: int):
    start = datetime(2026, 10, 1, tzinfo=UTC)
    span = 31 * 86400
    chosen = rng.choices(users, cum_weights=cum, k=n)
    out = []
    for i in range(n):
        provider, model, pin, pout = MODELS[int(rng.random() ** 2 * len(MODELS))]
        prompt = rng.randint(50, 4000)
        completion = rng.randint(10, 1200) if pout else 0
        cost = int(prompt * pin * 1000 + completion * pout * 1000)
        user = chosen[i]
        r = rng.random()
        if r < 0.005:
            user = None
        env = "test" if rng.random() < 0.02 else "live"
        fee = 1_000_000 if user is not None and int(user[5:]) % 3 == 0 else 0
        priced = rng.random() >= 0.01
        money = (cost, cost // 5 + fee, fee, cost + cost // 5 + fee) if priced else (None,) * 4
        if rng.random() < 0.01:
            ts = datetime(2026, 11, 1, tzinfo=UTC) + timedelta(seconds=rng.random() * 3 * 86400)
        else:
            ts = start + timedelta(seconds=rng.random() * span)
        out.append(
            (
                f"evt_{uuid.uuid4().hex}",
                project_id,
                env,
                f"bench-{base + i}",
                user,
                ts,
                model,
                provider,
                prompt,
                completion,
                prompt + completion,
                0,
                priced,
                False,
                money[0],
                money[1],
                money[3],
                rng.randint(150, 9000),
                "success",
                "{}",
                None,
                "",
                "bench-invoice",
                ts,
                money[2],
            )
        )
    return out


async def setup(args: argparse.Namespace) -> None:
    import asyncpg

    from meterline.adapters.db import SqlAccounts, create_engine, migrate

    admin = await asyncpg.connect(f"{PG_BASE}/postgres")
    await admin.execute(f'DROP DATABASE IF EXISTS "{args.db}" WITH (FORCE)')
    await admin.execute(f'CREATE DATABASE "{args.db}"')
    await admin.close()
    url = f"{PG_BASE}/{args.db}"
    engine = create_engine(url)
    await migrate(engine)
    accounts = SqlAccounts(engine)
    org = await accounts.create_organization("Bench")
    project = await accounts.create_project(org, "Invoice bench")
    await engine.dispose()

    conn = await asyncpg.connect(url)
    try:
        t0 = time.monotonic()
        indexes = await conn.fetch(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'usage_events' "
            "AND indexname NOT LIKE 'pk_%' AND indexname NOT LIKE 'uq_%'"
        )
        uniques = await conn.fetch(
            "SELECT conname, pg_get_constraintdef(oid) AS def FROM pg_constraint "
            "WHERE conrelid = 'usage_events'::regclass AND contype = 'u'"
        )
        for row in uniques:
            await conn.execute(f'ALTER TABLE usage_events DROP CONSTRAINT "{row["conname"]}"')
        for row in indexes:
            await conn.execute(f'DROP INDEX "{row["indexname"]}"')
        users = [f"user_{i:05d}" for i in range(args.users)]
        cum = list(_cumulative(_user_weights(args.users)))
        rng = random.Random(11)
        written = 0
        columns = [*EVENT_COLUMNS, "flat_fee_nanos"]
        while written < args.events:
            n = min(100_000, args.events - written)
            records = _records(rng, project.id, users, cum, n, written)
            await conn.copy_records_to_table("usage_events", columns=columns, records=records)
            written += n
            print(f"  {written:,} events ({time.monotonic() - t0:.0f} s)", flush=True)
        for row in uniques:
            await conn.execute(
                f'ALTER TABLE usage_events ADD CONSTRAINT "{row["conname"]}" {row["def"]}'
            )
        for row in indexes:
            await conn.execute(row["indexdef"])
        await conn.execute(ROLLUPS)
        await conn.execute("VACUUM ANALYZE")
        size = await conn.fetchval("SELECT pg_size_pretty(pg_database_size(current_database()))")
        rollups = await conn.fetchval("SELECT count(*) FROM usage_daily_rollups")
        print(
            json.dumps(
                {
                    "db": args.db,
                    "project_id": project.id,
                    "users": args.users,
                    "events": written,
                    "rollup_rows": rollups,
                    "size": size,
                    "setup_s": round(time.monotonic() - t0, 1),
                }
            )
        )
    finally:
        await conn.close()


async def _copy_to_sqlite(url: str, path: str) -> str:
    """The PostgreSQL bench data into a fresh, migrated SQLite file; returns its URL."""
    from sqlalchemy import select

    from meterline.adapters.db import create_engine, migrate
    from meterline.adapters.db import tables as t

    if os.path.exists(path):  # noqa: ASYNC240 (a bench script, before any work starts)
        os.remove(path)
    sqlite_url = f"sqlite:///{path}"
    src, dst = create_engine(url), create_engine(sqlite_url)
    await migrate(dst)
    for table in (t.organizations, t.projects, t.end_users, t.usage_events):
        async with src.connect() as s, dst.begin() as d:
            if table is t.projects:
                await d.execute(t.projects.delete())
                await d.execute(t.organizations.delete())
                rows = (await s.execute(select(t.organizations))).mappings().all()
                await d.execute(t.organizations.insert(), [dict(r) for r in rows])
            elif table is t.organizations:
                continue
            result = await s.stream(select(table))
            async for part in result.mappings().partitions(20_000):
                await d.execute(table.insert(), [dict(r) for r in part])
    await src.dispose()
    await dst.dispose()
    return sqlite_url


class _Clock:
    def now(self) -> datetime:
        return datetime.now(UTC)


async def run(args: argparse.Namespace) -> None:
    if args.src:
        sys.path.insert(0, args.src)
    from sqlalchemy import delete, func, select

    import meterline
    from meterline.adapters.db import SqlAccounts, SqlInvoices, create_engine
    from meterline.adapters.db import tables as t
    from meterline.domain.entities import ApiKey, Environment
    from meterline.services.auth import AuthContext
    from meterline.services.invoicing import Invoicing

    url = f"{PG_BASE}/{args.db}"
    if args.sqlite:
        url = await _copy_to_sqlite(url, args.sqlite)
    engine = create_engine(url)
    async with engine.connect() as conn:
        project_id = (await conn.execute(select(t.projects.c.id))).scalar_one()
        events = (await conn.execute(select(func.count()).select_from(t.usage_events))).scalar()
    project = await SqlAccounts(engine).get_project(project_id)
    assert project is not None
    ctx = AuthContext(key=ApiKey("key", project_id, Environment.LIVE, "mk_live_x"), project=project)
    invoicing = Invoicing(SqlInvoices(engine), _Clock())
    async with engine.begin() as conn:
        await conn.execute(delete(t.invoices))
    report: dict[str, object] = {
        "code": os.path.dirname(meterline.__file__),
        "backend": engine.dialect.name,
        "events": events,
    }
    for label in ("first_run", "re_run"):
        t0 = time.perf_counter()
        result = await invoicing.generate(ctx, *PERIOD)
        seconds = time.perf_counter() - t0
        users = len(result.generated) + len(result.skipped) + len(result.errors)
        report[label] = {
            "seconds": round(seconds, 2),
            "users": users,
            "generated": len(result.generated),
            "skipped": len(result.skipped),
            "errors": len(result.errors),
            "ms_per_user": round(1000 * seconds / max(1, users), 3),
            "lines": sum(len(inv.lines) for inv in result.generated),
            "total_cents": sum(inv.total_cents for inv in result.generated),
        }
        print(json.dumps({label: report[label]}), flush=True)
    if args.explicit:
        # a bounded run, as bench/scale.py times it: the N most active users, by id
        _e = t.usage_events.c
        top = (
            select(_e.end_user_id)
            .where(_e.environment == "live", _e.end_user_id.is_not(None))
            .group_by(_e.end_user_id)
            .order_by(func.count().desc(), _e.end_user_id)
            .limit(args.explicit)
        )
        async with engine.connect() as conn:
            users = list((await conn.execute(top)).scalars())
        t0 = time.perf_counter()
        result = await invoicing.generate(ctx, *PERIOD, users)
        seconds = time.perf_counter() - t0
        report["explicit_top_users"] = {
            "seconds": round(seconds, 2),
            "users": len(users),
            "generated": len(result.generated),
            "ms_per_user": round(1000 * seconds / max(1, len(users)), 3),
        }
        print(json.dumps({"explicit_top_users": report["explicit_top_users"]}), flush=True)
    async with engine.connect() as conn:
        report["invoices_in_db"] = (
            await conn.execute(select(func.count()).select_from(t.invoices))
        ).scalar()
    await engine.dispose()
    print(json.dumps(report))


async def steady(args: argparse.Namespace) -> None:
    """The month after: October finalized for every user (done once, with the current
    code, and kept), then November's run timed, which must look for late October usage
    among events that are almost all linked already."""
    if args.src:
        sys.path.insert(0, args.src)
    from sqlalchemy import delete, func, select

    import meterline
    from meterline.adapters.db import SqlAccounts, SqlInvoices, create_engine
    from meterline.adapters.db import tables as t
    from meterline.domain.entities import ApiKey, Environment
    from meterline.domain.invoices import InvoiceStatus
    from meterline.services.auth import AuthContext
    from meterline.services.invoicing import Invoicing

    engine = create_engine(f"{PG_BASE}/{args.db}")
    async with engine.connect() as conn:
        project_id = (await conn.execute(select(t.projects.c.id))).scalar_one()
        opened = (
            await conn.execute(
                select(func.count())
                .select_from(t.invoices)
                .where(t.invoices.c.status == "open", t.invoices.c.period_start == PERIOD[0])
            )
        ).scalar()
    project = await SqlAccounts(engine).get_project(project_id)
    assert project is not None
    ctx = AuthContext(key=ApiKey("key", project_id, Environment.LIVE, "mk_live_x"), project=project)
    store = SqlInvoices(engine)
    invoicing = Invoicing(store, _Clock())
    report: dict[str, object] = {"code": os.path.dirname(meterline.__file__)}
    if not opened:
        async with engine.begin() as conn:
            await conn.execute(delete(t.invoices))
            # finalization refuses unpriced usage: price it (rollups are not used here)
            await conn.execute(
                t.usage_events.update()
                .where(t.usage_events.c.priced.is_(False))
                .values(
                    priced=True,
                    provider_cost_nanos=1000,
                    markup_nanos=200,
                    flat_fee_nanos=0,
                    charge_nanos=1200,
                )
            )
        await invoicing.generate(ctx, *PERIOD)
    t0 = time.perf_counter()
    drafts = await store.list_invoices(
        project_id,
        Environment.LIVE,
        status=InvoiceStatus.DRAFT,
        period_start=PERIOD[0],
        period_end=PERIOD[1],
        limit=100_000,
    )
    for k, inv in enumerate(sorted(drafts, key=lambda i: i.total_cents)):
        if k % 100 == 0:  # fresh statistics as the link table fills
            async with engine.begin() as conn:
                await conn.exec_driver_sql("ANALYZE invoice_event_links")
        await store.finalize(project_id, Environment.LIVE, inv.id, _Clock().now(), "USD")
    if drafts:
        report["finalized_october"] = {"invoices": len(drafts), "seconds": time.perf_counter() - t0}
    async with engine.begin() as conn:
        await conn.exec_driver_sql("ANALYZE")
    nov = (date(2026, 11, 1), date(2026, 11, 30))
    async with engine.begin() as conn:
        await conn.execute(delete(t.invoices).where(t.invoices.c.period_start == nov[0]))
    # late October usage for a tenth of the users, arriving after October was finalized
    await _late_events(engine, project_id)
    for label in ("november_first_run", "november_re_run"):
        t0 = time.perf_counter()
        result = await invoicing.generate(ctx, *nov)
        seconds = time.perf_counter() - t0
        users = len(result.generated) + len(result.skipped) + len(result.errors)
        report[label] = {
            "seconds": round(seconds, 2),
            "users": users,
            "generated": len(result.generated),
            "ms_per_user": round(1000 * seconds / max(1, users), 3),
            "late_lines": sum(1 for i in result.generated for ln in i.lines if ln.late),
            "total_cents": sum(inv.total_cents for inv in result.generated),
        }
        print(json.dumps({label: report[label]}), flush=True)
    await engine.dispose()
    print(json.dumps(report))


async def _late_events(engine, project_id: str) -> None:
    """Once: 2,000 late October events for every tenth user (ids ``late-…``)."""
    from sqlalchemy import func, select

    from meterline.adapters.db import tables as t

    async with engine.connect() as conn:
        query = select(func.count()).where(t.usage_events.c.event_id.like("late-%"))
        if (await conn.execute(query)).scalar():
            return
        users = list(
            (
                await conn.execute(
                    select(t.end_users.c.end_user_id).order_by(t.end_users.c.end_user_id)
                )
            ).scalars()
        )
    rng = random.Random(5)
    rows = []
    for n in range(2000):
        user = users[rng.randrange(0, len(users), 10)] if users else f"user_{n % 100:05d}"
        ts = datetime(2026, 10, 1, tzinfo=UTC) + timedelta(seconds=rng.random() * 31 * 86400)
        rows.append(
            {
                "id": f"evt_{uuid.uuid4().hex}",
                "project_id": project_id,
                "environment": "live",
                "event_id": f"late-{n}",
                "end_user_id": user,
                "timestamp": ts,
                "model": "gpt-4o",
                "provider": "openai",
                "prompt_tokens": 100,
                "completion_tokens": 50,
                "total_tokens": 150,
                "cached_tokens": 0,
                "priced": True,
                "estimated": False,
                "provider_cost_nanos": 750_000,
                "markup_nanos": 150_000,
                "flat_fee_nanos": 0,
                "charge_nanos": 900_000,
                "latency_ms": 100,
                "status": "success",
                "metadata": {},
                "reservation_id": None,
                "fingerprint": "",
                "source": "bench-invoice",
                "recorded_at": datetime.now(UTC),
            }
        )
    async with engine.begin() as conn:
        await conn.execute(t.usage_events.insert(), rows)


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("setup")
    s.add_argument("--db", required=True)
    s.add_argument("--users", type=int, default=1000)
    s.add_argument("--events", type=int, default=1_000_000)
    r = sub.add_parser("run")
    r.add_argument("--db", required=True)
    r.add_argument("--src", default=None, help="a directory holding a meterline package")
    r.add_argument("--sqlite", default=None, help="copy into this SQLite file and time that")
    r.add_argument("--explicit", type=int, default=0, help="also time the top N users by id")
    st = sub.add_parser("steady")
    st.add_argument("--db", required=True)
    st.add_argument("--src", default=None, help="a directory holding a meterline package")
    args = parser.parse_args()
    jobs = {"setup": setup, "run": run, "steady": steady}
    asyncio.run(jobs[args.cmd](args))


if __name__ == "__main__":
    main()
