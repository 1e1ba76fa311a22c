"""Scale: N realistic usage events COPYed straight into PostgreSQL, then the read paths timed.

Used by ``bench/run.py --scale N`` after the PostgreSQL scenario (same database). The
generator writes what the gateway would have written: ``usage_events`` rows (10k end users
with a skewed activity distribution, the last 30 days, 20 models over 3 providers, priced
with a 20 % markup) and the matching ``usage_daily_rollups`` (one ``INSERT … SELECT … GROUP
BY`` over the events, so rollups equal the sum of their events, as the ledger guarantees),
then the coarse per-user and per-project daily rollups from those.
Then a fresh ``meterline serve`` (counters flushed: every user is cold) is timed on:

* the revenue query (``GET /api/v1/billing/revenue`` over the 30 days);
* an end user's usage page (``GET /api/v1/billing/end-users/{id}/usage``);
* ``check-quota`` for a cold user (its counters rebuilt from the ledger);
* the invoice run, if this build has it (``POST /api/v1/billing/invoices``): every end user
  with usage in the month that holds most of the window (about 27 of its 30 days).
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import subprocess
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from run import Bench

END_USERS = 10_000
DAYS = 30
#: (provider, model, input $/Mtok, output $/Mtok)
MODELS = [
    ("openai", "gpt-4o", 2.5, 10),
    ("openai", "gpt-4o-mini", 0.15, 0.6),
    ("openai", "gpt-4.1", 2, 8),
    ("openai", "gpt-4.1-mini", 0.4, 1.6),
    ("openai", "gpt-4.1-nano", 0.1, 0.4),
    ("openai", "o3", 2, 8),
    ("openai", "o4-mini", 1.1, 4.4),
    ("openai", "gpt-5", 1.25, 10),
    ("openai", "gpt-5-mini", 0.25, 2),
    ("openai", "text-embedding-3-small", 0.02, 0),
    ("anthropic", "claude-sonnet-4-5", 3, 15),
    ("anthropic", "claude-haiku-4-5", 1, 5),
    ("anthropic", "claude-opus-4-1", 15, 75),
    ("anthropic", "claude-3-5-haiku-latest", 0.8, 4),
    ("google", "gemini-2.5-pro", 1.25, 10),
    ("google", "gemini-2.5-flash", 0.3, 2.5),
    ("google", "gemini-2.5-flash-lite", 0.1, 0.4),
    ("google", "gemini-2.0-flash", 0.1, 0.4),
    ("openai", "gpt-3.5-turbo", 0.5, 1.5),
    ("openai", "gpt-4-turbo", 10, 30),
]
EVENT_COLUMNS = [
    "id",
    "project_id",
    "environment",
    "event_id",
    "end_user_id",
    "timestamp",
    "model",
    "provider",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cached_tokens",
    "priced",
    "estimated",
    "provider_cost_nanos",
    "markup_nanos",
    "charge_nanos",
    "latency_ms",
    "status",
    "metadata",
    "reservation_id",
    "fingerprint",
    "source",
    "recorded_at",
]
ROLLUP_SQL = """
INSERT INTO usage_daily_rollups (project_id, environment, end_user_id, model, provider, day,
    requests, prompt_tokens, completion_tokens, total_tokens, provider_cost_nanos, markup_nanos,
    charge_nanos, unpriced_requests)
SELECT project_id, environment, coalesce(end_user_id, ''), coalesce(model, ''),
       coalesce(provider, ''), ("timestamp" AT TIME ZONE 'UTC')::date,
       count(*), sum(prompt_tokens), sum(completion_tokens), sum(total_tokens),
       coalesce(sum(provider_cost_nanos), 0), coalesce(sum(markup_nanos), 0),
       coalesce(sum(charge_nanos), 0), count(*) FILTER (WHERE NOT priced)
