# Ad-hoc: py-spy of meterline (PostgreSQL + Redis, 1 worker) during batch ingest.
# Run from the repository root: .venv/bin/python bench/adhoc/<this file>. Not part of `make bench`.
import subprocess
import sys
import time

sys.path.insert(0, "bench")
import run as R

R.take_snapshot("HEAD")
procs = R.Procs()
try:
    port = R.free_port()
    fake = procs.start(
        "fake_ip", [R.PY, "-m", "meterline.testing.fake_upstream", "--port", str(port)]
    )
    R.wait_http(fake, f"http://127.0.0.1:{port}/healthz")
    R.PG_DB = "meterline_bench_ingest"
    R.pg_recreate()
    R.redis_flush()
    env = R.meterline_env(
        R.OUT / "ingest_profile", f"http://127.0.0.1:{port}", f"{R.PG_BASE}/{R.PG_DB}", R.REDIS_URL
    )
    key = R.meterline_init(env)
    p2 = R.free_port()
    proc = R.meterline_serve(procs, "ingest_profile", env, p2)
    url = f"http://127.0.0.1:{p2}"
    R.setup_plan(url, key)
    R.preseed_users(url, key)
    spy = subprocess.Popen(
        [
            "bench/.tools-venv/bin/py-spy",
            "record",
            "--pid",
            str(proc.popen.pid),
            "--duration",
            "12",
            "--rate",
            "200",
            "--format",
            "raw",
            "--nonblocking",
            "--output",
            str(R.OUT / "profile_ingest_pg.collapsed"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(0.5)
    print(R.ingest_batches(url, key, "pg-profiled", 10))
    spy.wait()
finally:
    procs.stop_all()
    subprocess.run(
        ["psql", f"{R.PG_BASE}/postgres", "-qc", f"DROP DATABASE IF EXISTS {R.PG_DB} WITH (FORCE)"]
    )
