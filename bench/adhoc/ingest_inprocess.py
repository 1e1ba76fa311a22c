# Ad-hoc: batch ingest throughput, in-process (httpx.ASGITransport, no network, no uvicorn).
# Run from the repository root:
#   .venv/bin/python bench/adhoc/ingest_inprocess.py --backend sqlite
#   .venv/bin/python bench/adhoc/ingest_inprocess.py --backend postgres   # + Redis counters
# Options: --batches N (default 20), --batch-size (1000), --users (1000), --concurrency (2),
# --profile FILE (cProfile of the timed part, e.g. /tmp/ingest.prof).
# Not part of `make bench`. PostgreSQL: a fresh database on BENCH_PG (default
# postgresql://postgres@127.0.0.1:5432), dropped afterwards; Redis: BENCH_REDIS db 9, flushed.
#
# Two phases, each timed separately: "cold" (the first batch(es) touch users nobody has
# seen: they are created) and "warm" (the same users again). Every batch has distinct
# event ids; at the end the ledger is checked: events == recorded, rollups == sum(events).
from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
from sqlalchemy import text

from meterline.config import Settings
from meterline.container import build_container
from meterline.services.bootstrap import initialize
from meterline.web.app import create_app

PG_BASE = os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
REDIS_URL = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/9")
MODELS = [("openai", "gpt-4o"), ("openai", "gpt-4o-mini"), ("anthropic", "claude-3-5-sonnet")]


def body(run: str, b: int, size: int, users: int, now: str) -> bytes:
    return orjson.dumps(
        {
            "events": [
                {
                    "end_user_id": f"u_{(b * size + i) % users}",
                    "provider": MODELS[i % len(MODELS)][0],
                    "model": MODELS[i % len(MODELS)][1],
                    "prompt_tokens": 800 + i % 50,
                    "completion_tokens": 90 + i % 13,
                    "event_id": f"{run}-{b}-{i}",
                    "timestamp": now,
                    "latency_ms": 420,
                }
                for i in range(size)
            ]
        }
    )


async def post_all(
    client: httpx.AsyncClient, bodies: list[bytes], concurrency: int, key: str
) -> tuple[float, int, list[float]]:
    h = {"Authorization": f"Bearer {key}", "content-type": "application/json"}
    queue = list(reversed(bodies))
    recorded = 0
    lat: list[float] = []

    async def worker() -> None:
        nonlocal recorded
        while queue:
            content = queue.pop()
            t = time.perf_counter()
            r = await client.post("/api/v1/billing/usage-events", content=content, headers=h)
            lat.append(time.perf_counter() - t)
            if r.status_code != 200:
                raise RuntimeError(f"{r.status_code}: {r.text[:300]}")
            recorded += r.json()["recorded"]

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - t0, recorded, lat


def instrument(metering: Any, phases: dict[str, float]) -> None:
    """Wrap the metering phases (instance attributes) to add up their wall time."""

    def wrap(obj: Any, name: str, label: str) -> None:
        inner = getattr(obj, name)

        async def timed(*a: Any, **kw: Any) -> Any:
            t = time.perf_counter()
            try:
                return await inner(*a, **kw)
            finally:
                phases[label] = phases.get(label, 0.0) + time.perf_counter() - t

        setattr(obj, name, timed)

    wrap(metering, "record", "record (all)")
    if hasattr(metering, "_users"):
        wrap(metering._users, "get_or_create_many", "users")
    wrap(metering, "price_event", "price")
    wrap(metering, "_write", "ledger write")
    wrap(metering, "_after_recorded", "settle")


