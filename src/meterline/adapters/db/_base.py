"""Plumbing shared by the SQL stores: the engine, the clock and the dialect's upsert."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from meterline.ports import Clock

__all__ = ["SqlStore"]


class _SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class SqlStore:
    """Base of the SQL adapters: holds the engine and the clock used for ``created_at``."""

    def __init__(self, engine: AsyncEngine, clock: Clock | None = None) -> None:
        self._engine = engine
        self._clock: Clock = clock or _SystemClock()
        dialect = engine.dialect.name
        if dialect not in ("sqlite", "postgresql"):
            raise ValueError(f"unsupported database dialect {dialect!r}")
        self._dialect = dialect

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    def _now(self) -> datetime:
        return self._clock.now()

    def _insert(self, table: Table) -> Any:
        """``INSERT`` with ``ON CONFLICT`` support (both dialects spell it the same way)."""
        if self._dialect == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)
