"""The dashboard's "over limit" rule, in SQL that reads the same on SQLite and PostgreSQL.

A user is over limit when its effective plan (its own ``rate_plan_id`` when that plan
belongs to the project, else the project's default plan; plans are per project, shared
by both environments) has any daily/monthly token, request or provider-cost limit that
today's or this month's rollup sums have reached (``used >= limit``, the admission rule
of :func:`meterline.domain.limits.exceeded_limits`). Cost caps count provider cost, not
charge. A user with no plan at all is never over. Every term is a plain TRUE/FALSE (no
NULL), so ``NOT over`` is exactly the complement.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.sql import ColumnElement, FromClause
from sqlalchemy.sql.selectable import Subquery

from meterline.adapters.db import tables as t

__all__ = ["over_any_limit", "window_usage", "with_effective_plan"]

_u = t.end_users.c
_r = t.usage_daily_rollups.c
_p = t.rate_plans.c

#: (plan limit column, window_usage column): the six limits the filter checks.
_LIMITS = (
    ("daily_token_limit", "day_tokens"),
    ("monthly_token_limit", "month_tokens"),
    ("daily_request_limit", "day_requests"),
    ("monthly_request_limit", "month_requests"),
    ("daily_cost_limit_nanos", "day_cost"),
    ("monthly_cost_limit_nanos", "month_cost"),
)


def window_usage(project_id: str, environment: str, today: date) -> Subquery:
    """One row per end user with usage this month (month start to ``today``, UTC days):
    the month's and today's tokens, requests and provider cost, and the month's charge."""

    def on_day(column: Any) -> Any:
        return func.sum(case((_r.day == today, column), else_=0))

    return (
        select(
            _r.end_user_id.label("end_user_id"),
            func.sum(_r.total_tokens).label("month_tokens"),
            func.sum(_r.requests).label("month_requests"),
            func.sum(_r.provider_cost_nanos).label("month_cost"),
            func.sum(_r.charge_nanos).label("month_charge"),
            on_day(_r.total_tokens).label("day_tokens"),
            on_day(_r.requests).label("day_requests"),
            on_day(_r.provider_cost_nanos).label("day_cost"),
        )
        .where(
            _r.project_id == project_id,
            _r.environment == environment,
            _r.day >= today.replace(day=1),
            _r.day <= today,
        )
        .group_by(_r.end_user_id)
        .subquery("window_usage")
    )


def with_effective_plan(source: FromClause, project_id: str) -> tuple[FromClause, FromClause]:
    """``source`` (which includes ``end_users``) outer-joined to each user's effective plan;
    returns the join and the plan alias (all NULL for a user with no plan)."""
    own = t.rate_plans.alias("own_plan")
    plan = t.rate_plans.alias("effective_plan")
    default_id = (
        select(_p.id)
        .where(_p.project_id == project_id, _p.is_default.is_(True))
        .order_by(_p.created_at, _p.id)
        .limit(1)
        .scalar_subquery()
    )
    joined = source.outerjoin(
        own, and_(own.c.id == _u.rate_plan_id, own.c.project_id == _u.project_id)
    ).outerjoin(plan, plan.c.id == func.coalesce(own.c.id, default_id))
    return joined, plan


def over_any_limit(usage: Subquery, plan: FromClause) -> ColumnElement[bool]:
    """TRUE when any non-NULL limit of ``plan`` is reached by ``usage``; never NULL."""
    return or_(
        *(
            and_(
                plan.c[limit].is_not(None),
                func.coalesce(usage.c[used], 0) >= plan.c[limit],
            )
            for limit, used in _LIMITS
        )
    )
