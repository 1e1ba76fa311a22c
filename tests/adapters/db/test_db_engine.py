"""URLs, engine settings, time zones and SQLite write serialization."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import event, select, text

from meterline.adapters.db import create_engine, migrate, to_async_url
from meterline.adapters.db import tables as t
from meterline.adapters.db.engine import reading, run_read, run_write, writing


@pytest.mark.parametrize(
    ("plain", "expected"),
    [
        ("sqlite:///data/meterline.db", "sqlite+aiosqlite:///data/meterline.db"),
        ("sqlite:////abs/path.db", "sqlite+aiosqlite:////abs/path.db"),
        ("sqlite+aiosqlite:///x.db", "sqlite+aiosqlite:///x.db"),
        ("postgresql://u:p@h:5432/db", "postgresql+asyncpg://u:***@h:5432/db"),
        ("postgres://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("postgresql+asyncpg://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("postgresql://u@h/db?sslmode=require", "postgresql+asyncpg://u@h/db?ssl=require"),
        ("postgresql://u@h/db?ssl=disable", "postgresql+asyncpg://u@h/db?ssl=disable"),
    ],
)
def test_to_async_url(plain, expected):
    assert str(to_async_url(plain)) == expected


class _Captured(Exception):
    pass


@pytest.mark.parametrize(
    ("url", "options", "expected"),
    [
        # loopback without an ssl choice: no TLS attempt on every new connection
        ("postgresql://u@127.0.0.1/db", {}, {"ssl": False}),
        (
            "postgresql://u@localhost/db",
            {"connect_args": {"timeout": 5}},
            {"ssl": False, "timeout": 5},
        ),
        # a remote host, or a URL that chooses, keeps asyncpg's own handling
        ("postgresql://u@db.internal/db", {}, {}),
        ("postgresql://u@127.0.0.1/db?sslmode=require", {}, {"ssl": "require"}),
    ],
)
async def test_postgres_connect_args(url, options, expected):
    engine = create_engine(url, **options)
    seen: dict[str, object] = {}

    @event.listens_for(engine.sync_engine, "do_connect")
    def grab(_dialect, _record, _cargs, cparams):  # the driver's arguments, not connecting
        seen.update(cparams)
        raise _Captured

    with pytest.raises(_Captured):
        async with engine.connect():
            pass
    assert {k: seen[k] for k in ("ssl", "timeout") if k in seen} == expected
    assert engine.pool.size() == 24  # sized for the gateway's concurrency
    await engine.dispose()


def test_password_survives_conversion():
    url = to_async_url("postgresql://u:s%40cret@h/db")
    assert url.password == "s@cret"


@pytest.mark.parametrize("url", ["mysql://u@h/db", "postgresql+psycopg2://u@h/db"])
def test_unsupported_urls_are_refused(url):
    with pytest.raises(ValueError):
        to_async_url(url)


async def test_sqlite_pragmas_and_parent_dirs(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path}/a/b/c.db")
    try:
        async with engine.connect() as conn:
            pragmas = {
                name: (await conn.exec_driver_sql(f"PRAGMA {name}")).scalar()
                for name in ("journal_mode", "busy_timeout", "foreign_keys", "synchronous")
            }
        assert pragmas == {
            "journal_mode": "wal",
            "busy_timeout": 30_000,
            "foreign_keys": 1,
            "synchronous": 1,  # NORMAL
        }
        assert (tmp_path / "a" / "b" / "c.db").exists()
    finally:
        await engine.dispose()


async def test_sqlite_concurrent_read_modify_write_serializes(tmp_path):
    """Writers that read before they write would fail with "database is locked" under a
    deferred BEGIN; BEGIN IMMEDIATE makes them queue instead, and no update is lost."""
    engine = create_engine(f"sqlite:///{tmp_path}/w.db", pool_size=10, max_overflow=10)
    try:
        await migrate(engine)
        now = datetime.now(UTC)
        async with writing(engine) as conn:
            await conn.execute(t.organizations.insert().values(id="o", name="0", created_at=now))

        async def bump() -> None:
            async with writing(engine) as conn:
                name = (await conn.execute(select(t.organizations.c.name))).scalar_one()
                await asyncio.sleep(0)
                await conn.execute(t.organizations.update().values(name=str(int(name) + 1)))

        async def read() -> None:
            async with reading(engine) as conn:
                await conn.execute(select(t.organizations.c.name))

        await asyncio.gather(*(bump() for _ in range(40)), *(read() for _ in range(40)))
        async with reading(engine) as conn:
            assert (await conn.execute(select(t.organizations.c.name))).scalar_one() == "40"
    finally:
        await engine.dispose()


async def test_sqlite_run_write_is_one_transaction_in_the_writer_thread(tmp_path):
    """run_write on a SQLite file: the whole work runs in the writer thread (with the same
    pragmas and BEGIN IMMEDIATE), commits if it returns, rolls back whole if it raises,
    serializes with the async engine's writers, and survives the engine's dispose."""
    engine = create_engine(f"sqlite:///{tmp_path}/rw.db")
    now = datetime.now(UTC)
    try:
        await migrate(engine)

        def insert(name: str, fail: bool = False):
            def work(conn):
                conn.execute(t.organizations.insert().values(id=name, name=name, created_at=now))
                if fail:
                    raise _Captured(name)
                pragmas = [
                    conn.exec_driver_sql(f"PRAGMA {p}").scalar()
                    for p in ("journal_mode", "busy_timeout", "foreign_keys")
                ]
                return threading.current_thread().name, pragmas

            return work

        thread, pragmas = await run_write(engine, insert("a"))
        assert thread.startswith("sqlite-writer") and thread != threading.current_thread().name
        assert pragmas[:3] == ["wal", 30_000, 1]
        with pytest.raises(_Captured):
            await run_write(engine, insert("b", fail=True))

        async def bump(i: int) -> None:  # async-engine writers interleaved with the thread's
            async with writing(engine) as conn:
                await conn.execute(
                    t.organizations.insert().values(id=f"x{i}", name="x", created_at=now)
                )

        await asyncio.gather(
            *(run_write(engine, insert(f"c{i}")) for i in range(30)), *(bump(i) for i in range(30))
        )
        await engine.dispose()  # releases the writer thread; a later write makes it again
        assert not any(
            th.name.startswith("sqlite-writer") and th.is_alive()
            for th in threading.enumerate()
            if th.name == thread
        )
        await run_write(engine, insert("d"))
        async with reading(engine) as conn:
            ids = set((await conn.execute(select(t.organizations.c.id))).scalars())
        assert ids == {"a", "d"} | {f"c{i}" for i in range(30)} | {f"x{i}" for i in range(30)}
    finally:
        await engine.dispose()


async def test_sqlite_run_read_runs_in_a_reader_thread_beside_a_held_write(tmp_path):
    """run_read on a SQLite file: the work runs whole in a reader thread, in a deferred
    transaction, so it reads the last committed state while the writer holds the write
    lock; the reader threads end with the engine's dispose."""
    engine = create_engine(f"sqlite:///{tmp_path}/rr.db")
    now = datetime.now(UTC)
    holding, release = threading.Event(), threading.Event()
    try:
        await migrate(engine)
        await run_write(
            engine,
            lambda conn: conn.execute(
                t.organizations.insert().values(id="a", name="a", created_at=now)
            ),
        )

        def hold_the_lock(conn):
            conn.execute(t.organizations.insert().values(id="b", name="b", created_at=now))
            holding.set()
            assert release.wait(10)

        def read(conn):
            ids = set(conn.execute(select(t.organizations.c.id)).scalars())
            return threading.current_thread().name, ids

        write = asyncio.ensure_future(run_write(engine, hold_the_lock))
        assert await asyncio.to_thread(holding.wait, 10)
        thread, ids = await asyncio.wait_for(run_read(engine, read), timeout=5)
        assert thread.startswith("sqlite-reader") and ids == {"a"}  # "b" is not committed
        release.set()
        await write
        assert (await run_read(engine, read))[1] == {"a", "b"}
        await engine.dispose()
        assert not any(th.name.startswith("sqlite-reader") for th in threading.enumerate())
    finally:
        release.set()
        await engine.dispose()


