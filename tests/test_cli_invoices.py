"""``meterline invoices generate`` as a user runs it, on a fresh SQLite home."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal

from meterline.adapters.db import SqlInvoices, SqlLedger, create_engine
from meterline.domain.entities import Environment, UsageEvent


def run(tmp_path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "METERLINE_HOME": str(tmp_path)}
    env.pop("METERLINE_DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "meterline", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def _seed(db: str, project_id: str) -> None:
    engine = create_engine(f"sqlite:///{db}")
    try:
        await SqlLedger(engine).record_events(
            [
                UsageEvent(
                    project_id=project_id,
                    environment=Environment.LIVE,
                    event_id=f"e{i}",
                    end_user_id=f"u{i % 2}",
                    timestamp=datetime(2026, 11, 3 + i, tzinfo=UTC),
                    model="gpt-4o",
                    provider="openai",
                    provider_cost=Decimal("0.5"),
                    markup=Decimal("0.25"),
                    charge=Decimal("0.75"),
                    fingerprint=f"e{i}",
                )
                for i in range(3)
            ]
        )
    finally:
        await engine.dispose()


async def _drafts(db: str, project_id: str):
    engine = create_engine(f"sqlite:///{db}")
    try:
        return await SqlInvoices(engine).list_invoices(project_id, Environment.LIVE)
    finally:
        await engine.dispose()


def test_generate_period_creates_drafts_then_finalizes(tmp_path):
    init = json.loads(run(tmp_path, "init", "--json").stdout)
    db = str(tmp_path / "meterline.db")
    asyncio.run(_seed(db, init["project_id"]))
    r = run(tmp_path, "invoices", "generate", "--period", "2026-11")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["generated"] == 2 and out["finalized"] == 0 and out["total_cents"] == 225
    drafts = asyncio.run(_drafts(db, init["project_id"]))
    assert sorted(d.status.value for d in drafts) == ["draft", "draft"]

    r = run(tmp_path, "invoices", "generate", "--period", "2026-11", "--finalize")
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert r.returncode == 0 and out["finalized"] == 2, r.stderr
    numbers = sorted(d.number for d in asyncio.run(_drafts(db, init["project_id"])))
    assert numbers == ["ML-000001", "ML-000002"]

    assert run(tmp_path, "invoices", "generate", "--period", "2026-13").returncode == 2
