"""``SqlDashboardQueries``: the dashboard's read models, summed from the daily rollups
(the same rows the revenue and usage APIs read, so the numbers agree)."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import func, not_, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from meterline.adapters.db import tables as t
from meterline.adapters.db.end_users import _end_user, _like_escape
from meterline.adapters.db.engine import reading
from meterline.adapters.db.over_limit import over_any_limit, window_usage, with_effective_plan
from meterline.adapters.db.rollups import sum_columns, usage_totals
from meterline.domain.entities import Environment, UsageTotals
from meterline.ports import EndUserTable, EndUserUsageRow, ModelUsage

__all__ = ["SqlDashboardQueries"]

_u = t.end_users.c
_r = t.usage_daily_rollups.c
_SORTS = ("id", "tokens", "revenue", "requests")
_SORT_COLUMNS = {"tokens": "month_tokens", "revenue": "month_charge", "requests": "month_requests"}


def _user_filters(
    project_id: str,
    env: str,
    search: str | None,
    rate_plan_id: str | None,
    blocked: bool | None,
) -> list[Any]:
    filters: list[Any] = [_u.project_id == project_id, _u.environment == env]
    if search:
        pattern = f"%{_like_escape(search.lower())}%"
        filters.append(
            or_(
                *(
                    func.lower(col).like(pattern, escape="\\")
                    for col in (_u.end_user_id, _u.email, _u.name)
                )
            )
        )
    if rate_plan_id is not None:
        filters.append(_u.rate_plan_id == rate_plan_id)
    if blocked is not None:
        filters.append(_u.blocked.is_(blocked))
    return filters


class SqlDashboardQueries:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

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
        """One page of end users and its ``total``. ``over_limit`` keeps only the users
        whose effective plan has a limit reached (``True``) or none (``False``); see
        :mod:`meterline.adapters.db.over_limit`."""
        if sort not in _SORTS:
            raise ValueError(f"sort must be one of {_SORTS}")
        env = Environment(environment).value
        filters = _user_filters(project_id, env, search, rate_plan_id, blocked)
        usage = window_usage(project_id, env, today)
        source: Any = t.end_users.outerjoin(usage, usage.c.end_user_id == _u.end_user_id)
        count_from: Any = t.end_users
        if over_limit is not None:
            source, plan = with_effective_plan(source, project_id)
            over = over_any_limit(usage, plan)
            filters.append(over if over_limit else not_(over))
            count_from = source
        order: list[Any] = []
        if sort != "id":
            order.append(func.coalesce(usage.c[_SORT_COLUMNS[sort]], 0).desc())
        order.append(_u.end_user_id)
        ids_query = (
            select(_u.end_user_id)
            .select_from(source)
            .where(*filters)
            .order_by(*order)
            .offset(max(0, offset))
            .limit(max(1, min(limit, 500)))
        )
        count_query = select(func.count()).select_from(count_from).where(*filters)
        async with reading(self._engine) as conn:
            total = int((await conn.execute(count_query)).scalar() or 0)
            ids = [r[0] for r in (await conn.execute(ids_query)).all()]
            if not ids:
                return EndUserTable(rows=[], total=total)
            rows = await self._rows(conn, project_id, env, today, ids)
        return EndUserTable(rows=rows, total=total)

    async def _rows(
        self, conn: AsyncConnection, project_id: str, env: str, today: date, ids: list[str]
    ) -> list[EndUserUsageRow]:
        """The users ``ids`` (in that order) with their today and month sums."""
        users = {
            r["end_user_id"]: _end_user(r)
            for r in (
                await conn.execute(
                    select(t.end_users).where(
                        _u.project_id == project_id,
                        _u.environment == env,
                        _u.end_user_id.in_(ids),
                    )
                )
            )
            .mappings()
            .all()
        }
        sums = select(_r.end_user_id, *sum_columns()).where(
            _r.project_id == project_id, _r.environment == env, _r.end_user_id.in_(ids)
        )
        month_query = sums.where(_r.day >= today.replace(day=1), _r.day <= today)
        month = await self._totals(conn, month_query)
        day = await self._totals(conn, sums.where(_r.day == today))
        empty = UsageTotals()
        return [
            EndUserUsageRow(users[i], day.get(i, empty), month.get(i, empty))
            for i in ids
            if i in users
        ]

    @staticmethod
    async def _totals(conn: AsyncConnection, query: Any) -> dict[str, UsageTotals]:
        result = await conn.execute(query.group_by(_r.end_user_id))
        return {r["end_user_id"]: usage_totals([r]) for r in result.mappings().all()}

    async def usage_by_model(
        self,
        project_id: str,
        environment: Environment,
        start: date,
        end: date,
        end_user_id: str | None = None,
        limit: int = 20,
    ) -> list[ModelUsage]:
        where: list[Any] = [
            _r.project_id == project_id,
            _r.environment == Environment(environment).value,
            _r.day >= start,
            _r.day <= end,
        ]
        if end_user_id is not None:
            where.append(_r.end_user_id == end_user_id)
        charge = func.coalesce(func.sum(_r.charge_nanos), 0)
        query = (
            select(_r.model, _r.provider, *sum_columns())
            .where(*where)
            .group_by(_r.model, _r.provider)
            .order_by(charge.desc(), _r.model, _r.provider)
            .limit(limit)
        )
        async with reading(self._engine) as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [ModelUsage(r["model"], r["provider"], usage_totals([r])) for r in rows]
