"""PostgreSQL lost mid-load (a TCP proxy in front of it is cut, then restored): requests
whose usage cannot be made durable fail with a clean 503 and acknowledge nothing; every
acknowledged event is in the ledger; recovery needs no manual step."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

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
