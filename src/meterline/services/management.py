"""The management API's use cases: plans, end users, billing config, usage, revenue.

Every call is scoped by the caller's key: its project, and for end users, usage and
revenue, its environment. Writes invalidate the local caches they affect.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from meterline.domain.entities import AlertRecord, EndUser, Project, UserKey
from meterline.domain.money import InvalidMoney, parse_money
from meterline.domain.plans import RatePlan
from meterline.ports import (
    Accounts,
    EndUserPage,
    Ledger,
    NotFound,
    PlanInUse,
    RevenueReport,
    UsageRow,
)
from meterline.services.auth import AuthContext, Authenticator
from meterline.services.body_fields import known_fields
from meterline.services.end_users import EndUserDirectory
from meterline.services.errors import Conflict, Invalid, NotFoundError
from meterline.services.plan_input import parse_plan
from meterline.services.plans import PlanResolver

__all__ = ["Management"]

MAX_RANGE_DAYS = 3660
_CURRENCY = frozenset(
    {
        "USD",
        "EUR",
        "GBP",
        "CAD",
        "AUD",
        "JPY",
        "CHF",
        "SEK",
        "NOK",
        "DKK",
        "INR",
        "BRL",
        "MXN",
        "SGD",
        "HKD",
        "NZD",
        "PLN",
        "CZK",
        "KRW",
        "ZAR",
    }
)


def _check_range(start: date, end: date) -> None:
    if end < start:
        raise Invalid("'to' must not be before 'from'", param="to")
    if (end - start).days > MAX_RANGE_DAYS:
        raise Invalid(f"a range spans at most {MAX_RANGE_DAYS} days", param="to")


class Management:
    def __init__(
        self,
        accounts: Accounts,
        ledger: Ledger,
        plans: PlanResolver,
        auth: Authenticator,
        end_users: EndUserDirectory,
    ) -> None:
        self._accounts = accounts
        self._end_users = end_users
        self._ledger = ledger
        self._plans = plans
        self._auth = auth

    # ------------------------------------------------------------ rate plans

    async def list_plans(self, ctx: AuthContext) -> tuple[list[RatePlan], dict[str, int]]:
        plans = await self._accounts.list_plans(ctx.project_id)
        return plans, await self._accounts.plan_user_counts(ctx.project_id, ctx.environment)

    async def get_plan(self, ctx: AuthContext, plan_id: str) -> RatePlan:
        plan = await self._accounts.get_plan(ctx.project_id, plan_id)
        if plan is None:
            raise NotFoundError(f"No rate plan {plan_id!r} in this project.")
        return plan

    async def create_plan(self, ctx: AuthContext, raw: object) -> RatePlan:
        plan = parse_plan(raw)
        if await self._slug_taken(ctx, plan.slug, None):
            raise Conflict(f"A plan with slug {plan.slug!r} exists.", code="slug_taken")
        created = await self._accounts.create_plan(ctx.project_id, plan)
        self._plans.invalidate(ctx.project_id)
        return created

    async def update_plan(self, ctx: AuthContext, plan_id: str, raw: object) -> RatePlan:
        current = await self.get_plan(ctx, plan_id)
        plan = parse_plan(raw, current)
        if plan.slug != current.slug and await self._slug_taken(ctx, plan.slug, plan_id):
            raise Conflict(f"A plan with slug {plan.slug!r} exists.", code="slug_taken")
        if current.is_default and not plan.is_default:
            raise Invalid(
                "A project keeps one default plan: make another plan the default instead.",
                param="is_default",
            )
        updated = await self._accounts.update_plan(ctx.project_id, plan)
        self._plans.invalidate(ctx.project_id)
        return updated

    async def delete_plan(self, ctx: AuthContext, plan_id: str) -> None:
        plan = await self.get_plan(ctx, plan_id)
        if plan.is_default:
            raise Conflict("The default plan can't be deleted.", code="plan_in_use")
        try:
            await self._accounts.delete_plan(ctx.project_id, plan_id)
        except PlanInUse:
            raise Conflict(
                "End users are on this plan: move them to another plan first.",
                code="plan_in_use",
            ) from None
        except NotFound:
            raise NotFoundError(f"No rate plan {plan_id!r} in this project.") from None
        self._plans.invalidate(ctx.project_id)

    async def _slug_taken(self, ctx: AuthContext, slug: str, except_id: str | None) -> bool:
        return any(
            p.slug == slug and p.id != except_id
            for p in await self._accounts.list_plans(ctx.project_id)
        )

    # ------------------------------------------------------------ end users

    async def list_end_users(self, ctx: AuthContext, **filters: Any) -> EndUserPage:
        try:
            return await self._accounts.list_end_users(ctx.project_id, ctx.environment, **filters)
        except ValueError:  # the store's cursor is opaque; a forged one is the client's error
            raise Invalid("cursor is not one this API returned", param="cursor") from None

    async def get_end_user(self, ctx: AuthContext, end_user_id: str) -> EndUser:
        user = await self._accounts.get_end_user(self._key(ctx, end_user_id))
        if user is None:
            raise NotFoundError(f"No end user {end_user_id!r} in this environment.")
        return user

    async def update_end_user(self, ctx: AuthContext, end_user_id: str, raw: object) -> EndUser:
        allowed = {"rate_plan_id", "blocked", "email", "name"}
        raw = known_fields(raw, allowed)
        changes: dict[str, object] = {}
        if "blocked" in raw:
            if not isinstance(raw["blocked"], bool):
                raise Invalid("blocked must be true or false", param="blocked")
            changes["blocked"] = raw["blocked"]
        if "rate_plan_id" in raw:
            plan_id = raw["rate_plan_id"]
            if plan_id is not None:
                if not isinstance(plan_id, str):
                    raise Invalid("rate_plan_id must be a string", param="rate_plan_id")
                if await self._accounts.get_plan(ctx.project_id, plan_id) is None:
                    raise Invalid(f"no rate plan {plan_id!r} in this project", param="rate_plan_id")
            changes["rate_plan_id"] = plan_id
        for name in ("email", "name"):
            if name in raw:
                value = raw[name]
                if value is not None and (not isinstance(value, str) or len(value) > 320):
                    raise Invalid(f"{name} must be a string of at most 320 characters", param=name)
                if name == "email" and value and "@" not in value:
                    raise Invalid("email must be an email address", param="email")
                changes[name] = value
        await self.get_end_user(ctx, end_user_id)
        key = self._key(ctx, end_user_id)
        user = await self._accounts.update_end_user(key, **changes)
        # After the write: a cached copy, or a load that began before it, is dropped.
        await self._end_users.changed(key)
        return user

    async def usage(
        self, ctx: AuthContext, end_user_id: str, granularity: str, start: date, end: date
    ) -> list[UsageRow]:
        if granularity not in ("day", "month"):
            raise Invalid("granularity must be 'day' or 'month'", param="granularity")
        _check_range(start, end)
        await self.get_end_user(ctx, end_user_id)
        return await self._ledger.usage(self._key(ctx, end_user_id), granularity, start, end)

    # ------------------------------------------------------------ config, revenue, alerts

    async def update_config(self, ctx: AuthContext, raw: object) -> Project:
        allowed = {
            "enabled",
            "default_markup_percentage",
            "default_flat_rate_per_request",
            "currency",
        }
        raw = known_fields(raw, allowed)
        changes: dict[str, object] = {}
        if "enabled" in raw:
            if not isinstance(raw["enabled"], bool):
                raise Invalid("enabled must be true or false", param="enabled")
            changes["billing_enabled"] = raw["enabled"]
        for name in ("default_markup_percentage", "default_flat_rate_per_request"):
            if name in raw:
                try:
                    changes[name] = parse_money(raw[name], field=name)
                except InvalidMoney as exc:
                    raise Invalid(str(exc), param=name) from None
        if "currency" in raw:
            currency = raw["currency"]
            if not isinstance(currency, str) or currency.upper() not in _CURRENCY:
                raise Invalid("currency must be an ISO 4217 code we support", param="currency")
            changes["currency"] = currency.upper()
        project = await self._accounts.update_project(ctx.project_id, **changes)
        self._auth.invalidate_project(ctx.project_id)
        return project

    async def revenue(
        self, ctx: AuthContext, start: date, end: date, top: int = 10
    ) -> RevenueReport:
        _check_range(start, end)
        return await self._ledger.revenue(ctx.project_id, ctx.environment, start, end, top)

    async def alerts(self, ctx: AuthContext, limit: int = 100) -> list[AlertRecord]:
        return await self._accounts.list_alerts(ctx.project_id, ctx.environment, limit)

    @staticmethod
    def _key(ctx: AuthContext, end_user_id: str) -> UserKey:
        return UserKey(ctx.project_id, ctx.environment, end_user_id)
