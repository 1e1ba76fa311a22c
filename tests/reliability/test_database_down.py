"""PostgreSQL lost mid-load (a TCP proxy in front of it is cut, then restored): requests
whose usage cannot be made durable fail with a clean 503 and acknowledge nothing; every
acknowledged event is in the ledger; recovery needs no manual step."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import httpx
import pytest
from reliability_support import CHAT, EVENTS, TcpProxy, app_for, settings_for
from sqlalchemy.engine import make_url

pytestmark = pytest.mark.slow


def _event(user: str, event_id: str) -> dict[str, Any]:
    return {"end_user_id": user, "event_id": event_id, "model": "gpt-4o",
            "prompt_tokens": 3, "completion_tokens": 4}  # fmt: skip


def _clean_failure(r: httpx.Response) -> None:
    assert r.status_code == 503, (r.status_code, r.text)
    assert r.json()["error"]["code"] in ("database_unavailable", "upstream_error")
    assert r.headers.get("x-meterline-request-id")


async def test_database_lost_mid_load_acknowledges_nothing_it_cannot_keep(
    pg_database_url, tmp_path, fake
):
    url = make_url(pg_database_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    await proxy.start()
    via_proxy = url.set(port=proxy.port).render_as_string(hide_password=False)
    async with app_for(settings_for({"database_url": via_proxy}, tmp_path, fake)) as a:
        acked_events: set[str] = set()
        refused_events: list[str] = []
        acked_gateway: set[str] = set()
        statuses: list[int] = []

        async def report(i: int) -> None:
            event_id = f"evt_{i}_{uuid.uuid4().hex[:6]}"
            r = await a.client.post(EVENTS, json=_event(f"u{i % 3}", event_id), headers=a.auth())
            statuses.append(r.status_code)
            if r.status_code == 200:
                assert r.json()["events"][0]["status"] in ("recorded", "duplicate")
                acked_events.add(event_id)
            else:
                _clean_failure(r)
                refused_events.append(event_id)

        async def chat(i: int) -> None:
            r = await a.chat(f"call {i}", user=f"u{i % 3}")
            statuses.append(r.status_code)
            if r.status_code == 200:
                acked_gateway.add(r.headers["x-meterline-request-id"])
            else:
                _clean_failure(r)

        async def load(start: int, n: int) -> None:
            await asyncio.gather(*(
                (report if i % 2 else chat)(i) for i in range(start, start + n)
            ))  # fmt: skip

        async def outage() -> None:
            await asyncio.sleep(0.3)
            await proxy.cut()

        await asyncio.gather(load(0, 40), outage())
        await load(100, 10)  # fully down: every one refused cleanly
        assert statuses.count(503) >= 10 and 500 not in statuses

        await proxy.restore()  # the database is back: no restart, no manual step
        for event_id in refused_events:  # clients retry with the same idempotency key
            r = await a.client.post(EVENTS, json=_event("u0", event_id), headers=a.auth())
            assert r.status_code == 200, r.text
            acked_events.add(event_id)
        assert (await a.chat("after")).status_code == 200
        assert (await a.client.get("/readyz")).status_code == 200

        rows = await a.ledger()
        ids = [row["event_id"] for row in rows]
        assert len(ids) == len(set(ids))  # nothing twice
        assert acked_events <= set(ids)  # every acknowledged event is durable
        assert acked_gateway <= set(ids)  # every completed gateway response is billed
    await proxy.cut()


async def test_stream_whose_usage_cannot_be_recorded_ends_with_an_error(
    pg_database_url, tmp_path, fake
):
    """The ledger write comes before the stream's final event: with the database gone,
    the client gets an error event instead of a normal end, never a hang."""
    url = make_url(pg_database_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    await proxy.start()
    via_proxy = url.set(port=proxy.port).render_as_string(hide_password=False)
    async with app_for(settings_for({"database_url": via_proxy}, tmp_path, fake)) as a:
        content = "[fake:slow=40] [fake:words=20]"
        body = {"model": "gpt-4o", "user": "s", "stream": True,
                "messages": [{"role": "user", "content": content}]}  # fmt: skip

        async def cut_soon() -> None:
            await asyncio.sleep(0.3)
            await proxy.cut()

        async def stream() -> httpx.Response:
            return await a.client.post(CHAT, json=body, headers=a.auth())

        r, _ = await asyncio.wait_for(asyncio.gather(stream(), cut_soon()), timeout=30)
        assert r.status_code == 200
        text = r.text
        assert "data: [DONE]" not in text
        assert "usage could not be recorded" in text
        await proxy.restore()
        assert await a.ledger() == []  # nothing billed, nothing acknowledged
    await proxy.cut()


async def test_a_database_at_its_connection_limit_is_unavailable_not_a_bug(
    postgres_url, pg_database_url, tmp_path, fake
):
    """PostgreSQL refusing a new connection for lack of slots ("too many connections",
    SQLSTATE 53300) is an outage of the database, not a bug: a clean 503 that records
    nothing, and service comes back with the slots, without a restart. (A benchmark that
    ran four servers against one PostgreSQL found these calls answered 500.)"""
    url = make_url(pg_database_url)
    role = f"ml_limited_{uuid.uuid4().hex[:8]}"  # superusers are exempt from the limits
    admin = await asyncpg.connect(
        make_url(postgres_url).set(drivername="postgresql").render_as_string(False)
    )
    try:
        await admin.execute(f'CREATE ROLE "{role}" LOGIN')
        await admin.execute(f'ALTER DATABASE "{url.database}" OWNER TO "{role}"')
        as_role = url.set(username=role).render_as_string(hide_password=False)
        async with app_for(settings_for({"database_url": as_role}, tmp_path, fake)) as a:
            assert (await a.chat("before")).status_code == 200
            await admin.execute(f'ALTER ROLE "{role}" CONNECTION LIMIT 0')
            await a.container.engine.dispose()  # the next request needs a new connection
            refused = await a.client.post(EVENTS, json=_event("u0", "evt_limit"), headers=a.auth())
            _clean_failure(refused)
            assert refused.json()["error"]["code"] == "database_unavailable"
            await admin.execute(f'ALTER ROLE "{role}" CONNECTION LIMIT -1')
            assert "evt_limit" not in [row["event_id"] for row in await a.ledger()]
            again = await a.client.post(EVENTS, json=_event("u0", "evt_limit"), headers=a.auth())
            assert again.status_code == 200, again.text
            assert again.json()["events"][0]["status"] == "recorded"  # not a duplicate
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)')
        await admin.execute(f'DROP ROLE IF EXISTS "{role}"')
        await admin.close()
