"""Ports: dashboard (admins, read models)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol

from meterline.domain.entities import (
    EndUser,
    Environment,
    Project,
    UsageTotals,
)

__all__ = [
    "AdminAccounts",
    "AdminUser",
    "ApiKeyInfo",
    "DashboardQueries",
    "EndUserTable",
    "EndUserUsageRow",
    "ModelUsage",
]


@dataclass(frozen=True, slots=True)
class AdminUser:
    """A person who signs in to the dashboard; belongs to one organization."""

    id: str
    organization_id: str
    email: str
    password_hash: str


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    """What the dashboard may show of a key: never the key, only its display prefix."""

    id: str
    environment: Environment
    prefix: str
    revoked: bool
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ModelUsage:
    model: str
    provider: str
    totals: UsageTotals


@dataclass(frozen=True, slots=True)
class EndUserUsageRow:
    """One row of the dashboard's end-user table: the user and its today/month sums."""

    user: EndUser
    today: UsageTotals
    month: UsageTotals


@dataclass(frozen=True, slots=True)
class EndUserTable:
    rows: list[EndUserUsageRow]
    total: int


class AdminAccounts(Protocol):
    """Dashboard sign-in and the organization's projects and keys."""

    async def admin_by_email(self, email: str) -> AdminUser | None: ...
    async def create_admin_user(
        self, organization_id: str, email: str, password_hash: str
    ) -> str: ...
    async def list_projects(self, organization_id: str) -> list[Project]: ...
    async def list_api_keys(self, project_id: str) -> list[ApiKeyInfo]: ...


class DashboardQueries(Protocol):
    """Read-only sums from the daily rollups, shaped for the dashboard's tables."""

    async def end_user_table(
        self,
        project_id: str,
        environment: Environment,
        *,
        today: date,
        search: str | None = None,
        rate_plan_id: str | None = None,
        blocked: bool | None = None,
        over_limit: bool | None = None,
        sort: str = "id",
        offset: int = 0,
        limit: int = 25,
    ) -> EndUserTable:
        """``sort``: ``id``, ``tokens`` or ``revenue`` (this month, descending)."""
        ...

    async def usage_by_model(
        self,
        project_id: str,
        environment: Environment,
        start: date,
        end: date,
        end_user_id: str | None = None,
        limit: int = 20,
    ) -> list[ModelUsage]:
        """Sums per (model, provider) over inclusive dates, by charge descending."""
        ...
