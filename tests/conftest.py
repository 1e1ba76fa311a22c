"""Shared test plumbing: where PostgreSQL and Redis are, and a clock tests can move."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest

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