async def test_timestamps_come_back_aware_utc(db):
    eastern = timezone(timedelta(hours=-5))
    local = datetime(2025, 3, 14, 7, 30, 15, 123456, tzinfo=eastern)
    naive = datetime(2025, 3, 14, 12, 30, 15)
    async with writing(db.engine) as conn:
        await conn.execute(
            t.organizations.insert(),
            [
                {"id": "a", "name": "a", "created_at": local},
                {"id": "b", "name": "b", "created_at": naive},
            ],
        )
    async with reading(db.engine) as conn:
        rows = dict(
            (await conn.execute(select(t.organizations.c.id, t.organizations.c.created_at))).all()
        )
    assert rows["a"] == local and rows["a"].tzinfo is UTC
    assert rows["a"] == datetime(2025, 3, 14, 12, 30, 15, 123456, tzinfo=UTC)
    assert rows["b"] == naive.replace(tzinfo=UTC) and rows["b"].tzinfo is UTC


async def test_no_float_columns(db):
    from sqlalchemy import Float, Numeric

    for table in t.metadata.tables.values():
        for column in table.columns:
            assert not isinstance(column.type, Float | Numeric), f"{table.name}.{column.name}"
    async with reading(db.engine) as conn:
        assert (await conn.execute(text("SELECT 1"))).scalar() == 1
