"""The dashboard's read models and the few actions that have no management-API twin
(API keys). Every rule (plans, end users, config, revenue ranges) stays in
:class:`~meterline.services.management.Management`; this only shapes pages."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta

from meterline.domain.entities import AlertRecord, EndUser, Environment
from meterline.domain.limits import UsageSnapshot, exceeded_limits
from meterline.ports import (
    Accounts,
    AdminAccounts,
    ApiKeyInfo,
    Clock,
    DashboardQueries,
    EndUserTable,
    EndUserUsageRow,
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
from meterline.services.plans import PlanResolver

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
        plans: PlanResolver,
    ) -> None:
        self._management = management
        self._plans = plans
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

    async def limits_reached(self, ctx: AuthContext, table: EndUserTable) -> dict[str, str]:
        """End user id → the limits it has reached, for the rows that are over limit: the
        rule of the ``over_limit`` filter (the effective plan's day/month token, request and
        provider-cost limits, ``used >= limit``), applied to the row's own sums."""
        now = datetime.combine(self.today(), time(), UTC)
        out: dict[str, str] = {}
        for row in table.rows:
            plan = await self._plans.plan_for(row.user, ctx.project_id)
            limits = replace(plan.limits, requests_per_minute=None)  # not a day/month limit
            reached = exceeded_limits(limits, _snapshot(row), now)
            if reached:
                names = (r.value.removesuffix("_exceeded").replace("_", " ") for r, _ in reached)
                out[row.user.end_user_id] = ", ".join(names)
        return out

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


def _snapshot(row: EndUserUsageRow) -> UsageSnapshot:
    return UsageSnapshot(
        daily_tokens=row.today.total_tokens,
        monthly_tokens=row.month.total_tokens,
        daily_requests=row.today.requests,
        monthly_requests=row.month.requests,
        daily_cost=row.today.provider_cost,
        monthly_cost=row.month.provider_cost,
    )
