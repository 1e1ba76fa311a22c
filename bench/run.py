"""meterline benchmarks, side by side with nginx, Portkey and LiteLLM (issue 7).

One command, every scenario in one run on this machine, against ONE fake upstream process::

    .venv/bin/python bench/run.py                 # full run (≈ 12 minutes), writes bench/raw/
    .venv/bin/python bench/run.py --quick         # smoke test: 2 s runs, 1 s warm-up
    .venv/bin/python bench/run.py --only direct,nginx,embedded

Results go to ``bench/raw/results.json`` (plus every wrk output as ``bench/raw/*.txt``);
``bench/report.py`` turns them into ``bench/RESULTS.md``. ``make bench`` does both.

Everything listens on 127.0.0.1. PostgreSQL (``BENCH_PG``, default
``postgresql://postgres@127.0.0.1:5432``) gets its own database ``meterline_bench``
(dropped and recreated); Redis (``BENCH_REDIS``, default ``redis://127.0.0.1:6379/9``) is
used on its own DB index, and only that index is flushed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RAW = BENCH / "raw"
OUT = BENCH / "out"  # scratch state (gitignored): SQLite files, nginx temp dirs, logs
WRK_DIR = BENCH / "wrk"
PY = sys.executable
METERLINE = [str(Path(sys.executable).parent / "meterline")]
NODE_GATEWAY = BENCH / ".node/node_modules/@portkey-ai/gateway/build/start-server.js"
LITELLM_VENV = BENCH / ".litellm-venv"
PG_BASE = os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
PG_DB = "meterline_bench"
REDIS_URL = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/9")
#: Distinct end users the load is spread over; each is created (and its counters seeded)
#: before timing, so the figures are the steady state. Cold users are measured apart.
USERS = 1_000
MODEL = "gpt-4o"

#: Every limit of a rate plan, set so high that nothing is denied; metering stays on.
PLAN = {
    "name": "bench: every limit on",
    "slug": "bench-all-limits",
    "is_default": True,
    "overage_action": "block",
    "daily_token_limit": 10**12,
    "monthly_token_limit": 10**12,
    "daily_request_limit": 10**9,
    "monthly_request_limit": 10**9,
    "requests_per_minute": 10**6,
    "daily_cost_limit_usd": "1000000",
    "monthly_cost_limit_usd": "1000000",
    "markup_percentage": "20",
    "flat_rate_per_request": "0.0001",
    "allowed_models": ["gpt-4o", "gpt-4o-*"],
}


def log(msg: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {msg}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --------------------------------------------------------------------------- processes


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pgid(self) -> int:
        return self.popen.pid  # started with start_new_session=True

    def pids(self) -> list[int]:
        """This process and every descendant (uvicorn workers, node children)."""
        out = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2 :].split()
            if int(fields[2]) == self.pgid:  # process group
                out.append(int(entry.name))
        return out

    def cpu_seconds(self) -> float:
        tick = os.sysconf("SC_CLK_TCK")
        total = 0
        for pid in self.pids():
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2 :].split()
            total += int(fields[11]) + int(fields[12])  # utime + stime
        return total / tick

    def rss_mib(self) -> float:
        total = 0
        for pid in self.pids():
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        return total / 1024

    def stop(self) -> None:
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pgid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.pgid, signal.SIGKILL)
                self.popen.wait()
        # uvicorn workers or node children left behind in the group
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


class Procs:
    def __init__(self) -> None:
        self.running: list[Proc] = []

    def start(
        self, name: str, argv: list[str], env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> Proc:
        log_path = OUT / "logs" / f"{name}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        fh = log_path.open("wb")
        popen = subprocess.Popen(
            argv,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        proc = Proc(name, popen, log_path)
        self.running.append(proc)
        return proc

    def stop(self, proc: Proc) -> None:
        proc.stop()
        if proc in self.running:
            self.running.remove(proc)

    def stop_all(self) -> None:
        for proc in reversed(self.running[:]):
            self.stop(proc)


def wait_http(
    proc: Proc,
    url: str,
    timeout: float = 90,
    ok: tuple[int, ...] = (200,),
    headers: dict[str, str] | None = None,
) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"{proc.name} exited: {proc.log_path.read_text()[-3000:]}")
        try:
            r = httpx.get(url, timeout=2, headers=headers)
            if r.status_code in ok:
                return
            last = f"{r.status_code} {r.text[:200]}"
        except httpx.HTTPError as exc:
            last = repr(exc)
        time.sleep(0.2)
    raise TimeoutError(f"{proc.name} not ready at {url}: {last}")


def wait_port(proc: Proc, port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"{proc.name} exited: {proc.log_path.read_text()[-3000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.2)
    raise TimeoutError(f"{proc.name} not listening on {port}")


# --------------------------------------------------------------------------- wrk


@dataclass
class Load:
    duration: float
    warmup: float
    results: dict[str, Any] = field(default_factory=dict)

    def wrk(
        self,
        key: str,
        url: str,
        script: str,
        conns: int,
        env: dict[str, str],
        server: Proc | None = None,
        duration: float | None = None,
        warmup: float | None = None,
        timeout: str = "10s",
    ) -> dict[str, Any]:
        duration = duration or self.duration
        warmup = self.warmup if warmup is None else warmup
        full_env = {**os.environ, "BENCH_LUA_DIR": str(WRK_DIR), "BENCH_USERS": str(USERS), **env}
        argv = [
            "wrk",
            "-t1",
            f"-c{conns}",
            "--timeout",
            timeout,
            "--latency",
            "-s",
            str(WRK_DIR / script),
        ]
        if warmup > 0:
            subprocess.run(
                [*argv, f"-d{warmup:g}s", url],
                env=full_env,
                capture_output=True,
                check=False,
                timeout=warmup + 60,
            )
        cpu0 = server.cpu_seconds() if server else 0.0
        t0 = time.monotonic()
        proc = subprocess.run(
            [*argv, f"-d{duration:g}s", url],
            env=full_env,
            capture_output=True,
            text=True,
            check=False,
            timeout=duration + 90,
        )
        wall = time.monotonic() - t0
        cpu = (server.cpu_seconds() - cpu0) if server else None
        (RAW / f"{key}.txt").write_text(
            f"$ {' '.join(argv)} -d{duration:g}s {url}\n{proc.stdout}{proc.stderr}"
        )
        m = re.search(r"^BENCH_JSON (.*)$", proc.stdout, re.M)
        if not m:
            raise RuntimeError(f"wrk {key} failed: {proc.stdout}\n{proc.stderr}")
        data = json.loads(m.group(1))
        non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", proc.stdout)
        data["non_2xx"] = int(non2xx.group(1)) if non2xx else 0
        data["rps"] = data["requests"] / (data["duration_us"] / 1e6)
        data["conns"] = conns
        if cpu is not None:
            data["server_cpu_pct"] = 100 * cpu / wall
        self.results[key] = data
        log(
            f"  {key:32} c={conns:<3} {data['rps']:9.1f} req/s  p50 {data['p50_us'] / 1000:7.2f} ms"
            f"  p99 {data['p99_us'] / 1000:7.2f} ms  errors {data['non_2xx']}+"
            f"{data['read_errors'] + data['timeouts'] + data['connect_errors']}"
            + (f"  server cpu {data['server_cpu_pct']:.0f}%" if cpu is not None else "")
        )
        return data


# --------------------------------------------------------------------------- meterline


def meterline_env(
    home: Path, fake_url: str, database_url: str | None = None, redis_url: str | None = None
) -> dict[str, str]:
    env = {
        "METERLINE_HOME": str(home),
        "METERLINE_LOG_LEVEL": "warning",  # no uvicorn access log line per request
        "OPENAI_BASE_URL": f"{fake_url}/v1",
        "OPENAI_API_KEY": "sk-bench",
        "METERLINE_SECRET_KEY": "bench-secret-key-bench-secret-key-0000000",
    }
    if database_url:
        env["METERLINE_DATABASE_URL"] = database_url
    if redis_url:
        env["METERLINE_REDIS_URL"] = redis_url
    return env


def meterline_init(env: dict[str, str]) -> str:
    full = {**os.environ, **env}
    for var in ("METERLINE_DATABASE_URL", "METERLINE_REDIS_URL"):
        if var not in env:
            full.pop(var, None)
    out = subprocess.run(
        [*METERLINE, "init", "--json"],
        env=full,
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    data = json.loads(out.stdout.strip().splitlines()[-1])
    key = data.get("live_key")
    if not key:
        raise RuntimeError(f"meterline init did not create a key (existing state?): {data}")
    return str(key)


def meterline_serve(
    procs: Procs, name: str, env: dict[str, str], port: int, workers: int = 1
) -> Proc:
    full = dict(env)
    proc = procs.start(
        name,
        [*METERLINE, "serve", "--port", str(port), "--workers", str(workers)],
        env=full,
        cwd=ROOT,
    )
    wait_http(proc, f"http://127.0.0.1:{port}/readyz")
    return proc


def setup_plan(url: str, key: str) -> dict[str, Any]:
    h = {"Authorization": f"Bearer {key}"}
    r = httpx.post(f"{url}/api/v1/billing/rate-plans", json=PLAN, headers=h, timeout=30)
    r.raise_for_status()
    plan = r.json()
    # Sanity: a fresh end user lands on this plan, and a gateway call is metered.
    q = httpx.get(
        f"{url}/api/v1/billing/check-quota",
        params={"end_user_id": "bench_probe", "model": MODEL},
        headers=h,
        timeout=30,
    )
    q.raise_for_status()
    if q.json()["rate_plan"]["id"] != plan["id"]:
        raise RuntimeError(f"new end users do not get the bench plan: {q.json()}")
    c = httpx.post(
        f"{url}/v1/chat/completions",
        headers=h,
        timeout=30,
        json={
            "model": MODEL,
            "user": "bench_probe",
            "messages": [{"role": "user", "content": "hi"}],
        },
    )
    c.raise_for_status()
    if "x-meterline-request-id" not in c.headers or "x-ratelimit-limit-requests" not in c.headers:
        raise RuntimeError(f"gateway reply lacks metering/limit headers: {dict(c.headers)}")
    return plan


def preseed_users(url: str, key: str, prefix: str = "bench_user_", n: int = USERS) -> float:
    """One check-quota per end user, so every user the load touches exists and is seeded."""

    async def go() -> None:
        sem = asyncio.Semaphore(16)
        async with httpx.AsyncClient(
            base_url=url, timeout=120, headers={"Authorization": f"Bearer {key}"}
        ) as client:

            async def one(i: int) -> None:
                async with sem:
                    r = await client.get(
                        "/api/v1/billing/check-quota",
                        params={"end_user_id": f"{prefix}{i}", "model": MODEL},
                    )
                    r.raise_for_status()

            await asyncio.gather(*(one(i) for i in range(n)))

    t0 = time.monotonic()
    asyncio.run(go())
    took = time.monotonic() - t0
    log(f"  pre-created {n} end users in {took:.1f} s")
    return took


def ledger_count(database_url: str) -> int:
    if database_url.startswith("sqlite"):
        import sqlite3

        with contextlib.closing(sqlite3.connect(database_url.split("///", 1)[1])) as db:
            return int(db.execute("select count(*) from usage_events").fetchone()[0])
    out = subprocess.run(
        ["psql", f"{PG_BASE}/{PG_DB}", "-tAc", "select count(*) from usage_events"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(out.stdout.strip())


PG_STATS = (
    "sessions",
    "xact_commit",
    "xact_rollback",
    "tup_inserted",
    "tup_updated",
    "tup_fetched",
    "tup_returned",
    "blks_hit",
    "blks_read",
)


def pg_stats() -> dict[str, int]:
    """This database's counters from pg_stat_database (flushed by backends within ~1 s)."""
    time.sleep(1.5)
    out = subprocess.run(
        [
            "psql",
            f"{PG_BASE}/postgres",
            "-tAc",
            f"select {', '.join(PG_STATS)} from pg_stat_database where datname = '{PG_DB}'",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(zip(PG_STATS, map(int, out.stdout.strip().split("|")), strict=True))


def pg_recreate() -> None:
    for sql in (f"DROP DATABASE IF EXISTS {PG_DB} WITH (FORCE)", f"CREATE DATABASE {PG_DB}"):
        subprocess.run(["psql", f"{PG_BASE}/postgres", "-qc", sql], check=True, capture_output=True)


def redis_flush() -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    client.close()


# --------------------------------------------------------------------------- ingest


def ingest_batches(
    url: str, key: str, label: str, seconds: float, concurrency: int = 2, max_batches: int = 400
) -> dict[str, Any]:
    """POST batches of 1,000 distinct events for ``seconds``; events/s actually recorded."""
    import orjson

    run = f"{label}-{int(time.time())}"
    now = datetime.now(UTC).isoformat()

    def body(b: int) -> bytes:
        return orjson.dumps(
            {
                "events": [
                    {
                        "end_user_id": f"bench_user_{(b * 1000 + i) % USERS}",
                        "model": MODEL,
                        "prompt_tokens": 812,
                        "completion_tokens": 95,
                        "event_id": f"batch-{run}-{b}-{i}",
                        "timestamp": now,
                        "latency_ms": 420,
                    }
                    for i in range(1000)
                ]
            }
        )

    async def go() -> dict[str, Any]:
        h = {"Authorization": f"Bearer {key}", "content-type": "application/json"}
        recorded = failed = sent = 0
        latencies: list[float] = []
        next_batch = 0
        deadline = time.monotonic() + seconds
        async with httpx.AsyncClient(base_url=url, headers=h, timeout=300) as client:

            async def worker() -> None:
                nonlocal recorded, failed, sent, next_batch
                while time.monotonic() < deadline and next_batch < max_batches:
                    content = body(next_batch)
                    next_batch += 1
                    t = time.monotonic()
                    r = await client.post("/api/v1/billing/usage-events", content=content)
                    latencies.append(time.monotonic() - t)
                    sent += 1
                    data = r.json()
                    res = data.get("result", data) if r.status_code != 200 else data
                    recorded += res.get("recorded", 0)
                    failed += res.get("failed", 0) + res.get("duplicates", 0)

            t0 = time.monotonic()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            wall = time.monotonic() - t0
        latencies.sort()
        return {
            "batches": sent,
            "events_recorded": recorded,
            "events_not_recorded": failed,
            "seconds": wall,
            "events_per_s": recorded / wall,
            "concurrency": concurrency,
            "batch_p50_ms": 1000 * latencies[len(latencies) // 2] if latencies else None,
            "batch_max_ms": 1000 * latencies[-1] if latencies else None,
        }

    result = asyncio.run(go())
    log(
        f"  ingest {label:10} {result['events_per_s']:9.0f} events/s  ({result['batches']} "
        f"batches, {result['events_not_recorded']} not recorded, batch p50 "
        f"{result['batch_p50_ms']:.0f} ms)"
    )
    return result


# --------------------------------------------------------------------------- scenarios


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.procs = Procs()
        self.load = Load(args.duration, args.warmup)
        self.results: dict[str, Any] = {
            "wrk": self.load.results,
            "ingest": {},
            "notes": [],
            "servers": {},
        }
        self.fake_url = ""
        self.fake: Proc | None = None

    def want(self, name: str) -> bool:
        return not self.args.only or name in self.args.only

    def proxy_pair(
        self,
        name: str,
        url: str,
        env: dict[str, str],
        server: Proc | None,
        script: str = "chat.lua",
    ) -> None:
        """The two gateway measurements: concurrency 1 (latency) and N (throughput)."""
        self.load.wrk(f"{name}_c1", url, script, 1, env, server)
        self.load.wrk(f"{name}_c{self.args.conns}", url, script, self.args.conns, env, server)
        if server is not None:
            self.results["servers"].setdefault(name, {})["rss_mib_after"] = server.rss_mib()

    # -- baseline and floor

    def start_fake(self) -> None:
        port = free_port()
        self.fake = self.procs.start(
            "fake_upstream",
            [
                PY,
                "-m",
                "meterline.testing.fake_upstream",
                "--port",
                str(port),
                "--workers",
                str(self.args.fake_workers),
            ],
            cwd=ROOT,
        )
        self.fake_url = f"http://127.0.0.1:{port}"
        wait_http(self.fake, f"{self.fake_url}/healthz")
        log(f"fake upstream on {self.fake_url} ({self.args.fake_workers} worker)")

    def direct(self) -> None:
        log("direct to the fake upstream")
        self.proxy_pair("direct", self.fake_url, {}, self.fake)

    def nginx(self) -> None:
        log("nginx proxy_pass")
        port = free_port()
        prefix = OUT / "nginx"
        shutil.rmtree(prefix, ignore_errors=True)
        (prefix / "logs").mkdir(parents=True)
        conf = (BENCH / "nginx.conf.template").read_text()
        conf = conf.replace("@PORT@", str(port)).replace("@UPSTREAM@", self.fake_url[7:])
        conf = conf.replace("@PREFIX@", str(prefix))
        (prefix / "nginx.conf").write_text(conf)
        proc = self.procs.start(
            "nginx",
            ["nginx", "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-g", "daemon off;"],
        )
        wait_http(proc, f"http://127.0.0.1:{port}/healthz")
        try:
            self.proxy_pair("nginx", f"http://127.0.0.1:{port}", {}, proc)
        finally:
            self.procs.stop(proc)

    # -- meterline

    def embedded(self) -> None:
        log("meterline embedded (SQLite + in-process counters)")
        home = OUT / "embedded"
        shutil.rmtree(home, ignore_errors=True)
        env = meterline_env(home, self.fake_url)
        env.pop("METERLINE_DATABASE_URL", None)
        key = meterline_init(env)
        port = free_port()
        proc = meterline_serve(self.procs, "meterline_embedded", env, port)
        url = f"http://127.0.0.1:{port}"
        try:
            setup_plan(url, key)
            self.results["servers"]["meterline_embedded"] = {
                "preseed_seconds": preseed_users(url, key)
            }
            before = ledger_count(f"sqlite:///{home / 'meterline.db'}")
            wenv = {"BENCH_AUTH": key}
            self.proxy_pair("meterline_embedded", url, wenv, proc)
            rows = ledger_count(f"sqlite:///{home / 'meterline.db'}") - before
            self.results["servers"]["meterline_embedded"]["ledger_rows_written"] = rows
            if self.want("cold"):
                # Every request a never-seen end user: created, seeded from the ledger.
                self.load.wrk(
                    f"meterline_embedded_coldusers_c{self.args.conns}",
                    url,
                    "chat.lua",
                    self.args.conns,
                    {**wenv, "BENCH_USERS": "1000000", "BENCH_USER_PREFIX": "cold_"},
                    proc,
                    warmup=0,
                )
            if self.want("direct_api"):
                log("direct API on embedded (in-process counters, SQLite)")
                self.load.wrk("check_quota_inprocess_c1", url, "check_quota.lua", 1, wenv, proc)
                self.load.wrk(
                    f"check_quota_inprocess_c{self.args.conns}",
                    url,
                    "check_quota.lua",
                    self.args.conns,
                    wenv,
                    proc,
                )
                self.load.wrk(
                    f"usage_event_single_sqlite_c{self.args.conns}",
                    url,
                    "usage_event.lua",
                    self.args.conns,
                    {**wenv, "BENCH_RUN_ID": "sqlite"},
                    proc,
                )
                self.results["ingest"]["sqlite"] = ingest_batches(
                    url, key, "sqlite", self.args.ingest_seconds
                )
            if self.args.profile:
                self.profile("meterline_embedded", url, wenv, proc)
            if self.args.streams and self.want("streams"):
                self.slow_streams(url, wenv, proc)
        finally:
            self.procs.stop(proc)

    def postgres(self) -> None:
        log("meterline on PostgreSQL + Redis")
        pg_recreate()
        redis_flush()
        home = OUT / "postgres"
        shutil.rmtree(home, ignore_errors=True)
        db_url = f"{PG_BASE}/{PG_DB}"
        env = meterline_env(home, self.fake_url, db_url, REDIS_URL)
        key = meterline_init(env)
        self.results["pg_key_prefix"] = key[:12]
        for workers in (1, 2):
            port = free_port()
            proc = meterline_serve(self.procs, f"meterline_pg_w{workers}", env, port, workers)
            url = f"http://127.0.0.1:{port}"
            name = f"meterline_pg_w{workers}"
            try:
                if workers == 1:
                    setup_plan(url, key)
                    self.results["servers"][name] = {"preseed_seconds": preseed_users(url, key)}
                for _ in range(4):  # each worker process answers at least once before timing
                    httpx.get(f"{url}/readyz", timeout=10)
                before = ledger_count(db_url)
                wenv = {"BENCH_AUTH": key}
                stats0 = pg_stats()
                self.proxy_pair(name, url, wenv, proc)
                stats1 = pg_stats()
                calls = sum(
                    self.load.results[f"{name}_c{c}"]["requests"] for c in (1, self.args.conns)
                )
                info = self.results["servers"].setdefault(name, {})
                info["ledger_rows_written"] = ledger_count(db_url) - before
                # wrk's count misses calls cut off at the end of each run: rows written is
                # the better denominator for per-call database work.
                per = max(info["ledger_rows_written"], calls, 1)
                info["pg_per_call"] = {k: (stats1[k] - stats0[k]) / per for k in PG_STATS}
                info["pg_per_call"]["transactions"] = (
                    info["pg_per_call"]["xact_commit"] + info["pg_per_call"]["xact_rollback"]
                )
                log(
                    f"  PostgreSQL work per gateway call: "
                    f"{info['pg_per_call']['sessions']:.3f} new connections, "
                    f"{info['pg_per_call']['transactions']:.1f} transactions "
                    f"({info['pg_per_call']['xact_commit']:.1f} committed), "
                    f"{info['pg_per_call']['tup_inserted']:.1f} rows inserted, "
                    f"{info['pg_per_call']['tup_updated']:.1f} updated"
                )
                if workers == 1 and self.want("direct_api"):
                    log("direct API on PostgreSQL + Redis (1 worker)")
                    self.load.wrk("check_quota_redis_c1", url, "check_quota.lua", 1, wenv, proc)
                    self.load.wrk(
                        f"check_quota_redis_c{self.args.conns}",
                        url,
                        "check_quota.lua",
                        self.args.conns,
                        wenv,
                        proc,
                    )
                    self.load.wrk(
                        f"usage_event_single_pg_c{self.args.conns}",
                        url,
                        "usage_event.lua",
                        self.args.conns,
                        {**wenv, "BENCH_RUN_ID": "pg"},
                        proc,
                    )
                    self.results["ingest"]["postgres"] = ingest_batches(
                        url, key, "postgres", self.args.ingest_seconds
                    )
                if workers == 1 and self.args.profile:
                    self.profile(name, url, wenv, proc)
            finally:
                self.procs.stop(proc)

    # -- peers

    def portkey(self) -> None:
        log("Portkey gateway (non-streaming)")
        if not NODE_GATEWAY.exists():
            self.results["notes"].append("portkey: not installed (make bench installs it)")
            return
        port = free_port()
        proc = self.procs.start(
            "portkey",
            ["node", str(NODE_GATEWAY), f"--port={port}", "--headless"],
            cwd=NODE_GATEWAY.parent,
        )
        wait_port(proc, port)
        time.sleep(1)
        env = {
            "BENCH_AUTH": "sk-bench",
            "BENCH_HEADERS": f"x-portkey-provider: openai|x-portkey-custom-host: "
            f"{self.fake_url}/v1",
        }
        r = httpx.post(
            f"http://127.0.0.1:{port}/v1/chat/completions",
            timeout=30,
            headers={
                "Authorization": "Bearer sk-bench",
                "x-portkey-provider": "openai",
                "x-portkey-custom-host": f"{self.fake_url}/v1",
            },
            json={"model": MODEL, "user": "u", "messages": [{"role": "user", "content": "hi"}]},
        )
        if r.status_code != 200:
            raise RuntimeError(f"portkey probe: {r.status_code} {r.text[:500]}")
        try:
            self.proxy_pair("portkey", f"http://127.0.0.1:{port}", env, proc)
        finally:
            self.procs.stop(proc)

    def litellm(self) -> None:
        log("LiteLLM proxy (no database)")
        exe = LITELLM_VENV / "bin" / "litellm"
        if not exe.exists():
            self.results["notes"].append("litellm: not installed (make bench installs it)")
            return
        home = OUT / "litellm"
        home.mkdir(parents=True, exist_ok=True)
        (home / "config.yaml").write_text(
            (BENCH / "litellm.config.yaml").read_text().replace("@FAKE@", self.fake_url)
        )
        port = free_port()
        master = "sk-bench-master"
        env = {
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "LITELLM_MASTER_KEY": master,
            "LITELLM_LOG": "ERROR",
            "DISABLE_ADMIN_UI": "True",
            "LITELLM_TELEMETRY": "False",
        }
        for var in ("DATABASE_URL", "OPENAI_BASE_URL", "OPENAI_API_KEY"):
            os.environ.pop(var, None)
        proc = self.procs.start(
            "litellm",
            [
                str(exe),
                "--config",
                str(home / "config.yaml"),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--num_workers",
                "1",
            ],
            env=env,
            cwd=home,
        )
        wait_http(proc, f"http://127.0.0.1:{port}/health/liveliness", timeout=180)
        r = httpx.post(
            f"http://127.0.0.1:{port}/v1/chat/completions",
            timeout=60,
            headers={"Authorization": f"Bearer {master}"},
            json={"model": MODEL, "user": "u", "messages": [{"role": "user", "content": "hi"}]},
        )
        if r.status_code != 200:
            raise RuntimeError(f"litellm probe: {r.status_code} {r.text[:500]}")
        try:
            self.proxy_pair("litellm", f"http://127.0.0.1:{port}", {"BENCH_AUTH": master}, proc)
        finally:
            self.procs.stop(proc)

    # -- extras

    def profile(self, name: str, url: str, env: dict[str, str], proc: Proc) -> None:
        spy = shutil.which("py-spy") or str(BENCH / ".tools-venv/bin/py-spy")
        if not Path(spy).exists():
            self.results["notes"].append("profile: py-spy not installed")
            return
        pids = [p for p in proc.pids() if p != proc.popen.pid] or [proc.popen.pid]
        # `meterline serve` with one worker runs the app in the process itself.
        target = proc.popen.pid if len(proc.pids()) == 1 else pids[-1]
        out = RAW / f"profile_{name}.collapsed"
        secs = max(4, int(self.args.duration))
        log(f"  py-spy on pid {target} for {secs}s under c={self.args.conns} load")
        spy_proc = subprocess.Popen(
            [
                spy,
                "record",
                "--pid",
                str(target),
                "--duration",
                str(secs),
                "--rate",
                "200",
                "--format",
                "raw",
                # Only the thread holding the GIL: without it py-spy counted a driver
                # thread blocked on its queue as busy (half the samples "in SQLite" while
                # that thread used 0.4 ms of CPU per call; see bench/adhoc/thread_cpu.py).
                "--gil",
                "--nonblocking",
                "--output",
                str(out),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        time.sleep(1)
        self.load.wrk(
            f"{name}_profiled_c{self.args.conns}",
            url,
            "chat.lua",
            self.args.conns,
            env,
            proc,
            duration=secs,
            warmup=0,
        )
        spy_out, _ = spy_proc.communicate(timeout=120)
        (RAW / f"profile_{name}.log").write_bytes(spy_out)

    def slow_streams(self, url: str, env: dict[str, str], proc: Proc) -> None:
        """Gateway RSS with 1,000 streams open at once (the fake upstream waits 1.5 s before
        each of its 12 content chunks, so each stream lasts ≈ 18 s)."""
        n = 1000
        log(f"  {n:,} concurrent slow streams")
        idle = proc.rss_mib()
        samples: list[tuple[float, float, int]] = []
        state = {"open": 0, "done": 0, "failed": 0}
        key = env["BENCH_AUTH"]

        async def one(client: httpx.AsyncClient, i: int, all_open: asyncio.Event) -> None:
            body = {
                "model": MODEL,
                "stream": True,
                "user": f"bench_user_{i % USERS}",
                "messages": [{"role": "user", "content": "[fake:slow=1500] [fake:words=10]"}],
            }
            try:
                async with client.stream("POST", "/v1/chat/completions", json=body) as r:
                    if r.status_code != 200:
                        state["failed"] += 1
                        return
                    first = True
                    async for _ in r.aiter_raw():
                        if first:
                            first = False
                            state["open"] += 1
                            if state["open"] == n:
                                all_open.set()
                    state["done"] += 1
            except httpx.HTTPError:
                state["failed"] += 1

        async def go() -> dict[str, Any]:
            all_open = asyncio.Event()
            limits = httpx.Limits(max_connections=n + 10, max_keepalive_connections=n + 10)
            async with httpx.AsyncClient(
                base_url=url, limits=limits, timeout=120, headers={"Authorization": f"Bearer {key}"}
            ) as client:
                t0 = time.monotonic()
                tasks = [asyncio.create_task(one(client, i, all_open)) for i in range(n)]

                async def sample() -> None:
                    while True:
                        samples.append((time.monotonic() - t0, proc.rss_mib(), state["open"]))
                        await asyncio.sleep(0.25)

                sampler = asyncio.create_task(sample())
                opened_at = None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(all_open.wait(), timeout=60)
                    opened_at = time.monotonic() - t0
                rss_all_open = proc.rss_mib()
                _, pending = await asyncio.wait(tasks, timeout=90)
                for t in pending:
                    t.cancel()
                sampler.cancel()
                return {
                    "seconds_until_all_open": opened_at,
                    "rss_all_open_mib": rss_all_open,
                    "total_seconds": time.monotonic() - t0,
                }

        result = asyncio.run(go())
        peak = max((rss for _, rss, _ in samples), default=idle)
        max_open = max((o - 0 for _, _, o in samples), default=0)
        self.results["streams"] = {
            "streams": n,
            "rss_idle_mib": idle,
            "rss_peak_mib": peak,
            "rss_per_stream_kib": (peak - idle) * 1024 / n,
            **result,
            "completed": state["done"],
            "failed": state["failed"],
            "max_open_seen": max_open,
        }
        (RAW / "slow_streams_rss.tsv").write_text(
            "t_s\trss_mib\tstreams_open\n"
            + "".join(f"{t:.2f}\t{rss:.1f}\t{o}\n" for t, rss, o in samples)
        )
        log(
            f"  streams: RSS idle {idle:.0f} MiB, peak {peak:.0f} MiB, all {n} open after "
            f"{result['seconds_until_all_open']} s, {state['done']} completed, "
            f"{state['failed']} failed"
        )

    def run(self) -> None:
        RAW.mkdir(parents=True, exist_ok=True)
        OUT.mkdir(parents=True, exist_ok=True)
        self.results["started"] = datetime.now(UTC).isoformat(timespec="seconds")
        self.results["loadavg_at_start"] = Path("/proc/loadavg").read_text().split()[:3]
        self.results["params"] = {k: v for k, v in vars(self.args).items() if k != "only"}
        steps = [
            ("direct", self.direct),
            ("nginx", self.nginx),
            ("embedded", self.embedded),
            ("postgres", self.postgres),
            ("portkey", self.portkey),
            ("litellm", self.litellm),
        ]
        try:
            self.start_fake()
            for name, step in steps:
                if self.want(name):
                    try:
                        step()
                    except Exception as exc:  # one broken peer must not sink the run
                        log(f"!! {name} failed: {exc!r}")
                        self.results["notes"].append(f"{name} failed: {exc!r}"[:2000])
            if self.args.scale and self.want("scale"):
                from scale import run_scale  # bench/scale.py

                try:
                    self.results["scale"] = run_scale(self, self.args.scale)
                except Exception as exc:
                    log(f"!! scale failed: {exc!r}")
                    self.results["notes"].append(f"scale failed: {exc!r}"[:2000])
        finally:
            self.procs.stop_all()
            self.results["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
            self.results["loadavg_at_end"] = Path("/proc/loadavg").read_text().split()[:3]
            self.results["versions"] = versions()
            self.results["machine"] = machine()
            name = "results_quick.json" if self.args.quick else "results.json"
            (RAW / name).write_text(json.dumps(self.results, indent=2, default=str))
            log(f"wrote {RAW / name}")


# --------------------------------------------------------------------------- facts


def _cmd(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
        return (out.stdout + out.stderr).strip()
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"n/a ({exc})"


def versions() -> dict[str, str]:
    v: dict[str, str] = {"python": platform.python_version()}
    if SNAPSHOT:
        v["meterline_commit"] = f"{SNAPSHOT['commit']} (clean snapshot of src/)"
    else:
        v["meterline_commit"] = _cmd(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
        dirty = _cmd(["git", "-C", str(ROOT), "status", "--porcelain", "--", "src"])
        if dirty:
            v["meterline_commit"] += " + uncommitted changes in src/ (working tree)"
    v["nginx"] = _cmd(["nginx", "-v"]).replace("nginx version: ", "")
    v["wrk"] = _cmd(["wrk", "-v"]).splitlines()[0] if shutil.which("wrk") else "n/a"
    v["node"] = _cmd(["node", "--version"])
    pkg = NODE_GATEWAY.parent.parent / "package.json"
    v["portkey_gateway"] = json.loads(pkg.read_text())["version"] if pkg.exists() else "n/a"
    pip = LITELLM_VENV / "bin" / "python"
    v["litellm"] = (
        _cmd([str(pip), "-c", "import importlib.metadata as m; print(m.version('litellm'))"])
        if pip.exists()
        else "n/a"
    )
    v["postgresql"] = _cmd(["psql", f"{PG_BASE}/postgres", "-tAc", "show server_version"])
    v["redis"] = _cmd(["redis-cli", "-u", REDIS_URL, "info", "server"])
    m = re.search(r"redis_version:(\S+)", v["redis"])
    v["redis"] = m.group(1) if m else v["redis"][:40]
    import importlib.metadata as md

    for dist in (
        "uvicorn",
        "fastapi",
        "httpx",
        "uvloop",
        "httptools",
        "sqlalchemy",
        "asyncpg",
        "aiosqlite",
        "redis",
        "orjson",
    ):
        with contextlib.suppress(md.PackageNotFoundError):
            v[dist] = md.version(dist)
    return v


def machine() -> dict[str, Any]:
    cpu = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kib = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "ram_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
    }


SNAPSHOT: dict[str, str] = {}


def take_snapshot(rev: str) -> None:
    """Export ``rev``'s src/ and put it first on every child's PYTHONPATH."""
    sha = _cmd(["git", "-C", str(ROOT), "rev-parse", "--short", rev])
    dest = OUT / f"src-{sha}"
    if not dest.exists():
        dest.mkdir(parents=True)
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", rev, "src"], capture_output=True, check=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    os.environ["PYTHONPATH"] = str(dest / "src")
    SNAPSHOT["commit"] = sha
    log(f"benchmarking a snapshot of {rev} ({sha}) from {dest / 'src'}")


@contextlib.contextmanager
def _cwd_on_path() -> Iterator[None]:
    sys.path.insert(0, str(BENCH))
    yield


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--duration", type=float, default=10.0, help="seconds per measured wrk run")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds of unmeasured warm-up")
    p.add_argument("--conns", type=int, default=32, help="connections for throughput runs")
    p.add_argument("--ingest-seconds", type=float, default=10.0)
    p.add_argument("--fake-workers", type=int, default=1)
    p.add_argument("--scale", type=int, default=0, help="events for the scale test (0: skip)")
    p.add_argument(
        "--invoice-timeout",
        type=float,
        default=600.0,
        help="seconds the scale test's invoice run may take",
    )
    p.add_argument(
        "--raw",
        type=Path,
        default=None,
        help="write results and raw outputs here instead of bench/raw (a repeat run)",
    )
    p.add_argument("--no-profile", dest="profile", action="store_false")
    p.add_argument("--no-streams", dest="streams", action="store_false")
    p.add_argument("--quick", action="store_true", help="smoke test: 2 s runs")
    p.add_argument(
        "--snapshot",
        metavar="REV",
        default=None,
        help="benchmark `git archive REV` of src/ instead of the working tree "
        "(stable numbers while others edit src/)",
    )
    p.add_argument(
        "--only",
        type=lambda s: set(s.split(",")),
        default=set(),
        help="direct,nginx,embedded,postgres,portkey,litellm,direct_api,streams,scale",
    )
    args = p.parse_args()
    if args.quick:
        args.duration, args.warmup, args.ingest_seconds = 2.0, 1.0, 3.0
    if args.raw:
        global RAW
        RAW = args.raw.resolve()
    if args.snapshot:
        take_snapshot(args.snapshot)
    with _cwd_on_path():
        Bench(args).run()


if __name__ == "__main__":
    main()
