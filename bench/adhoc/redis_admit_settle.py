# Ad-hoc: the Redis counters alone, as the gateway drives them: C concurrent tasks each
# admit with a reservation then settle it, for 1,000 users, until N pairs are done.
# Prints pairs/s, this process's CPU per pair and Redis's (INFO cpu) per pair.
# Compare revisions through PYTHONPATH, on Redis DB 9 (emptied first):
#   for src in /path/to/old/src src; do
#     PYTHONPATH=$src C=32 .venv/bin/python bench/adhoc/redis_admit_settle.py
#   done
# Not part of `make bench`.
import asyncio
import os
import time
from datetime import UTC, datetime

import redis as syncredis

from meterline.adapters.counters.redis import RedisCounters
from meterline.adapters.counters.redis_client import connect
from meterline.domain.entities import Environment, UserKey
from meterline.domain.plans import Limits
from meterline.ports import Reservation, WindowTotals

CONC = int(os.environ.get("C", "32"))
N = int(os.environ.get("N", "20000"))


def redis_cpu(r):
    i = r.info("cpu")
    return i["used_cpu_sys"] + i["used_cpu_user"]


async def main():
    r = connect(
        "redis://127.0.0.1:6379/9", max_connections=256, socket_timeout=5, socket_connect_timeout=5
    )
    await r.flushdb()
    c = RedisCounters(r)
    now = datetime.now(UTC)
    limits = Limits(daily_token_limit=10**12, monthly_token_limit=10**12, requests_per_minute=10**9)
    keys = [UserKey("p", Environment("test"), f"u{i}") for i in range(1000)]
    for k in keys:
        await c.seed(
            k,
            WindowTotals(
                day=now.date(),
                daily_tokens=0,
                monthly_tokens=0,
                daily_requests=0,
                monthly_requests=0,
                daily_cost_nanos=0,
                monthly_cost_nanos=0,
            ),
            now,
        )
    sr = syncredis.Redis.from_url("redis://127.0.0.1:6379/9")
    done = 0

    async def worker(w):
        nonlocal done
        i = w
        while done < N:
            done += 1
            k = keys[i % 1000]
            i += 7
            await c.admit(
                k, limits, alert_only=False, now=now, reservation=Reservation(f"r{w}_{i}", 10, 10)
            )
            await c.settle(k, now=now, at=now, tokens=10, cost_nanos=10, reservation_id=f"r{w}_{i}")

    rc0 = redis_cpu(sr)
    t0 = time.process_time()
    w0 = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(CONC)))
    t1 = time.process_time()
    w1 = time.perf_counter()
    rc1 = redis_cpu(sr)
    print(
        f"{os.environ.get('TAG', '')} c={CONC} {done / (w1 - w0):8.0f} pairs/s"
        f"  client {1e6 * (t1 - t0) / done:6.1f} us/pair"
        f"  redis {1e6 * (rc1 - rc0) / done:6.1f} us/pair"
    )
    await r.aclose()


asyncio.run(main())
