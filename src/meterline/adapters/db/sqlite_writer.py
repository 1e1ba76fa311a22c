"""``SqliteWriter`` and ``SqliteReader``: whole transactions on a SQLite file, each run
in one hand-off to a thread of their own.

The async driver (aiosqlite) runs every cursor call in its connection's thread and wakes
the event loop for each result: a ledger write of one batch (BEGIN, the insert with
RETURNING, three rollup upserts, COMMIT, the pool's reset) made about 18 such round
trips, and at concurrency 1 they cost the event loop more CPU than the rest of the
gateway call. Here the transaction is a plain synchronous function that runs, start to
commit, in a thread owned by the writer, over a synchronous (pysqlite) connection to the
same file with the same pragmas: one hand-off per transaction.

SQLite has one writer at a time anyway, so one thread loses nothing: transactions queue
in the executor, as they queued for the write lock before. The per-call reads (an end
user, the counters' seed) go the same way through a few reader threads, beside the
writer (WAL); other reads still use the async engine. Threads and connections are made
on first use and released by :meth:`close` (called when the async engine is disposed);
a later transaction makes them again. The WAL is checkpointed after the writer's commits
in another thread (``wal_checkpointer``), not inside a commit.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Connection, Engine

from meterline.adapters.db.wal_checkpointer import BACKSTOP_PAGES, WalCheckpointer

__all__ = ["SqliteReader", "SqliteWriter"]

T = TypeVar("T")


class _SqliteThreads:
    """Whole transactions on a SQLite file, each run start to end in one thread of a
    small pool, over synchronous (pysqlite) connections opened with the async engine's
    hooks. ``url`` names the database file (any SQLite driver; pysqlite is used);
    ``execution_options`` are set on the pool's engine, where the "begin" hook sees them."""

    threads = 1
    thread_name = "sqlite"

    def __init__(
        self,
        url: URL,
        on_connect: Callable[[Any, Any], None],
        on_begin: Callable[[Any], None],
        execution_options: dict[str, Any] | None = None,
    ) -> None:
        self._url = url.set(drivername="sqlite+pysqlite")
        self._on_connect = on_connect
        self._on_begin = on_begin
        self._execution_options = execution_options or {}
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._engine: Engine | None = None

    def _listen(self, engine: Engine) -> None:
        event.listen(engine, "connect", self._on_connect)
        event.listen(engine, "begin", self._on_begin)

    def _started(self) -> tuple[ThreadPoolExecutor, Engine]:
        with self._lock:
            if self._executor is None or self._engine is None:
                engine = create_engine(
                    self._url,
                    pool_size=self.threads,
                    max_overflow=0,
                    # Opened in a pool thread; closed by close() from the loop's thread.
                    connect_args={"check_same_thread": False},
                    execution_options=self._execution_options,
                )
                self._listen(engine)
                self._engine = engine
                self._executor = ThreadPoolExecutor(
                    self.threads, thread_name_prefix=self.thread_name
                )
            return self._executor, self._engine

    def close(self) -> None:
        """Wait for the running transactions, then release the threads and connections."""
        with self._lock:
            executor, engine = self._executor, self._engine
            self._executor = self._engine = None
        if executor is not None:
            executor.shutdown(wait=True)
        if engine is not None:
            engine.dispose()


class SqliteWriter(_SqliteThreads):
    """``SqliteWriter(url, on_connect, on_begin)``: the write transactions, in one thread
    (SQLite has one writer at a time); the hooks are the async engine's "connect" and
    "begin" listeners, so both engines open and begin transactions the same way."""

    thread_name = "sqlite-writer"

    def __init__(
        self,
        url: URL,
        on_connect: Callable[[Any, Any], None],
        on_begin: Callable[[Any], None],
    ) -> None:
        super().__init__(url, on_connect, on_begin)
        self.checkpointer = WalCheckpointer(url, on_connect)

    def _listen(self, engine: Engine) -> None:
        super()._listen(engine)
        event.listen(engine, "connect", _checkpoint_as_backstop)

    async def run(self, work: Callable[[Connection], T]) -> T:
        """``work(connection)`` in one transaction in the writer thread, committed if it
        returns and rolled back if it raises. A caller cancelled while it runs does not
        stop it: the transaction still commits or rolls back whole."""
        executor, engine = self._started()
        return await asyncio.get_running_loop().run_in_executor(
            executor, _transaction, engine, work, self.checkpointer
        )

    def close(self) -> None:
        super().close()
        self.checkpointer.close()


class SqliteReader(_SqliteThreads):
    """``SqliteReader(url, on_connect, on_begin, execution_options)``: read-only
    transactions, up to :attr:`threads` at once; the options should make ``on_begin``
    emit a deferred BEGIN, so that under WAL they never wait for the writer.
    Through aiosqlite a read took about fifteen thread hand-offs, each waiting its turn of
    the event loop; here it takes one."""

    threads = 4
    thread_name = "sqlite-reader"

    async def run(self, work: Callable[[Connection], T]) -> T:
        """``work(connection)`` in one read-only transaction in a reader thread."""
        executor, engine = self._started()
        return await asyncio.get_running_loop().run_in_executor(executor, _read, engine, work)


def _checkpoint_as_backstop(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_PAGES}")


def _transaction(
    engine: Engine, work: Callable[[Connection], T], checkpointer: WalCheckpointer
) -> T:
    with engine.begin() as conn:
        result = work(conn)
    checkpointer.wrote()
    return result


def _read(engine: Engine, work: Callable[[Connection], T]) -> T:
    with engine.begin() as conn:  # a deferred BEGIN: see SqliteReader
        return work(conn)
