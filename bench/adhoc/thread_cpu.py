# Ad-hoc: CPU per thread of a meterline embedded server under wrk load, from
# /proc/<pid>/task/*/stat (py-spy's idle detection does not separate a waiting aiosqlite
# worker from a busy one here, so its "SQLite share" is not a CPU share).
# Run from the repository root: .venv/bin/python bench/adhoc/thread_cpu.py [conns]
# (BACKEND=pg: PostgreSQL + Redis; SPY=file: also a py-spy --gil profile of the run)
import os
import shutil
import sys

sys.path.insert(0, "bench")
import run as R

CONNS = int(sys.argv[1]) if len(sys.argv) > 1 else 1
TICK = os.sysconf("SC_CLK_TCK")


def threads(pid: int) -> dict[str, float]:
    out: dict[str, float] = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                stat = f.read()
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                name = f.read().strip()
        except FileNotFoundError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        out[f"{name}/{tid}"] = (int(fields[11]) + int(fields[12])) / TICK
    return out


R.RAW = R.OUT / "adhoc-raw"  # wrk outputs stay out of bench/raw (the main pass's)
R.RAW.mkdir(parents=True, exist_ok=True)
R.take_snapshot(os.environ.get("SNAP", "HEAD"))
procs = R.Procs()
try:
    port = R.free_port()
    fake = procs.start(
        "fake_tc", [R.PY, "-m", "meterline.testing.fake_upstream", "--port", str(port)]
    )
    R.wait_http(fake, f"http://127.0.0.1:{port}/healthz")
    home = R.OUT / "thread_cpu"
    shutil.rmtree(home, ignore_errors=True)
    if os.environ.get("BACKEND") == "pg":  # PostgreSQL + Redis (bench database, recreated)
        R.pg_recreate()
        R.redis_flush()
        env = R.meterline_env(
            home, f"http://127.0.0.1:{port}", f"{R.PG_BASE}/{R.PG_DB}", R.REDIS_URL
        )
    else:
        env = R.meterline_env(home, f"http://127.0.0.1:{port}")
    key = R.meterline_init(env)
    p2 = R.free_port()
    proc = R.meterline_serve(procs, "thread_cpu", env, p2)
    url = f"http://127.0.0.1:{p2}"
    R.setup_plan(url, key)
    R.preseed_users(url, key)
    load = R.Load(10, 2)
    pid = proc.popen.pid
    auth = {"BENCH_AUTH": key}
    load.wrk(f"thread_cpu_warm_c{CONNS}", url, "chat.lua", CONNS, auth, proc, duration=3, warmup=0)
    before = threads(pid)
    spy = None
    if os.environ.get("SPY"):  # py-spy --gil: only the thread holding the GIL is sampled
        spy = R.subprocess.Popen(
            [
                "bench/.tools-venv/bin/py-spy",
                "record",
                "--pid",
                str(pid),
                "--duration",
                "9",
                "--rate",
                "250",
                "--format",
                "raw",
                *os.environ.get("SPY_FLAGS", "--gil").split(),
                "--nonblocking",
                "--output",
                os.environ["SPY"],
            ],
            stdout=R.subprocess.DEVNULL,
            stderr=R.subprocess.DEVNULL,
        )
    res = load.wrk(f"thread_cpu_c{CONNS}", url, "chat.lua", CONNS, auth, proc, warmup=0)
    after = threads(pid)
    if spy:
        spy.wait()
    calls = res["requests"]
    total = 0.0
    for name, cpu in sorted(after.items(), key=lambda kv: -(kv[1] - before.get(kv[0], 0))):
        d = cpu - before.get(name, 0)
        total += d
        if d > 0:
            print(f"{name:30s} {d:7.2f} s  {1000 * d / max(calls, 1):6.3f} ms/call")
    print(
        f"{'total':30s} {total:7.2f} s  {1000 * total / max(calls, 1):6.3f} ms/call  calls={calls}"
    )
finally:
    procs.stop_all()
