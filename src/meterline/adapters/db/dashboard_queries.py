"""``SqlDashboardQueries``: the dashboard's read models, summed from the daily rollups
(the same rows the revenue and usage APIs read, so the numbers agree)."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from meterline.adapters.db import tables as t
from meterline.adapters.db.end_users import _end_user, _like_escape
from meterline.adapters.db.engine import reading
from meterline.adapters.db.rollups import sum_columns, usage_totals
from meterline.domain.entities import Environment, UsageTotals
from meterline.ports import EndUserTable, EndUserUsageRow, ModelUsage

__all__ = ["SqlDashboardQueries"]

_u = t.end_users.c
_r = t.usage_daily_rollups.c
_SORTS = ("id", "tokens", "revenue", "requests")


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
        sort: str = "id",
        offset: int = 0,
        limit: int = 25,
    ) -> EndUserTable:
        if sort not in _SORTS:
            raise ValueError(f"sort must be one of {_SORTS}")
        env = Environment(environment).value
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
        month_start = today.replace(day=1)
        joined = t.end_users.outerjoin(
            t.usage_daily_rollups,
            and_(
                _r.project_id == _u.project_id,
                _r.environment == _u.environment,
                _r.end_user_id == _u.end_user_id,
                _r.day >= month_start,
                _r.day <= today,
            ),
        )
        order: list[Any] = []
        if sort != "id":
            column = {"tokens": _r.total_tokens, "revenue": _r.charge_nanos}.get(sort, _r.requests)
            order.append(func.coalesce(func.sum(column), 0).desc())
        order.append(_u.end_user_id)
        ids_query = (
            select(_u.end_user_id)
            .select_from(joined)
            .where(*filters)
            .group_by(_u.end_user_id)
            .order_by(*order)
            .offset(max(0, offset))
            .limit(max(1, min(limit, 500)))
        )
        count_query = select(func.count()).select_from(t.end_users).where(*filters)
        async with reading(self._engine) as conn:
            total = int((await conn.execute(count_query)).scalar() or 0)
            ids = [r[0] for r in (await conn.execute(ids_query)).all()]
            if not ids:
                return EndUserTable(rows=[], total=total)
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
            month = {
                r["end_user_id"]: usage_totals([r])
                for r in (
                    await conn.execute(
                        sums.where(_r.day >= month_start, _r.day <= today).group_by(_r.end_user_id)
                    )
                )
                .mappings()
                .all()
            }
            day = {
                r["end_user_id"]: usage_totals([r])
                for r in (await conn.execute(sums.where(_r.day == today).group_by(_r.end_user_id)))
                .mappings()
                .all()
            }
        empty = UsageTotals()
        rows = [
            EndUserUsageRow(users[i], day.get(i, empty), month.get(i, empty))
            for i in ids
            if i in users
        ]
        return EndUserTable(rows=rows, total=total)

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
