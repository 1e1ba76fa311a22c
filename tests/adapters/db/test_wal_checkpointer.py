"""The SQLite writer's WAL is checkpointed in a thread of its own, not inside commits: the
writer's own automatic checkpoint is only a distant backstop, and the background
checkpoints still copy the written pages into the database file."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url

from meterline.adapters.db import create_engine
from meterline.adapters.db.engine import SQLITE_WRITER, reading, run_write, sqlite_on_connect
from meterline.adapters.db.wal_checkpointer import BACKSTOP_PAGES, WalCheckpointer

ROWS = 1500
PAYLOAD = "x" * 6000  # two 4 KiB pages per row: 3,000 pages, below the backstop


async def test_the_writer_checkpoints_in_the_background_not_in_its_commits(
    tmp_path: Path,
) -> None:
    path = tmp_path / "wal.db"
    engine = create_engine(f"sqlite:///{path}")
    try:
        async with engine.begin() as conn:
            await conn.exec_driver_sql("CREATE TABLE blobs (n INTEGER PRIMARY KEY, body TEXT)")
            default = (await conn.exec_driver_sql("PRAGMA wal_autocheckpoint")).scalar()
        writer = engine.sync_engine.get_execution_options()[SQLITE_WRITER]
        writer.checkpointer = WalCheckpointer(
            make_url(f"sqlite:///{path}"), sqlite_on_connect, interval_ns=0
        )

        def insert(n: int):
            def work(conn):
                conn.execute(
                    text("INSERT INTO blobs VALUES (:n, :body)"), {"n": n, "body": PAYLOAD}
                )
                return conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar()

            return work

        for n in range(ROWS):
            backstop = await run_write(engine, insert(n))
        assert backstop == BACKSTOP_PAGES and default == 1000  # async engine: SQLite's own
        # The last commits' checkpoint may still be due: one more write after the interval.
        deadline = time.monotonic() + 10
        while writer.checkpointer._running and time.monotonic() < deadline:
            time.sleep(0.01)
        await run_write(engine, insert(ROWS))
        while writer.checkpointer._running and time.monotonic() < deadline:
            time.sleep(0.01)
        threads = {th.name for th in threading.enumerate()}
        assert any(name.startswith("sqlite-checkpoint") for name in threads)
        assert writer.checkpointer.checkpoints > 0
        # Only a checkpoint moves pages from the WAL into the database file, and the
        # writer's own would not run below the backstop: without the background ones the
        # file would still hold little more than the schema.
        assert path.stat().st_size > 0.9 * ROWS * len(PAYLOAD)
        async with reading(engine) as conn:
            count = (await conn.exec_driver_sql("SELECT count(*) FROM blobs")).scalar()
        assert count == ROWS + 1
    finally:
        await engine.dispose()
    assert not any(
        th.name.startswith("sqlite-checkpoint") and th.is_alive() for th in threading.enumerate()
    )


def test_a_failed_checkpoint_is_logged_and_a_later_one_is_tried(tmp_path, caplog) -> None:
    missing = make_url(f"sqlite:///{tmp_path}/no/such/dir/x.db")
    checkpointer = WalCheckpointer(missing, sqlite_on_connect, interval_ns=0)
    try:
        with caplog.at_level(logging.WARNING, logger="meterline.sqlite"):
            for _ in range(2):
                checkpointer.wrote()
                deadline = time.monotonic() + 10
                while checkpointer._running and time.monotonic() < deadline:
                    time.sleep(0.01)
        failures = [r for r in caplog.records if "WAL checkpoint failed" in r.getMessage()]
        assert len(failures) == 2 and checkpointer.checkpoints == 0
    finally:
        checkpointer.close()
