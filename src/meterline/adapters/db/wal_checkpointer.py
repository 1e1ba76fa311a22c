"""``WalCheckpointer``: SQLite WAL checkpoints in a thread of their own, off the commit path.

In WAL mode a commit appends pages to the ``-wal`` file; a checkpoint copies them back into
the database file and syncs it. By default the connection whose commit takes the WAL past
1,000 pages runs that checkpoint inside its commit: for the ledger writer, about one
gateway call in a hundred paid 3–15 ms for it. (A/B at concurrency 1, four rounds each:
a call's p99 was 4.9–6.8 ms before, 2.3–3.3 ms in three rounds after and 6.1 in one.)

Here the writer's connection checkpoints only as a backstop (:data:`BACKSTOP_PAGES`),
and after its commits a PASSIVE checkpoint runs on a connection of its own in a thread of
its own, at most one at a time and at most once per :data:`INTERVAL_NS`. PASSIVE never
waits for and never blocks readers or writers: it copies what no reader still needs.

What it cannot do is restart the WAL: SQLite starts writing the WAL from its beginning
again only when a write transaction begins with every frame already copied, and under a
steady stream of writes the next one has always begun before the background checkpoint
finished. So the WAL grows to the backstop (about 40 MiB), and the backstop's checkpoint,
run in a commit, finds almost everything copied already and restarts it: one slow commit
per 10,000 pages instead of one per 1,000, and a shorter one (measured at concurrency 1
over 19,230 calls: commit p99 198 µs, 22 commits over 1 ms; with SQLite's default, p99
3.4 ms).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Engine

__all__ = ["BACKSTOP_PAGES", "INTERVAL_NS", "WalCheckpointer"]

log = logging.getLogger("meterline.sqlite")

#: The writer's own automatic checkpoint, kept as a backstop for a checkpointer that falls
#: behind (readers pinning old pages): 10,000 pages (about 40 MiB of WAL at 4 KiB pages).
BACKSTOP_PAGES = 10_000
#: At most one background checkpoint per 200 ms: at the gateway's write rate that is a few
#: thousand pages per checkpoint, each a copy and two syncs.
INTERVAL_NS = 200_000_000


class WalCheckpointer:
    """``WalCheckpointer(url, on_connect, interval_ns=INTERVAL_NS)``: call :meth:`wrote`
    after each commit (from any thread); :meth:`close` waits for a running checkpoint and
    releases the thread and connection (a later :meth:`wrote` makes them again)."""

    def __init__(
        self,
        url: URL,
        on_connect: Callable[[Any, Any], None],
        *,
        interval_ns: int = INTERVAL_NS,
    ) -> None:
        self._url = url.set(drivername="sqlite+pysqlite")
        self._on_connect = on_connect
        self._interval_ns = interval_ns
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._engine: Engine | None = None
        self._running = False
        self._last_ns = time.monotonic_ns() - interval_ns
        #: Checkpoints finished so far (tests and diagnostics).
        self.checkpoints = 0

    def wrote(self) -> None:
        """A commit happened: start a checkpoint unless one runs or one started less than
        the interval ago."""
        now = time.monotonic_ns()
        with self._lock:
            if self._running or now - self._last_ns < self._interval_ns:
                return
            self._running = True
            self._last_ns = now
            if self._executor is None or self._engine is None:
                self._engine = create_engine(
                    self._url,
                    pool_size=1,
                    max_overflow=0,
                    connect_args={"check_same_thread": False},  # closed from close()
                )
                event.listen(self._engine, "connect", self._on_connect)
                self._executor = ThreadPoolExecutor(1, thread_name_prefix="sqlite-checkpoint")
            executor, engine = self._executor, self._engine
        executor.submit(self._checkpoint, engine)

    def _checkpoint(self, engine: Engine) -> None:
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").all()
            self.checkpoints += 1
        except Exception as exc:  # the backstop still bounds the WAL; say why
            log.warning("WAL checkpoint failed: %s: %s", type(exc).__name__, exc)
        finally:
            with self._lock:
                self._running = False

    def close(self) -> None:
        with self._lock:
            executor, engine = self._executor, self._engine
            self._executor = self._engine = None
            self._running = False
        if executor is not None:
            executor.shutdown(wait=True)
        if engine is not None:
            engine.dispose()
