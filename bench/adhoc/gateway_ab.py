# Ad-hoc: A/B of the embedded gateway at c=32 between snapshots of two or more commits.
# Run from the repository root: .venv/bin/python bench/adhoc/gateway_ab.py
#   REVS="HEAD~1 HEAD" ROUNDS=3 SECONDS=10 CONNS=32 PROFILE=1 GIL=1 SCRIPT=chat.lua
# (GIL=1: py-spy samples only the thread holding the GIL, as `make bench` does.)
# BACKEND=pg: each rev on PostgreSQL + Redis, 1 worker (its own database meterline_ab_<n>
# and Redis DB index 10+n, both emptied first) instead of the embedded defaults.
# A rev may also be dir:/path/to/src, an edited copy of src/ (for an experiment).
# Each rev gets its own server (same fake upstream); rounds alternate A B A B … so drift
# on a shared machine hits both alike. Prints req/s and server CPU per call (ms) per run
# and the median per rev. PROFILE=1 also records py-spy (1000 Hz) of the last rev's
# server to bench/out/gateway_ab_<sha>.collapsed. Not part of `make bench`.
import os
import shutil
import statistics
import subprocess
import sys
import time

sys.path.insert(0, "bench")
import run as R

revs = os.environ.get("REVS", "HEAD~1 HEAD").split()
rounds = int(os.environ.get("ROUNDS", "3"))
seconds = float(os.environ.get("SECONDS", "10"))
conns = int(os.environ.get("CONNS", "32"))
profile = os.environ.get("PROFILE") == "1"
script = os.environ.get("SCRIPT", "chat.lua")  # or check_quota.lua
backend = os.environ.get("BACKEND", "embedded")


def pg_and_redis(n: int) -> tuple[str, str]:
    import redis

    db = f"meterline_ab_{n}"
    for sql in (f"DROP DATABASE IF EXISTS {db} WITH (FORCE)", f"CREATE DATABASE {db}"):
        subprocess.run(
            ["psql", f"{R.PG_BASE}/postgres", "-qc", sql], check=True, capture_output=True
        )
    redis_url = R.REDIS_URL.rsplit("/", 1)[0] + f"/{10 + n}"
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    client.close()
    return f"{R.PG_BASE}/{db}", redis_url


R.RAW = R.OUT / "gateway_ab"  # wrk outputs of experiments stay out of bench/raw
R.RAW.mkdir(parents=True, exist_ok=True)
procs = R.Procs()
servers = {}
try:
    fport = R.free_port()
    fake = procs.start(
        "fake_ab", [R.PY, "-m", "meterline.testing.fake_upstream", "--port", str(fport)]
    )
    R.wait_http(fake, f"http://127.0.0.1:{fport}/healthz")
    for n, rev in enumerate(revs):
        if rev.startswith("dir:"):  # an edited copy of src/ (an experiment, not a commit)
            os.environ["PYTHONPATH"] = rev[4:]
            sha = "dir-" + os.path.basename(os.path.dirname(rev[4:].rstrip("/")))
        else:
            R.take_snapshot(rev)
            sha = R.SNAPSHOT["commit"]
        home = R.OUT / f"ab_{sha}"
        shutil.rmtree(home, ignore_errors=True)
        stores = pg_and_redis(n) if backend == "pg" else (None, None)
        env = {
            **R.meterline_env(home, f"http://127.0.0.1:{fport}", *stores),
            "PYTHONPATH": os.environ["PYTHONPATH"],
        }
        key = R.meterline_init(env)
        port = R.free_port()
        proc = R.meterline_serve(procs, f"ab_{sha}", env, port)
        url = f"http://127.0.0.1:{port}"
        R.setup_plan(url, key)
        R.preseed_users(url, key)
        servers[rev] = (sha, url, key, proc)
    load = R.Load(seconds, 2)
    figures = {rev: [] for rev in revs}
    for r in range(rounds):
        for rev in revs if r % 2 == 0 else list(reversed(revs)):
            sha, url, key, proc = servers[rev]
            res = load.wrk(f"ab_{sha}_{r}", url, script, conns, {"BENCH_AUTH": key}, proc)
            cpu_ms = res["server_cpu_pct"] / 100 / res["rps"] * 1000
            figures[rev].append((res["rps"], cpu_ms))
            print(
                f"{rev:>12} {sha} round {r}: {res['rps']:8.1f} req/s  {cpu_ms:.3f} ms CPU/call"
                f"  p50 {res['p50_us'] / 1000:.2f} ms  p99 {res['p99_us'] / 1000:.2f} ms"
                f"  non2xx {res.get('non_2xx', 0)}",
                flush=True,
            )
    for rev in revs:
        rps = statistics.median(f[0] for f in figures[rev])
        cpu = statistics.median(f[1] for f in figures[rev])
        print(f"MEDIAN {rev:>12} {servers[rev][0]}: {rps:8.1f} req/s  {cpu:.3f} ms CPU/call")
    if profile:
        sha, url, key, proc = servers[revs[-1]]
        out = R.OUT / f"gateway_ab_{sha}.collapsed"
        spy = subprocess.Popen(
            [
                "bench/.tools-venv/bin/py-spy",
                "record",
                "--pid",
                str(proc.popen.pid),
                "--duration",
                str(int(seconds)),
                "--rate",
                "1000",
                "--format",
                "raw",
                "--nonblocking",
                *(["--gil"] if os.environ.get("GIL") == "1" else []),
                "--output",
                str(out),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(0.3)
        load.wrk(f"ab_{sha}_profiled", url, script, conns, {"BENCH_AUTH": key}, proc, warmup=0)
        spy.wait()
        print("profile:", out)
finally:
    procs.stop_all()
