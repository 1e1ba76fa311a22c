"""Rate plans: CRUD, the single default per project, and user counts per plan."""

from __future__ import annotations

import dataclasses
from typing import Any

from sqlalchemy import delete, exists, func, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from meterline.adapters.db import tables as t
from meterline.adapters.db._base import SqlStore
from meterline.adapters.db.engine import reading, writing
from meterline.domain.entities import Environment
from meterline.domain.money import from_nanos, to_nanos
from meterline.domain.plans import Limits, OverageAction, RatePlan
from meterline.ports import NotFound, PlanInUse

__all__ = ["PlanStore"]

_p = t.rate_plans.c


def _nanos_or_none(value: Any) -> int | None:
    return None if value is None else to_nanos(value)


def _dollars_or_none(value: int | None) -> Any:
    return None if value is None else from_nanos(value)


def _plan_values(plan: RatePlan) -> dict[str, Any]:
    limits = plan.limits
    return {
        "name": plan.name,
        "slug": plan.slug,
        "is_default": plan.is_default,
        "overage_action": OverageAction(plan.overage_action).value,
        "daily_token_limit": limits.daily_token_limit,
        "monthly_token_limit": limits.monthly_token_limit,
        "daily_request_limit": limits.daily_request_limit,
        "monthly_request_limit": limits.monthly_request_limit,
        "requests_per_minute": limits.requests_per_minute,
        "daily_cost_limit_nanos": _nanos_or_none(limits.daily_cost_limit_usd),
        "monthly_cost_limit_nanos": _nanos_or_none(limits.monthly_cost_limit_usd),
        "markup_percentage": plan.markup_percentage,
        "flat_rate_nanos": _nanos_or_none(plan.flat_rate_per_request),
        "allowed_models": list(plan.allowed_models),
    }


def _plan(row: RowMapping) -> RatePlan:
    return RatePlan(
        id=row["id"],
        name=row["name"],
        slug=row["slug"],
        is_default=row["is_default"],
        overage_action=OverageAction(row["overage_action"]),
        limits=Limits(
            daily_token_limit=row["daily_token_limit"],
            monthly_token_limit=row["monthly_token_limit"],
            daily_request_limit=row["daily_request_limit"],
            monthly_request_limit=row["monthly_request_limit"],
            requests_per_minute=row["requests_per_minute"],
            daily_cost_limit_usd=_dollars_or_none(row["daily_cost_limit_nanos"]),
            monthly_cost_limit_usd=_dollars_or_none(row["monthly_cost_limit_nanos"]),
        ),
        markup_percentage=row["markup_percentage"],
        flat_rate_per_request=_dollars_or_none(row["flat_rate_nanos"]),
        allowed_models=tuple(row["allowed_models"] or ()),
    )


class PlanStore(SqlStore):
    async def list_plans(self, project_id: str) -> list[RatePlan]:
        query = (
            select(t.rate_plans).where(_p.project_id == project_id).order_by(_p.created_at, _p.id)
        )
        async with reading(self._engine) as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [_plan(r) for r in rows]

    async def get_plan(self, project_id: str, plan_id: str) -> RatePlan | None:
        query = select(t.rate_plans).where(_p.project_id == project_id, _p.id == plan_id)
        async with reading(self._engine) as conn:
            row = (await conn.execute(query)).mappings().first()
        return _plan(row) if row else None

    async def default_plan(self, project_id: str) -> RatePlan | None:
        query = (
            select(t.rate_plans)
            .where(_p.project_id == project_id, _p.is_default.is_(True))
            .order_by(_p.created_at, _p.id)
            .limit(1)
        )
        async with reading(self._engine) as conn:
            row = (await conn.execute(query)).mappings().first()
        return _plan(row) if row else None

    async def _unset_default(self, conn: AsyncConnection, project_id: str, keep: str) -> None:
        # Lock the project row first (PostgreSQL; SQLite's BEGIN IMMEDIATE already
        # serializes writers) so two concurrent "make default" calls cannot both win.
        await conn.execute(
            select(t.projects.c.id).where(t.projects.c.id == project_id).with_for_update()
        )
        await conn.execute(
            update(t.rate_plans)
            .where(_p.project_id == project_id, _p.is_default.is_(True), _p.id != keep)
            .values(is_default=False)
        )

    async def create_plan(self, project_id: str, plan: RatePlan) -> RatePlan:
        """Stores ``plan`` under a new id; ``is_default`` unsets the previous default in the
        same transaction, so readers never see two defaults (or none in between)."""
        stored = dataclasses.replace(plan, id=t.new_id("plan"))
        async with writing(self._engine) as conn:
            if stored.is_default:
                await self._unset_default(conn, project_id, stored.id)
            await conn.execute(
                t.rate_plans.insert().values(
                    id=stored.id,
                    project_id=project_id,
                    created_at=self._now(),
                    **_plan_values(stored),
                )
            )
        return stored

    async def update_plan(self, project_id: str, plan: RatePlan) -> RatePlan:
        """Replaces every field of the plan ``plan.id``; raises :class:`NotFound`."""
        async with writing(self._engine) as conn:
            result = await conn.execute(
                update(t.rate_plans)
                .where(_p.project_id == project_id, _p.id == plan.id)
                .values(**_plan_values(plan))
            )
            if result.rowcount == 0:
                raise NotFound(f"rate plan {plan.id} not found")
            if plan.is_default:
                await self._unset_default(conn, project_id, plan.id)
            row = (
                (await conn.execute(select(t.rate_plans).where(_p.id == plan.id))).mappings().one()
            )
        return _plan(row)

    async def delete_plan(self, project_id: str, plan_id: str) -> None:
        """Raises :class:`PlanInUse` while any end user (any environment) is on the plan."""
        async with writing(self._engine) as conn:
            found = (
                await conn.execute(
                    select(_p.id).where(_p.project_id == project_id, _p.id == plan_id)
                )
            ).first()
            if found is None:
                raise NotFound(f"rate plan {plan_id} not found")
            in_use = (
                await conn.execute(select(exists().where(t.end_users.c.rate_plan_id == plan_id)))
            ).scalar()
            if in_use:
                raise PlanInUse(f"rate plan {plan_id} still has end users")
            await conn.execute(delete(t.rate_plans).where(_p.id == plan_id))

    async def plan_user_counts(self, project_id: str, environment: Environment) -> dict[str, int]:
        u = t.end_users.c
        query = (
            select(u.rate_plan_id, func.count())
            .where(
                u.project_id == project_id,
                u.environment == Environment(environment).value,
                u.rate_plan_id.is_not(None),
            )
            .group_by(u.rate_plan_id)
        )
        async with reading(self._engine) as conn:
            rows = (await conn.execute(query)).all()
        return {plan_id: int(count) for plan_id, count in rows}
