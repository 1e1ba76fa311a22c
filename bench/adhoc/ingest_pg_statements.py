# Ad-hoc: PostgreSQL's own time for one ledger write (a batch of 1,000 events for 1,000
# end users), by EXPLAIN ANALYZE on a fresh, migrated database. The write is one
# statement (events and the three rollups: adapters/db/pg_ledger_write.py); PROFILE=1
# also prints each plan node's own time (the events insert, each rollup upsert).
# Run from the repository root: .venv/bin/python bench/adhoc/ingest_pg_statements.py
# FILLFACTOR=100 resets the rollup tables to PostgreSQL's default first (to compare with
# migration 0005); BATCHES (default 6) batches are written, each statement timed.
# Not part of `make bench`. BENCH_PG as in ingest_inprocess.py.
import asyncio
import os
import tempfile
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import asyncpg

from meterline.adapters.db.ledger_rows import event_rows, new_event_ids
from meterline.adapters.db.pg_json_rows import json_rows
from meterline.config import Settings
from meterline.container import build_container
from meterline.domain.entities import Environment, UsageEvent
from meterline.services.bootstrap import initialize

PG_BASE = os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
ROLLUPS = ("usage_daily_rollups", "usage_user_daily", "usage_project_daily")


async def explain(conn: asyncpg.Connection, sql: str, rows: str) -> float:
    plan = await conn.fetch("EXPLAIN (ANALYZE, TIMING OFF) " + sql.replace(":rows", "$1"), rows)
    return float(plan[-1][0].split(":")[1].split()[0])  # "Execution Time: 12.3 ms"


async def node_times(conn: asyncpg.Connection, sql: str, rows: str) -> str:
    """Each ModifyTable node's total time (the events insert, each rollup upsert)."""
    plan = await conn.fetchval("EXPLAIN (ANALYZE, FORMAT JSON) " + sql.replace(":rows", "$1"), rows)
    import json

    found: list[str] = []

    def walk(node: dict) -> None:
        if node.get("Node Type") == "ModifyTable":
            found.append(f"{node['Relation Name']} {node['Actual Total Time']:.1f} ms")
        for child in node.get("Plans", []):
            walk(child)

    walk(json.loads(plan)[0]["Plan"])
    return ", ".join(found)


async def main() -> None:
    db = f"ml_statements_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(f"{PG_BASE}/postgres")
    await admin.execute(f'CREATE DATABASE "{db}"')
    settings = Settings(
        home=Path(tempfile.mkdtemp()), database_url=f"{PG_BASE}/{db}", secret_key="t"
    )
    container = await build_container(settings)
    conn = await asyncpg.connect(f"{PG_BASE}/{db}")
    try:
        if os.environ.get("FILLFACTOR"):
            for table in ROLLUPS:
                await conn.execute(
                    f"ALTER TABLE {table} SET (fillfactor={os.environ['FILLFACTOR']})"
                )
        init = await initialize(container.accounts)
        ctx = await container.auth.authenticate(init.live_key or "")
        statements = container.ledger._statements
        now = datetime.now(UTC)
        for batch in range(int(os.environ.get("BATCHES", "6"))):
            events = [
                UsageEvent(
                    project_id=ctx.project_id,
                    environment=Environment.LIVE,
                    event_id=f"e{batch}-{i}",
                    end_user_id=f"u_{i}",
                    timestamp=now,
                    model="gpt-4o",
                    provider="openai",
                    prompt_tokens=800,
                    completion_tokens=90,
                    total_tokens=890,
                    provider_cost=Decimal("0.002930000"),
                    markup=Decimal(0),
                    charge=Decimal("0.002930000"),
                    priced=True,
                    recorded_at=now,
                    fingerprint="f" * 64,
                )
                for i in range(1000)
            ]
            _, rows = event_rows(events, new_event_ids(len(events)), now)
            param = json_rows(rows)["rows"]
            if os.environ.get("PROFILE"):
                print(f"batch {batch}: " + await node_times(conn, str(statements.pg_write), param))
            else:
                took = await explain(conn, str(statements.pg_write), param)
                print(f"batch {batch}: write {took:.1f} ms")
    finally:
        await conn.close()
        await container.close()
        await admin.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