FROM usage_events WHERE source = 'bench-scale'
GROUP BY 1, 2, 3, 4, 5, 6
ON CONFLICT (project_id, environment, end_user_id, model, provider, day) DO UPDATE SET
    requests = usage_daily_rollups.requests + excluded.requests,
    prompt_tokens = usage_daily_rollups.prompt_tokens + excluded.prompt_tokens,
    completion_tokens = usage_daily_rollups.completion_tokens + excluded.completion_tokens,
    total_tokens = usage_daily_rollups.total_tokens + excluded.total_tokens,
    provider_cost_nanos = usage_daily_rollups.provider_cost_nanos + excluded.provider_cost_nanos,
    markup_nanos = usage_daily_rollups.markup_nanos + excluded.markup_nanos,
    charge_nanos = usage_daily_rollups.charge_nanos + excluded.charge_nanos,
    unpriced_requests = usage_daily_rollups.unpriced_requests + excluded.unpriced_requests
"""


async def _rebuild_coarse_rollups(dsn: str, project_id: str) -> None:
    """The per-user and per-project rollups, summed from the fine ones by meterline's own
    ``coarse_rollups.rebuild``, so they equal them exactly, as the ledger keeps them."""
    from meterline.adapters.db import create_engine
    from meterline.adapters.db.coarse_rollups import rebuild

    engine = create_engine(dsn)
    try:
        async with engine.begin() as conn:
            await rebuild(conn, project_id)
    finally:
        await engine.dispose()


def _user_weights(n: int) -> list[float]:
    """Zipf-like (s = 0.9): a few heavy users, a long tail."""
    return [1 / (rank**0.9) for rank in range(1, n + 1)]


async def generate(dsn: str, project_id: str, events: int, batch: int = 50_000) -> dict[str, Any]:
    import asyncpg

    rng = random.Random(7)
    conn = await asyncpg.connect(dsn)
    try:
        now = datetime.now(UTC).replace(microsecond=0)
        start = now - timedelta(days=DAYS)
        t0 = time.monotonic()
        await conn.copy_records_to_table(
            "end_users",
            columns=[
                "id",
                "project_id",
                "environment",
                "end_user_id",
                "rate_plan_id",
                "blocked",
                "email",
                "name",
                "stripe_customer_id",
                "created_at",
            ],
            records=[
                (
                    f"eu_{uuid.uuid4().hex}",
                    project_id,
                    "live",
                    f"scale_user_{i}",
                    None,
                    False,
                    None,
                    None,
                    None,
                    start,
                )
                for i in range(END_USERS)
            ],
        )
        users = [f"scale_user_{i}" for i in range(END_USERS)]
        cum = list(_cumulative(_user_weights(END_USERS)))
        span = DAYS * 86400
        written = 0
        gen_s = copy_s = 0.0
        while written < events:
            n = min(batch, events - written)
            g0 = time.monotonic()
            chosen = rng.choices(users, cum_weights=cum, k=n)
            records = []
            for i in range(n):
                provider, model, pin, pout = MODELS[int(rng.random() ** 2 * len(MODELS))]
                prompt = rng.randint(50, 4000)
                completion = rng.randint(10, 1200) if pout else 0
                cost = int(prompt * pin * 1000 + completion * pout * 1000)  # nanodollars
                markup = cost // 5
                ts = start + timedelta(seconds=rng.random() * span)
                records.append(
                    (
                        f"evt_{uuid.uuid4().hex}",
                        project_id,
                        "live",
                        f"scale-{written + i}",
                        chosen[i],
                        ts,
                        model,
                        provider,
                        prompt,
                        completion,
                        prompt + completion,
                        0,
                        True,
                        False,
                        cost,
                        markup,
                        cost + markup,
                        rng.randint(150, 9000),
                        "success",
                        "{}",
                        None,
                        "",
                        "bench-scale",
                        ts,
                    )
                )
            gen_s += time.monotonic() - g0
            c0 = time.monotonic()
            await conn.copy_records_to_table("usage_events", columns=EVENT_COLUMNS, records=records)
            copy_s += time.monotonic() - c0
            written += n
        events_s = time.monotonic() - t0
        r0 = time.monotonic()
        await conn.execute(ROLLUP_SQL)
        rollup_s = time.monotonic() - r0
        c0 = time.monotonic()
        await _rebuild_coarse_rollups(dsn, project_id)
        coarse_s = time.monotonic() - c0
        a0 = time.monotonic()
        await conn.execute(
            "ANALYZE usage_events; ANALYZE usage_daily_rollups; ANALYZE usage_user_daily; "
            "ANALYZE usage_project_daily; ANALYZE end_users"
        )
        rollups = await conn.fetchval("SELECT count(*) FROM usage_daily_rollups")
        size = await conn.fetchval("SELECT pg_size_pretty(pg_database_size(current_database()))")
        return {
            "events": written,
            "end_users": END_USERS,
            "days": DAYS,
            "models": len(MODELS),
            "generate_and_copy_seconds": events_s,
            "python_generation_seconds": gen_s,
            "copy_seconds": copy_s,
            "copy_events_per_s": written / copy_s,
            "rollup_build_seconds": rollup_s,
            "coarse_rollup_build_seconds": coarse_s,
            "analyze_seconds": time.monotonic() - a0,
            "rollup_rows": rollups,
            "database_size": size,
            "window": [start.date().isoformat(), now.date().isoformat()],
        }
    finally:
        await conn.close()


def _cumulative(weights: list[float]) -> list[float]:
    total, out = 0.0, []
    for w in weights:
        total += w
        out.append(total)
    return out


def _timed(client: httpx.Client, method: str, path: str, **kw: Any) -> tuple[float, httpx.Response]:
    t = time.perf_counter()
    r = client.request(method, path, **kw)
    return 1000 * (time.perf_counter() - t), r


def time_reads(url: str, key: str, window: list[str], invoice_timeout: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    frm, to = window
    with httpx.Client(
        base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=max(120, invoice_timeout)
    ) as c:
        runs = []
        for _ in range(5):
            ms, r = _timed(c, "GET", "/api/v1/billing/revenue", params={"from": frm, "to": to})
            r.raise_for_status()
            runs.append(ms)
        out["revenue_ms"] = {
            "first": runs[0],
            "median": statistics.median(runs),
            "runs": runs,
            "top_user": r.json().get("top_users", [{}])[0].get("end_user_id"),
        }
        for label, users in (
            ("heavy_user", ["scale_user_0", "scale_user_1", "scale_user_2"]),
            ("typical_user", ["scale_user_500", "scale_user_2000", "scale_user_7000"]),
        ):
            times = []
            for u in users:
                ms, r = _timed(
                    c,
                    "GET",
                    f"/api/v1/billing/end-users/{u}/usage",
                    params={"from": frm, "to": to, "granularity": "day"},
                )
                r.raise_for_status()
                times.append(ms)
            out[f"usage_page_{label}_ms"] = {
                "median": statistics.median(times),
                "runs": times,
                "days_returned": len(r.json().get("data", [])),
            }
        cold = []
        for i in range(3, 3 + 40 * 97, 97):  # 40 users never seen by this process
            ms, r = _timed(
                c,
                "GET",
                "/api/v1/billing/check-quota",
                params={"end_user_id": f"scale_user_{i}", "model": "gpt-4o"},
            )
            r.raise_for_status()
            cold.append(ms)
        warm = []
        for i in range(3, 3 + 40 * 97, 97):
            ms, r = _timed(
                c,
                "GET",
                "/api/v1/billing/check-quota",
                params={"end_user_id": f"scale_user_{i}", "model": "gpt-4o"},
            )
            warm.append(ms)
        cold.sort()
        out["check_quota_cold_ms"] = {
            "median": statistics.median(cold),
            "max": cold[-1],
            "p90": cold[int(0.9 * len(cold))],
            "n": len(cold),
            "usage_seen": r.json().get("usage"),
        }
        out["check_quota_same_users_again_ms"] = {"median": statistics.median(warm)}
        probe = c.get("/api/v1/billing/invoices")
        if (
            probe.status_code == 404
            and "not_found" in probe.text
            and "/invoices" not in c.get("/openapi.json").text
        ):
            out["invoice_run"] = "not in this build (no /api/v1/billing/invoices)"
        else:
            # The month that holds most of the window (the generator writes the last 30
            # days), for every end user with usage: no list, the run finds them.
            month_start = datetime.fromisoformat(to).replace(day=1).date()
            next_month = (month_start + timedelta(days=32)).replace(day=1)
            period = {
                "period_start": month_start.isoformat(),
                "period_end": (next_month - timedelta(days=1)).isoformat(),
            }
            # The generated end users (the project also holds the gateway scenarios' 1,000
            # bench users, and one run takes at most 10,000), listed explicitly.
            users = _scale_users(period)
            users_with_usage = len(users)
            out["invoice_period_users_with_usage"] = _users_in(period)
            try:
                body = {**period, "end_user_ids": users}
                ms, r = _timed(c, "POST", "/api/v1/billing/invoices", json=body)
                generated = r.json().get("generated") if r.status_code == 200 else None
                per_user = ms / max(1, users_with_usage)
                out["invoice_run"] = {
                    "ms": ms,
                    "status": r.status_code,
                    "users": users_with_usage,
                    "generated": generated,
                    "period": period,
                    "ms_per_user": per_user,
                    "extrapolated_10k_s": per_user * 10,
                    "response_head": r.text[:200],
                }
            except httpx.TimeoutException:
                out["invoice_run"] = {
                    "timed_out_after_s": invoice_timeout,
                    "users": users_with_usage,
                    "period": period,
                }
    return out


def _scale_users(period: dict[str, str]) -> list[str]:
    """The generator's end users with usage in ``period``."""
    import run as R

    sql = (
        "select distinct end_user_id from usage_user_daily "
        "where end_user_id like 'scale\\_user\\_%' "
        f"and day between '{period['period_start']}' and '{period['period_end']}'"
    )
    out = subprocess.run(
        ["psql", f"{R.PG_BASE}/{R.PG_DB}", "-tAc", sql], capture_output=True, text=True, check=True
    )
    return [u for u in out.stdout.split() if u]


