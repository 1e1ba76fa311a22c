"""kill -9 of one of two gateway processes mid-load (PostgreSQL + Redis): every response a
client received complete has exactly one ledger row, retried usage events are counted
once, and afterwards the counters equal the ledger."""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from collections import defaultdict
from typing import Any

import httpx
import pytest
from reliability_support import CHAT, EVENTS, QUOTA, ledger_rows

from meterline.config import Settings
from meterline.container import build_container
from meterline.services.bootstrap import initialize
from meterline.testing.server import running_servers

pytestmark = pytest.mark.slow

USERS = [f"crash_user_{i}" for i in range(4)]
OPS = 120
RETRIES = 20


async def test_kill_9_mid_load_loses_nothing_and_counts_nothing_twice(
    pg_database_url, redis_url, fake, tmp_path
):
    container = await build_container(
        Settings(home=tmp_path, database_url=pg_database_url, redis_url=redis_url, secret_key="t")
    )
    init = await initialize(container.accounts)
    auth = {"Authorization": f"Bearer {init.live_key}"}
    env = {
        "METERLINE_DATABASE_URL": pg_database_url,
        "METERLINE_REDIS_URL": redis_url,
        "METERLINE_SECRET_KEY": "t",
        "METERLINE_HOME": str(tmp_path),
        "METERLINE_RESERVATION_TTL_SECONDS": "3",  # a killed call's hold frees soon
        "OPENAI_BASE_URL": fake.openai_base_url,
        "OPENAI_API_KEY": "sk-fake",
    }
    try:
        with running_servers(2, env) as servers:
            urls = [s.url for s in servers]
            completed_gateway: list[str] = []
            acked_events: set[str] = set()
            done = 0
            failures = 0
            killed = asyncio.Event()

            async def send(client: httpx.AsyncClient, i: int, path: str, **kw: Any) -> Any:
                """Retry on any failure, on the next server, with the same idempotency key."""
                for attempt in range(RETRIES):
                    base = urls[(i + attempt) % len(urls)]
                    try:
                        r = await client.post(base + path, headers=auth, timeout=20, **kw)
                    except httpx.TransportError:
                        nonlocal failures
                        failures += 1
                        await asyncio.sleep(0.1)
                        continue
                    if r.status_code < 500:
                        return r
                    await asyncio.sleep(0.1)
                raise AssertionError(f"op {i} never succeeded")

            async def op(client: httpx.AsyncClient, i: int) -> None:
                nonlocal done
                user = USERS[i % len(USERS)]
                if i % 2:
                    event_id = f"evt_{uuid.uuid4().hex}"
                    event = {"end_user_id": user, "event_id": event_id, "model": "gpt-4o",
                             "prompt_tokens": 5, "completion_tokens": 7}  # fmt: skip
                    r = await send(client, i, EVENTS, json=event)
                    assert r.status_code == 200, r.text
                    assert r.json()["events"][0]["status"] in ("recorded", "duplicate")
                    acked_events.add(event_id)
                else:
                    text = f"[fake:slow=20] {i}"
                    body = {"model": "gpt-4o", "user": user,
                            "messages": [{"role": "user", "content": text}]}  # fmt: skip
                    r = await send(client, i, CHAT, json=body)
                    assert r.status_code == 200, r.text
                    assert r.json()["usage"]["total_tokens"] > 0  # received complete
                    completed_gateway.append(r.headers["x-meterline-request-id"])
                done += 1

            async def worker(client: httpx.AsyncClient, ops: list[int]) -> None:
                for i in ops:
                    await op(client, i)

            async def killer() -> None:
                while done < OPS // 3:
                    await asyncio.sleep(0.02)
                os.kill(servers[0].process.pid, signal.SIGKILL)  # no goodbye
                servers[0].process.wait()
                killed.set()

            async with httpx.AsyncClient() as client:
                workers = [worker(client, list(range(w, OPS, 8))) for w in range(8)]
                await asyncio.gather(killer(), *workers)
                assert killed.is_set() and failures > 0  # calls were cut mid-flight
                with running_servers(1, env) as restarted:  # the killed one comes back
                    urls[0] = restarted[0].url
                    await asyncio.gather(*(op(client, OPS + i) for i in range(8)))
                    await asyncio.sleep(3.5)  # holds of calls killed in flight expire

                    rows = await ledger_rows(container, init.project_id)
                    ids = [r["event_id"] for r in rows]
                    assert len(ids) == len(set(ids))  # unique, nothing twice
                    assert all(ids.count(rid) == 1 for rid in completed_gateway)
                    assert acked_events <= set(ids)
                    # Every row is explained by a call; killed calls may add a row the
                    # client never saw complete (it retried under a new request id).
                    orphans = set(ids) - acked_events - set(completed_gateway)
                    assert len(orphans) <= 8, orphans

                    # Counters equal the ledger, exactly. That includes a gateway call
                    # killed between its ledger commit and its counter settle (an orphan
                    # row): its reservation falls due, which makes the counters reseed
                    # from the ledger, where the row is.
                    per_user: dict[str, list[int]] = defaultdict(lambda: [0, 0])
                    for r in rows:
                        per_user[r["end_user_id"]][0] += 1
                        per_user[r["end_user_id"]][1] += r["total_tokens"]
                    for user in USERS:
                        q = await client.get(
                            urls[1] + QUOTA, params={"end_user_id": user}, headers=auth
                        )
                        usage = q.json()["usage"]
                        n, tokens = per_user[user]
                        assert usage["daily_requests"]["used"] == n, (user, n, usage)
                        assert usage["daily_tokens"]["used"] == tokens, (user, tokens, usage)
    finally:
        await container.close()