async def main(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="ml-ingest-"))
    pg_db = None
    if args.backend == "sqlite":
        settings = Settings(home=tmp, database_url=f"sqlite:///{tmp}/t.db", secret_key="t")
    else:
        pg_db = f"ml_ingest_{uuid.uuid4().hex[:8]}"
        conn = await asyncpg.connect(f"{PG_BASE}/postgres")
        await conn.execute(f'CREATE DATABASE "{pg_db}"')
        await conn.close()
        import redis.asyncio as aioredis

        r = aioredis.from_url(REDIS_URL)
        await r.flushdb()
        await r.aclose()
        settings = Settings(
            home=tmp,
            database_url=f"{PG_BASE}/{pg_db}",
            redis_url=REDIS_URL,
            secret_key="t",
        )
    container = await build_container(settings)
    phases: dict[str, float] = {}
    if args.phases:
        instrument(container.metering, phases)
    try:
        init = await initialize(container.accounts)
        app = create_app(container=container)
        transport = httpx.ASGITransport(app=app)
        run = uuid.uuid4().hex[:8]
        now = datetime.now(UTC).isoformat()
        size, users = args.batch_size, args.users
        cold_batches = max(1, -(-users // size))
        bodies = [body(run, b, size, users, now) for b in range(cold_batches + args.batches)]
        async with httpx.AsyncClient(transport=transport, base_url="http://m", timeout=600) as c:
            # warm-up: one tiny batch (auth, plan caches, prepared statements)
            await post_all(c, [body(run + "w", 0, 5, 5, now)], 1, init.live_key or "")
            wall, rec, _ = await post_all(c, bodies[:cold_batches], 1, init.live_key or "")
            print(
                f"{args.backend} cold  : {rec} events (new users) in {wall:.2f} s"
                f" = {rec / wall:,.0f} events/s"
            )
            prof = cProfile.Profile() if args.profile else None
            if prof:
                prof.enable()
            cpu = time.process_time()
            wall, rec, lat = await post_all(
                c, bodies[cold_batches:], args.concurrency, init.live_key or ""
            )
            cpu = time.process_time() - cpu
            if prof:
                prof.disable()
                prof.dump_stats(args.profile)
            lat.sort()
            print(
                f"{args.backend} warm  : {rec} events in {wall:.2f} s = {rec / wall:,.0f} events/s"
                f" (batch p50 {lat[len(lat) // 2] * 1000:.0f} ms, max {lat[-1] * 1000:.0f} ms,"
                f" c={args.concurrency}); process CPU {cpu * 1000 / args.batches:.1f} ms per batch"
                " (client included)"
            )
        if phases:
            total = sum(phases.values())
            print(
                "phases (wall s, all batches incl. cold):",
                {k: round(v, 3) for k, v in phases.items()},
                f"sum {total:.2f}",
            )
        engine = container.engine if hasattr(container, "engine") else None
        if engine is not None:
            async with engine.connect() as conn:
                n = (await conn.execute(text("select count(*) from usage_events"))).scalar()
                ev = (
                    await conn.execute(
                        text(
                            "select coalesce(sum(total_tokens),0), coalesce(sum(charge_nanos),0)"
                            " from usage_events"
                        )
                    )
                ).one()
                ro = (
                    await conn.execute(
                        text(
                            "select coalesce(sum(requests),0), coalesce(sum(total_tokens),0),"
                            " coalesce(sum(charge_nanos),0) from usage_daily_rollups"
                        )
                    )
                ).one()
                eu = (await conn.execute(text("select count(*) from end_users"))).scalar()
            print(f"check: events={n} rollups={tuple(ro)} events_sum={tuple(ev)} end_users={eu}")
            if ro[0] != n or ro[1] != ev[0] or ro[2] != ev[1]:
                raise SystemExit("ROLLUPS DO NOT MATCH EVENTS")
    finally:
        await container.close()
        if pg_db:
            conn = await asyncpg.connect(f"{PG_BASE}/postgres")
            await conn.execute(f'DROP DATABASE IF EXISTS "{pg_db}" WITH (FORCE)')
            await conn.close()


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    p.add_argument("--batches", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=1000)
    p.add_argument("--users", type=int, default=1000)
    p.add_argument("--concurrency", type=int, default=2)
    p.add_argument("--profile", default=None)
    p.add_argument("--phases", action="store_true", help="wall time per metering phase")
    a = p.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    sys.exit(asyncio.run(main(a)))
