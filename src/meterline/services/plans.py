"""Which plan applies to an end user, and what it charges."""

from __future__ import annotations

from meterline.domain.entities import EndUser, Project
from meterline.domain.plans import RatePlan
from meterline.domain.pricing import Pricing, effective_pricing
from meterline.ports import Accounts
from meterline.services.cache import SHORT_CACHE_REFRESH_AHEAD, TTLCache

__all__ = ["UNLIMITED", "PlanResolver", "pricing_for"]

#: Applies when a project has no plans at all: meter everything, limit nothing.
UNLIMITED = RatePlan(id="", name="Unlimited", slug="unlimited")


class PlanResolver:
    """Plans change rarely and are read on every request: a short TTL cache per project,
    invalidated locally on every write through the management service."""

    def __init__(self, accounts: Accounts, *, cache_ttl_seconds: float) -> None:
        self._accounts = accounts
        self._plans: TTLCache[dict[str, RatePlan]] = TTLCache(
            cache_ttl_seconds, refresh_ahead=SHORT_CACHE_REFRESH_AHEAD
        )

    async def plans(self, project_id: str) -> dict[str, RatePlan]:
        async def load() -> dict[str, RatePlan]:
            return {p.id: p for p in await self._accounts.list_plans(project_id)}

        return await self._plans.get_or_load(project_id, load)

    async def default_plan(self, project_id: str) -> RatePlan | None:
        for plan in (await self.plans(project_id)).values():
            if plan.is_default:
                return plan
        return None

    async def plan_for(self, user: EndUser | None, project_id: str) -> RatePlan:
        plans = await self.plans(project_id)
        if user is not None and user.rate_plan_id and user.rate_plan_id in plans:
            return plans[user.rate_plan_id]
        return await self.default_plan(project_id) or UNLIMITED

    def invalidate(self, project_id: str) -> None:
        self._plans.invalidate(project_id)


def pricing_for(project: Project, plan: RatePlan) -> Pricing:
    return effective_pricing(
        Pricing(project.default_markup_percentage, project.default_flat_rate_per_request),
        plan.markup_percentage,
        plan.flat_rate_per_request,
    )
