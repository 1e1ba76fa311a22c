# Ad-hoc: py-spy of meterline embedded at concurrency 1 (fixed per-call cost).
# Run from the repository root: .venv/bin/python bench/adhoc/<this file>. Not part of `make bench`.
import shutil
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
        "fake_c1", [R.PY, "-m", "meterline.testing.fake_upstream", "--port", str(port)]
    )
    R.wait_http(fake, f"http://127.0.0.1:{port}/healthz")
    home = R.OUT / "c1_profile"
    shutil.rmtree(home, ignore_errors=True)
    env = R.meterline_env(home, f"http://127.0.0.1:{port}")
    key = R.meterline_init(env)
    p2 = R.free_port()
    proc = R.meterline_serve(procs, "c1_profile", env, p2)
    url = f"http://127.0.0.1:{p2}"
    R.setup_plan(url, key)
    R.preseed_users(url, key)
    load = R.Load(10, 2)
    R.RAW = R.OUT / "profile_c1"  # outputs of experiments stay out of bench/raw
    R.RAW.mkdir(parents=True, exist_ok=True)
    spy = subprocess.Popen(
        [
            "bench/.tools-venv/bin/py-spy",
            "record",
            "--pid",
            str(proc.popen.pid),
            "--duration",
            "10",
            "--rate",
            "1000",
            "--format",
            "raw",
            "--nonblocking",
            "--output",
            "bench/out/profile_meterline_embedded_c1.collapsed",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(0.3)
    load.wrk(
        "meterline_embedded_profiled_c1",
        url,
        "chat.lua",
        1,
        {"BENCH_AUTH": key},
        proc,
        duration=10,
        warmup=0,
    )
    spy.wait()
finally:
    procs.stop_all()
