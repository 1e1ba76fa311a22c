"""Ports: ledger."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Protocol

from meterline.domain.entities import (
    Environment,
    UsageEvent,
    UsageTotals,
    UserKey,
)

__all__ = [
    "DailyRevenue",
    "Ledger",
    "RecordOutcome",
    "RecordStatus",
    "RevenueReport",
    "TopUser",
    "UsageRow",
    "WindowTotals",
]


class RecordStatus(StrEnum):
    RECORDED = "recorded"
    DUPLICATE = "duplicate"
    CONFLICT = "conflict"


@dataclass(frozen=True, slots=True)
class RecordOutcome:
    status: RecordStatus
    #: The stored event: the new one, or for a duplicate/conflict the original.
    event: UsageEvent


@dataclass(frozen=True, slots=True)
class WindowTotals:
    """Ledger sums for one user's current day and month (to seed counters)."""

    day: date
    daily_tokens: int = 0
    monthly_tokens: int = 0
    daily_requests: int = 0
    monthly_requests: int = 0
    daily_cost_nanos: int = 0
    monthly_cost_nanos: int = 0


@dataclass(frozen=True, slots=True)
class UsageRow:
    period: str  # "YYYY-MM-DD" or "YYYY-MM"
    totals: UsageTotals


@dataclass(frozen=True, slots=True)
class DailyRevenue:
    day: date
    totals: UsageTotals


@dataclass(frozen=True, slots=True)
class TopUser:
    end_user_id: str
    totals: UsageTotals


@dataclass(frozen=True, slots=True)
class RevenueReport:
    totals: UsageTotals
    daily: list[DailyRevenue] = field(default_factory=list)
    top_users: list[TopUser] = field(default_factory=list)


class Ledger(Protocol):
    """The append-only usage ledger and its daily rollups."""

    async def record_events(self, events: Sequence[UsageEvent]) -> list[RecordOutcome]:
        """Insert events idempotently on (project, environment, event_id).

        Each new event and its rollup update commit in one transaction; a replay with the
        same fingerprint is DUPLICATE, another fingerprint is CONFLICT; neither changes
        anything. Outcomes are in input order.
        """
        ...

    async def window_totals(self, key: UserKey, day: date) -> WindowTotals: ...
    async def usage(self, key: UserKey, granularity: str, start: date, end: date) -> list[UsageRow]:
        """Per-day or per-month sums for one user over inclusive UTC dates."""
        ...

    async def revenue(
        self, project_id: str, environment: Environment, start: date, end: date, top: int = 10
    ) -> RevenueReport: ...
