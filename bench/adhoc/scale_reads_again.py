# Ad-hoc: time the scale test's reads again on the database a `make bench` run left behind
# (meterline_bench, with its N generated events), without generating them again, and put
# the new figures into bench/raw/results.json beside the first attempt's.
# Run from the repository root: .venv/bin/python bench/adhoc/scale_reads_again.py "why"
import json
import subprocess
import sys
from datetime import UTC, datetime

sys.path.insert(0, "bench")
import run as R
import scale

why = sys.argv[1]
results_path = R.RAW / "results.json"
results = json.loads(results_path.read_text())
R.take_snapshot(results["versions"]["meterline_commit"].split()[0])
procs = R.Procs()
try:
    fake_port = R.free_port()
    fake = procs.start(
        "fake_again", [R.PY, "-m", "meterline.testing.fake_upstream", "--port", str(fake_port)]
    )
    R.wait_http(fake, f"http://127.0.0.1:{fake_port}/healthz")
    dsn = f"{R.PG_BASE}/{R.PG_DB}"
    project_id = subprocess.run(
        ["psql", dsn, "-tAc", "select id from projects limit 1"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    env = R.meterline_env(R.OUT / "postgres", f"http://127.0.0.1:{fake_port}", dsn, R.REDIS_URL)
    out = subprocess.run(
        [*R.METERLINE, "keys", "create", "--project", project_id, "--env", "live", "--json"],
        env={**R.os.environ, **env}, capture_output=True, text=True, check=True, cwd=R.ROOT,
    )  # fmt: skip
    key = json.loads(out.stdout.strip().splitlines()[-1])["key"]
    R.redis_flush()
    port = R.free_port()
    proc = R.meterline_serve(procs, "meterline_scale_again", env, port, 1)
    reads = scale.time_reads(
        f"http://127.0.0.1:{port}", key, results["scale"]["generator"]["window"], 600
    )
finally:
    procs.stop_all()
first = results["scale"]["reads"]
results["scale"]["reads_first_attempt"] = first
results["scale"]["reads"] = reads
results["notes"].append(
    f"scale reads timed again at {datetime.now(UTC).isoformat(timespec='seconds')} on the same "
    f"database ({why}); the first attempt's figures are in scale.reads_first_attempt"
)
results_path.write_text(json.dumps(results, indent=2, default=str))
print(json.dumps({k: v for k, v in reads.items() if k != "invoice_run"}, default=str)[:800])
print(json.dumps(reads.get("invoice_run"), default=str)[:600])