def _users_in(body: dict[str, str]) -> int:
    import run as R

    sql = (
        "select count(distinct end_user_id) from usage_daily_rollups where end_user_id <> '' "
        f"and day between '{body['period_start']}' and '{body['period_end']}'"
    )
    out = subprocess.run(
        ["psql", f"{R.PG_BASE}/{R.PG_DB}", "-tAc", sql], capture_output=True, text=True, check=True
    )
    return int(out.stdout.strip() or 0)


def run_scale(bench: Bench, events: int) -> dict[str, Any]:
    import run as R

    R.log(f"scale: {events:,} events into PostgreSQL")
    dsn = f"{R.PG_BASE}/{R.PG_DB}"
    project_id = subprocess.run(
        ["psql", dsn, "-tAc", "select id from projects limit 1"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not project_id:
        raise RuntimeError("scale needs the PostgreSQL scenario's database (run postgres first)")
    gen = asyncio.run(generate(dsn, project_id, events))
    R.log(
        f"  wrote {gen['events']:,} events in {gen['generate_and_copy_seconds']:.0f} s "
        f"(COPY {gen['copy_events_per_s']:,.0f}/s), rollups in {gen['rollup_build_seconds']:.1f} s"
    )
    env = R.meterline_env(R.OUT / "postgres", bench.fake_url, dsn, R.REDIS_URL)
    key_out = subprocess.run(
        [*R.METERLINE, "keys", "create", "--project", project_id, "--env", "live", "--json"],
        env={**R.os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
        cwd=R.ROOT,
    )
    key = json.loads(key_out.stdout.strip().splitlines()[-1])["key"]
    R.redis_flush()  # every user's counters cold
    port = R.free_port()
    proc = R.meterline_serve(bench.procs, "meterline_scale", env, port, 1)
    try:
        reads = time_reads(
            f"http://127.0.0.1:{port}", key, gen["window"], bench.args.invoice_timeout
        )
    finally:
        bench.procs.stop(proc)
    R.log(
        f"  revenue median {reads['revenue_ms']['median']:.0f} ms, usage page "
        f"{reads['usage_page_heavy_user_ms']['median']:.0f} ms, cold check-quota median "
        f"{reads['check_quota_cold_ms']['median']:.1f} ms"
    )
    return {"generator": gen, "reads": reads}
