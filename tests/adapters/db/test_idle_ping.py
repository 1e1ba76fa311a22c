"""PostgreSQL connections are pinged at checkout only after an idle spell, and a
connection the server dropped while it sat idle is replaced without the caller seeing an
error (what ``pool_pre_ping`` gave, without its three round trips on every checkout)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from meterline.adapters.db import create_engine
from meterline.adapters.db.idle_ping import ping_idle_connections
from meterline.adapters.db.urls import to_async_url

pytestmark = pytest.mark.postgres

WINDOW_NS = 200_000_000  # 200 ms: idle longer than this means a ping first
Pinged = tuple[AsyncEngine, list[int]]


def _engine(url: str, window_ns: int) -> Pinged:
    """A one-connection pool with the idle ping, counting the pings it makes."""
    engine = create_async_engine(
        to_async_url(url), pool_size=1, max_overflow=0, connect_args={"ssl": False}
    )
    pings: list[int] = []
    dialect: Any = engine.sync_engine.dialect
    real_ping = dialect.do_ping

    def counted(dbapi_connection: Any) -> bool:
        pings.append(1)
        return bool(real_ping(dbapi_connection))

    dialect.do_ping = counted
    ping_idle_connections(engine, after_ns=window_ns)
    return engine, pings


@pytest.fixture
async def engine(postgres_url: str) -> AsyncIterator[Pinged]:
    engine, pings = _engine(postgres_url, WINDOW_NS)
    yield engine, pings
    await engine.dispose()


async def _backend_pid(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def _terminate(url: str, pid: int) -> None:
    other = create_engine(url, pool_size=1, max_overflow=0)
    try:
        async with other.connect() as conn:
            await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        await other.dispose()
    await asyncio.sleep(0.05)  # the backend is gone before the next statement


async def test_a_connection_in_steady_use_is_not_pinged_an_idle_one_is(engine: Pinged) -> None:
    engine, pings = engine
    first = await _backend_pid(engine)  # a new connection: no ping
    for _ in range(20):
        assert await _backend_pid(engine) == first  # back-to-back checkouts
    assert pings == []
    await asyncio.sleep(WINDOW_NS / 1e9 + 0.1)
    assert await _backend_pid(engine) == first
    assert pings == [1]  # one ping after the idle spell, and the connection kept


async def test_a_connection_dropped_while_idle_is_replaced_unseen(
    engine: Pinged, postgres_url: str
) -> None:
    engine, pings = engine
    dropped = await _backend_pid(engine)
    await _terminate(postgres_url, dropped)
    await asyncio.sleep(WINDOW_NS / 1e9 + 0.1)
    replacement = await _backend_pid(engine)  # no error reaches the caller
    assert replacement != dropped
    assert pings == [1]  # the failed ping; the new connection is not pinged


async def test_inside_the_window_a_dropped_connection_fails_once_then_the_pool_recovers(
    postgres_url: str,
) -> None:
    """The price of the window, as with any connection that breaks after its ping."""
    engine, pings = _engine(postgres_url, 60 * 10**9)  # a window no test run outlasts
    try:
        dropped = await _backend_pid(engine)
        await _terminate(postgres_url, dropped)
        with pytest.raises(DBAPIError):
            await _backend_pid(engine)
        assert await _backend_pid(engine) != dropped
        assert pings == []
    finally:
        await engine.dispose()


async def test_the_default_postgres_engine_uses_the_idle_ping_not_pre_ping(
    postgres_url: str,
) -> None:
    engine = create_engine(postgres_url)
    try:
        assert engine.sync_engine.pool._pre_ping is False
        first = await _backend_pid(engine)
        await _terminate(postgres_url, first)
        engine_pings_after = 0.5 + 0.1  # the default window is 500 ms
        await asyncio.sleep(engine_pings_after)
        assert await _backend_pid(engine) != first  # replaced without an error
    finally:
        await engine.dispose()
