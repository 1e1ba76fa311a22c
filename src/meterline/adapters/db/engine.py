"""Async engines tuned per backend.

SQLite is the one-machine default, so it must behave under the gateway's concurrency:
WAL lets readers run beside the single writer, ``busy_timeout`` makes a writer wait for
the lock instead of failing, and every write transaction starts with ``BEGIN IMMEDIATE``
so it takes the write lock up front. (A deferred ``BEGIN`` that reads first and writes
later cannot wait for the lock once its snapshot is stale: SQLite fails it at once with
"database is locked".) Read-only work opts out with :func:`reading`, which emits a plain
deferred ``BEGIN`` so reads never queue behind writers.

PostgreSQL gets a recycled pool whose connections are pinged after an idle spell
(``idle_ping``); its own locking needs no help.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import URL, Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from meterline.adapters.db.idle_ping import ping_idle_connections
from meterline.adapters.db.sqlite_writer import SqliteReader, SqliteWriter
from meterline.adapters.db.urls import to_async_url

T = TypeVar("T")
#: Engine execution options holding a SQLite file engine's writer and reader (see
#: ``run_write``, ``run_read``); execution options, so they live and die with the engine.
SQLITE_WRITER = "meterline_sqlite_writer"
SQLITE_READER = "meterline_sqlite_reader"

__all__ = [
    "READ_ONLY",
    "SQLITE_BUSY_TIMEOUT_MS",
    "create_engine",
    "reading",
    "run_read",
    "run_write",
    "writing",
]

SQLITE_BUSY_TIMEOUT_MS = 30_000
#: Page cache per connection (KiB when negative): the rollup and event indexes are wide,
#: and SQLite's 2 MiB default makes large ledgers page-thrash on insert.
SQLITE_CACHE_KIB = 32_768
#: Connection execution option: this transaction only reads (SQLite: deferred BEGIN).
READ_ONLY = "meterline_read_only"


def create_engine(url: str | URL, **options: Any) -> AsyncEngine:
    """An :class:`AsyncEngine` for a plain or async URL; ``options`` go to SQLAlchemy
    (e.g. ``connect_args``) and override our defaults."""
    async_url = to_async_url(url)
    if async_url.get_backend_name() == "sqlite":
        return _sqlite_engine(async_url, options)
    # Sized for the gateway's concurrency: an overflow connection is closed when it is
    # returned, and opening one (a server fork, a TLS attempt, an empty statement cache)
    # cost more than the query it served. Connections open lazily, so an idle process
    # holds few, and the ceiling (30) stays what it was, for max_connections.
    defaults: dict[str, Any] = {
        "pool_size": 24,
        "max_overflow": 6,
        "pool_timeout": 30,
        "pool_recycle": 1800,
        # Liveness is checked at checkout only after an idle spell (``idle_ping``):
        # ``pool_pre_ping`` cost three round trips on every checkout.
        # Reuse the most recently returned connection: its caches (asyncpg's prepared
        # statements; SQLite's page cache) are the warm ones.
        "pool_use_lifo": True,
    }
    if _is_loopback(async_url) and not _names_ssl(async_url):
        # asyncpg's default (sslmode=prefer) first tries TLS on every new connection;
        # on loopback there is no network to protect. A URL's own sslmode still wins.
        defaults["connect_args"] = {"ssl": False}
    merged = {**defaults, **options}
    if "connect_args" in defaults and "connect_args" in options:
        merged["connect_args"] = {**defaults["connect_args"], **options["connect_args"]}
    engine = create_async_engine(async_url, **merged)
    if not merged.get("pool_pre_ping"):
        ping_idle_connections(engine)
    return engine


def _is_loopback(url: URL) -> bool:
    host = url.host or ""
    return host in ("", "localhost", "127.0.0.1", "::1") or host.startswith("/")


def _names_ssl(url: URL) -> bool:
    return any(k in url.query for k in ("ssl", "sslmode"))


def _sqlite_engine(url: URL, options: dict[str, Any]) -> AsyncEngine:
    database = url.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    # A generous pool timeout: with one writer at a time, connections may be busy for a
    # while under load, and waiting beats failing.
    # LIFO keeps one connection hot: with FIFO every call got the connection least
    # recently used, whose page cache other connections' writes had made stale
    # (measured: 10.1 → 8.1 ms per sequential gateway call).
    defaults: dict[str, Any] = {"pool_timeout": 60, "pool_use_lifo": True}
    engine = create_async_engine(url, **{**defaults, **options})

    event.listen(engine.sync_engine, "connect", sqlite_on_connect)
    event.listen(engine.sync_engine, "begin", sqlite_on_begin)
    if database and database != ":memory:" and "mode=memory" not in str(url):
        # Ledger writes run whole in one thread of their own, hot reads in a few (see
        # sqlite_writer).
        writer = SqliteWriter(url, sqlite_on_connect, sqlite_on_begin)
        reader = SqliteReader(url, sqlite_on_connect, sqlite_on_begin, {READ_ONLY: True})
        engine.sync_engine.update_execution_options(
            **{SQLITE_WRITER: writer, SQLITE_READER: reader}
        )

        def close_threads(_engine: Any) -> None:
            writer.close()
            reader.close()

        event.listen(engine.sync_engine, "engine_disposed", close_threads)
    return engine


def sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Take transaction control away from the sqlite3 driver; SQLAlchemy's "begin"
    # event below emits BEGIN itself (the documented recipe). COMMIT/ROLLBACK still work.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
    finally:
        cursor.close()


def sqlite_on_begin(conn: Any) -> None:
    if conn.get_execution_options().get(READ_ONLY):
        conn.exec_driver_sql("BEGIN")
    else:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


async def run_write(engine: AsyncEngine, work: Callable[[Connection], T]) -> T:
    """``work(connection)`` inside one write transaction, committed if it returns.

    ``work`` is plain synchronous SQLAlchemy code. On a SQLite file it runs whole in the
    database's writer thread: one hand-off for the transaction, where the async driver
    pays one per cursor call (four per statement, about 18 for a ledger write, each a
    thread switch and an event-loop wake-up). Elsewhere it runs on the async connection.
    """
    writer: SqliteWriter | None = engine.sync_engine.get_execution_options().get(SQLITE_WRITER)
    if writer is not None:
        return await writer.run(work)
    async with writing(engine) as conn:
        return await conn.run_sync(work)


async def run_read(engine: AsyncEngine, work: Callable[[Connection], T]) -> T:
    """``work(connection)`` inside one read-only transaction: plain synchronous
    SQLAlchemy code, like :func:`run_write`'s. On a SQLite file it runs whole in one of
    the database's reader threads (one hand-off, where aiosqlite pays about fifteen);
    elsewhere on the async connection of :func:`reading`."""
    reader: SqliteReader | None = engine.sync_engine.get_execution_options().get(SQLITE_READER)
    if reader is not None:
        return await reader.run(work)
    async with reading(engine) as conn:
        return await conn.run_sync(work)


@asynccontextmanager
async def writing(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """One write transaction, committed on success and rolled back on error."""
    async with engine.begin() as conn:
        yield conn


@asynccontextmanager
async def reading(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """One read-only transaction (on SQLite a deferred BEGIN that never takes the write
    lock, so reads run beside writers under WAL)."""
    async with engine.connect() as conn:
        await conn.execution_options(**{READ_ONLY: True})
        yield conn
        await conn.rollback()
