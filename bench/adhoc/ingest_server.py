# Ad-hoc: batch ingest against a real server (uvicorn, the client in another process), as
# `make bench` runs it, printing events/s and the server's CPU per 1,000-event batch.
# Run from the repository root:
#   .venv/bin/python bench/adhoc/ingest_server.py            # PostgreSQL + Redis
#   BACKEND=sqlite .venv/bin/python bench/adhoc/ingest_server.py
#   REV=1475153 .venv/bin/python bench/adhoc/ingest_server.py   # a snapshot of another commit
# SECONDS (default 12) sets the timed part. Not part of `make bench`.
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, "bench")
import run as R

BACKEND = os.environ.get("BACKEND", "pg")
SECONDS = float(os.environ.get("SECONDS", "12"))


def cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_by_command() -> dict[str, float]:
    """CPU seconds so far of every PostgreSQL and Redis process on the machine (their
    backends come and go, so this is read before and after and differenced)."""
    totals: dict[str, float] = {"postgres": 0.0, "redis-server": 0.0}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            comm = open(f"/proc/{pid}/comm").read().strip()
            if comm in totals:
                totals[comm] += cpu_seconds(int(pid))
        except OSError:
            continue
    return totals


if os.environ.get("REV"):
    R.take_snapshot(os.environ["REV"])
procs = R.Procs()
try:
    port = R.free_port()
    fake = procs.start(
        "fake_ingest", [R.PY, "-m", "meterline.testing.fake_upstream", "--port", str(port)]
    )
    R.wait_http(fake, f"http://127.0.0.1:{port}/healthz")
    upstream = f"http://127.0.0.1:{port}"
    if BACKEND == "pg":
        R.PG_DB = "meterline_bench_ingest_server"
        R.pg_recreate()
        R.redis_flush()
        env = R.meterline_env(
            R.OUT / "ingest_server", upstream, f"{R.PG_BASE}/{R.PG_DB}", R.REDIS_URL
        )
    else:
        db = f"sqlite:///{tempfile.mkdtemp()}/meterline.db"
        env = R.meterline_env(R.OUT / "ingest_server", upstream, db, None)
    key = R.meterline_init(env)
    server_port = R.free_port()
    proc = R.meterline_serve(procs, "ingest_server", env, server_port)
    url = f"http://127.0.0.1:{server_port}"
    R.setup_plan(url, key)
    R.preseed_users(url, key)
    R.ingest_batches(url, key, "warm-up", 3)
    before, others_before = cpu_seconds(proc.popen.pid), cpu_by_command()
    client_before = os.times()
    result = R.ingest_batches(
        url, key, BACKEND, SECONDS, concurrency=int(os.environ.get("CONCURRENCY", "2"))
    )
    used = cpu_seconds(proc.popen.pid) - before
    client = os.times()
    others = {k: v - others_before[k] for k, v in cpu_by_command().items()}
    others["client"] = client.user + client.system - client_before.user - client_before.system
    per_batch = ", ".join(f"{k} {1000 * v / result['batches']:.0f}" for k, v in others.items())
    print(
        f"{BACKEND}: {result['events_per_s']:,.0f} events/s; server CPU "
        f"{1000 * used / result['batches']:.0f} ms per 1,000-event batch ({per_batch})"
    )
finally:
    procs.stop_all()
    if BACKEND == "pg":
        subprocess.run(
            [
                "psql",
                f"{R.PG_BASE}/postgres",
                "-qc",
                f"DROP DATABASE IF EXISTS {R.PG_DB} WITH (FORCE)",
            ]
        )
