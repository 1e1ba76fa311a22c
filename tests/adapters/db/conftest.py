"""Fixtures for the SQL contract suite: one test set, SQLite and PostgreSQL.

SQLite uses a fresh file per test. PostgreSQL comes from ``METERLINE_TEST_POSTGRES_URL``;
without it the PostgreSQL half is skipped with a visible reason, unless ``CI`` is set,
where a missing database is a failure. Each PostgreSQL test gets its own schema (set as
the connections' ``search_path``, so the migration and ``alembic_version`` land in it),
dropped with CASCADE afterwards: other suites may share the server.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from meterline.adapters.db import SqlAccounts, SqlLedger, create_engine, migrate
from meterline.domain.entities import Project

POSTGRES_URL_ENV = "METERLINE_TEST_POSTGRES_URL"


def postgres_url() -> str:
    url = os.environ.get(POSTGRES_URL_ENV)
    if not url:
        if os.environ.get("CI"):
            pytest.fail(f"{POSTGRES_URL_ENV} is not set but CI is: the PostgreSQL suite must run")
        pytest.skip(f"{POSTGRES_URL_ENV} not set: PostgreSQL adapter not tested")
    return url


class Database:
    """A migrated, empty database for one test; ``schema`` is set on PostgreSQL."""

    def __init__(self, backend: str, engine: AsyncEngine, schema: str | None = None) -> None:
        self.backend = backend
        self.engine = engine
        self.schema = schema


async def _sqlite(tmp_path: Path) -> AsyncIterator[Database]:
    engine = create_engine(f"sqlite:///{tmp_path}/nested/meterline.db")
    try:
        await migrate(engine)
        yield Database("sqlite", engine)
    finally:
        await engine.dispose()


async def _postgres() -> AsyncIterator[Database]:
    url = postgres_url()
    schema = f"mltest_{uuid.uuid4().hex[:16]}"
    admin = create_engine(url, pool_size=1, max_overflow=0)
    async with admin.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = create_engine(url, connect_args={"server_settings": {"search_path": schema}})
    try:
        await migrate(engine)
        yield Database("postgres", engine, schema)
    finally:
        await engine.dispose()
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    factory = _sqlite(tmp_path) if request.param == "sqlite" else _postgres()
    async for database in factory:
        yield database


@pytest.fixture
def accounts(db: Database) -> SqlAccounts:
    return SqlAccounts(db.engine)


@pytest.fixture
def ledger(db: Database) -> SqlLedger:
    return SqlLedger(db.engine)


@pytest.fixture
async def project(accounts: SqlAccounts) -> Project:
    org = await accounts.create_organization("Acme")
    return await accounts.create_project(org, "Acme AI")
