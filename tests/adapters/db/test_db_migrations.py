"""The migration is idempotent and produces exactly ``tables.metadata``."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from meterline.adapters.db import migrate
from meterline.adapters.db.migrate import MIGRATIONS_DIR
from meterline.adapters.db.tables import metadata


def _diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return compare_metadata(context, metadata)


async def test_migration_matches_metadata(db):
    async with db.engine.connect() as conn:
        diff = await conn.run_sync(_diff)
    assert diff == []


async def test_migrate_twice_is_a_no_op(db):
    await migrate(db.engine)
    await migrate(db.engine)
    async with db.engine.connect() as conn:
        version = (await conn.execute(text("SELECT version_num FROM alembic_version"))).all()
        tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    assert version == [("0005",)]
    assert tables == set(metadata.tables) | {"alembic_version"}


async def _in_test_schema(db, sql: str) -> list[Any]:
    """Rows of a catalog query about the test's own schema (bound as ``:s``)."""
    async with db.engine.connect() as conn:
        return list((await conn.execute(text(sql), {"s": db.schema})).all())


async def test_postgres_schema_isolation(db):
    if db.backend != "postgres":
        return
    schemas = await _in_test_schema(
        db,
        "SELECT table_schema FROM information_schema.tables "
        "WHERE table_name = 'alembic_version' AND table_schema = :s",
    )
    assert schemas == [(db.schema,)]


async def test_postgres_rollups_leave_room_for_hot_updates(db):
    if db.backend != "postgres":
        return
    rows = await _in_test_schema(
        db,
        "SELECT c.relname, c.reloptions FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = :s AND c.relkind = 'r' AND c.relname LIKE 'usage_%'",
    )
    options = {name: opts for name, opts in rows}
    for table in ("usage_daily_rollups", "usage_user_daily", "usage_project_daily"):
        assert options[table] == ["fillfactor=70"], table
    assert options["usage_events"] is None  # append-only: full pages are right there


def test_migrations_ship_inside_the_package():
    assert (MIGRATIONS_DIR / "env.py").is_file()
    assert (MIGRATIONS_DIR / "versions" / "0001_initial.py").is_file()
    assert "src/meterline/adapters/db" in MIGRATIONS_DIR.as_posix()
