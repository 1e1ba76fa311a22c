"""Shared test plumbing: where PostgreSQL and Redis are, and a clock tests can move."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from sqlalchemy.engine import make_url

POSTGRES_ENV = "METERLINE_TEST_POSTGRES_URL"
REDIS_ENV = "METERLINE_TEST_REDIS_URL"


def require_env(name: str) -> str:
    """The URL of a real service, or a visible skip (a failure in CI, where it is required)."""
    value = os.environ.get(name)
    if not value:
        if os.environ.get("CI"):
            pytest.fail(f"{name} must be set in CI")
        pytest.skip(f"{name} not set: this backend is tested in CI (.ci/run sets it)")
    return value


class MovableClock:
    """A ``ports.Clock`` whose time the test sets."""

    def __init__(self, now: datetime | None = None) -> None:
        self.current = now or datetime(2026, 11, 15, 12, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.current

    def advance(self, **kw: float) -> None:
        self.current += timedelta(**kw)


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock()


@pytest.fixture
def postgres_url() -> str:
    return require_env(POSTGRES_ENV)


@pytest.fixture
def redis_url() -> str:
    return require_env(REDIS_ENV)


@pytest.fixture
async def pg_database_url(postgres_url: str) -> AsyncIterator[str]:
    """A fresh PostgreSQL database for one test (servers in other processes can use it)."""
    name = f"ml_{uuid.uuid4().hex[:12]}"
    base = make_url(postgres_url)
    admin_dsn = base.set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    yield base.set(database=name).render_as_string(hide_password=False)
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()
