"""Run the Alembic migrations programmatically, on SQLite or PostgreSQL.

The migration scripts live inside the package (``migrations/``) so they ship in the
wheel and ``meterline migrate`` needs no ``alembic.ini``. The upgrade runs on our async
engine through ``connection.run_sync``: the same driver, pragmas and settings
(``search_path`` included) as the application.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from meterline.adapters.db.engine import create_engine

__all__ = ["MIGRATIONS_DIR", "alembic_config", "migrate"]

MIGRATIONS_DIR = Path(__file__).with_name("migrations")

#: Serializes concurrent ``migrate`` calls (several replicas starting at once) on PostgreSQL.
_PG_LOCK_KEY = 0x6D65746572  # "meter"


def alembic_config() -> Config:
    """An in-memory Alembic config pointing at the packaged scripts."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def _upgrade(connection: Connection, config: Config, revision: str) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


async def migrate(target: str | AsyncEngine, revision: str = "head") -> None:
    """Upgrade the database at ``target`` (a plain URL or an engine) to ``revision``.

    Idempotent: an up-to-date database is left alone. The whole upgrade is one
    transaction (DDL is transactional on both backends).
    """
    engine = create_engine(target) if isinstance(target, str) else target
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade, alembic_config(), revision)
    finally:
        if isinstance(target, str):
            await engine.dispose()
