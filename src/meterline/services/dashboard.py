"""The dashboard's read models and the few actions that have no management-API twin
(API keys). Every rule (plans, end users, config, revenue ranges) stays in
:class:`~meterline.services.management.Management`; this only shapes pages."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from meterline.domain.entities import AlertRecord, EndUser, Environment
from meterline.ports import (
    Accounts,
    AdminAccounts,
    ApiKeyInfo,
    Clock,
    DashboardQueries,
    EndUserTable,
    ModelUsage,
    NotFound,
    RevenueReport,
    UsageRow,
)
from meterline.services.auth import AuthContext, Authenticator
from meterline.services.bootstrap import create_key
from meterline.services.errors import Invalid, NotFoundError
from meterline.services.keys import GeneratedKey
from meterline.services.management import Management

__all__ = ["Dashboard", "EndUserDetail", "RevenueView"]

PAGE_SIZE = 25
SORTS = ("id", "tokens", "revenue", "requests")


@dataclass(frozen=True, slots=True)
class RevenueView:
    start: date
    end: date
    report: RevenueReport
    by_model: list[ModelUsage]
    unpriced_alerts: list[AlertRecord] = field(default_factory=list)
    overage_alerts: list[AlertRecord] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class EndUserDetail:
    user: EndUser
    start: date
    end: date
    daily: list[UsageRow]
    by_model: list[ModelUsage]
    alerts: list[AlertRecord]


class Dashboard:
    def __init__(
        self,
        management: Management,
        accounts: Accounts,
        admins: AdminAccounts,
        queries: DashboardQueries,
        auth: Authenticator,
        clock: Clock,
    ) -> None:
        self._management = management
        self._accounts = accounts
        self._admins = admins
        self._queries = queries
        self._auth = auth
        self._clock = clock

    def today(self) -> date:
        return self._clock.now().date()

    def default_range(self) -> tuple[date, date]:
        """The management API's default: the current UTC month up to today."""
        today = self.today()
        return today.replace(day=1), today

    async def end_users(
        self,
        ctx: AuthContext,
        *,
        search: str | None = None,
        rate_plan_id: str | None = None,
        blocked: bool | None = None,
        over_limit: bool | None = None,
        sort: str = "id",
        page: int = 1,
    ) -> EndUserTable:
        if sort not in SORTS:
            raise Invalid(f"sort must be one of: {', '.join(SORTS)}", param="sort")
        return await self._queries.end_user_table(
            ctx.project_id,
            ctx.environment,
            today=self.today(),
            search=(search or "").strip()[:256] or None,
            rate_plan_id=rate_plan_id or None,
            blocked=blocked,
            over_limit=over_limit,
            sort=sort,
            offset=(max(1, page) - 1) * PAGE_SIZE,
            limit=PAGE_SIZE,
        )

    async def end_user_detail(
        self, ctx: AuthContext, end_user_id: str, days: int = 30
    ) -> EndUserDetail:
        user = await self._management.get_end_user(ctx, end_user_id)
        end = self.today()
        start = end - timedelta(days=days - 1)
        daily = await self._management.usage(ctx, end_user_id, "day", start, end)
        by_model = await self._queries.usage_by_model(
            ctx.project_id, ctx.environment, start, end, end_user_id=end_user_id
        )
        recent = await self._management.alerts(ctx, 1000)
        alerts = [a for a in recent if a.end_user_id == end_user_id]
        return EndUserDetail(user, start, end, daily, by_model, alerts[:50])

    async def revenue(self, ctx: AuthContext, start: date, end: date, top: int = 10) -> RevenueView:
        report = await self._management.revenue(ctx, start, end, top)
        by_model = await self._queries.usage_by_model(
            ctx.project_id, ctx.environment, start, end, limit=top
        )
        alerts = await self._management.alerts(ctx, 200)
        return RevenueView(
            start=start,
            end=end,
            report=report,
            by_model=by_model,
            unpriced_alerts=[a for a in alerts if "unpriced" in a.kind][:20],
            overage_alerts=[a for a in alerts if "unpriced" not in a.kind][:20],
        )

    async def api_keys(self, ctx: AuthContext) -> list[ApiKeyInfo]:
        return await self._admins.list_api_keys(ctx.project_id)

    async def create_api_key(self, ctx: AuthContext, environment: Environment) -> GeneratedKey:
        """The plaintext is returned once, here, and never stored."""
        return await create_key(self._accounts, ctx.project_id, environment)

    async def revoke_api_key(self, ctx: AuthContext, key_id: str) -> None:
        try:
            await self._accounts.revoke_api_key(ctx.project_id, key_id)
        except NotFound:
            raise NotFoundError(f"No API key {key_id!r} in this project.") from None
        self._auth.invalidate_keys()
