"""Reads served by the coarse daily rollups (see ``coarse_rollups``).

* Per day sums for one end user (``usage_user_daily``): the usage page and the
  counters' seed, one row per day instead of one per model and provider.
* The revenue report: totals and the daily series from ``usage_project_daily`` (one row
  per day), the top end users ranked from ``usage_user_daily``. Ranking sums one
  column; the full sums are then read for the winners only.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import and_, func, select
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine

from meterline.adapters.db import tables as t
from meterline.adapters.db.engine import reading, run_read
from meterline.adapters.db.rollups import sum_columns, usage_totals
from meterline.domain.entities import Environment, UserKey
from meterline.ports import DailyRevenue, RevenueReport, TopUser

__all__ = ["revenue_report", "user_daily"]

_u = t.usage_user_daily.c
_p = t.usage_project_daily.c


async def user_daily(
    engine: AsyncEngine, key: UserKey, start: date, end_exclusive: date
) -> list[tuple[date, RowMapping]]:
    """(day, sums) for each day of [start, end_exclusive) with usage, in day order."""
    query = (
        select(_u.day, *sum_columns(t.usage_user_daily))
        .where(
            _u.project_id == key.project_id,
            _u.environment == Environment(key.environment).value,
            _u.end_user_id == key.end_user_id,
            _u.day >= start,
            _u.day < end_exclusive,
        )
        .group_by(_u.day)
        .order_by(_u.day)
    )
    rows = await run_read(engine, lambda conn: conn.execute(query).mappings().all())
    return [(row["day"], row) for row in rows]


async def revenue_report(
    engine: AsyncEngine,
    project_id: str,
    environment: Environment,
    start: date,
    end: date,
    top: int = 10,
) -> RevenueReport:
    """Totals, a daily series (days with usage only) and the top end users by charge
    over inclusive dates. Project-level usage (no end user) counts in the totals."""
    env = Environment(environment).value
    daily_query = (
        select(_p.day, *sum_columns(t.usage_project_daily))
        .where(_p.project_id == project_id, _p.environment == env, _p.day >= start, _p.day <= end)
        .group_by(_p.day)
        .order_by(_p.day)
    )
    window = and_(
        _u.project_id == project_id,
        _u.environment == env,
        _u.day >= start,
        _u.day <= end,
        _u.end_user_id != "",
    )
    charge = func.coalesce(func.sum(_u.charge_nanos), 0)
    ranking = (
        select(_u.end_user_id)
        .where(window)
        .group_by(_u.end_user_id)
        .order_by(charge.desc(), _u.end_user_id)
        .limit(top)
    )
    async with reading(engine) as conn:
        daily = (await conn.execute(daily_query)).mappings().all()
        winners = [row[0] for row in (await conn.execute(ranking)).all()]
        top_rows: dict[str, RowMapping] = {}
        if winners:
            sums = (
                select(_u.end_user_id, *sum_columns(t.usage_user_daily))
                .where(window, _u.end_user_id.in_(winners))
                .group_by(_u.end_user_id)
            )
            top_rows = {row["end_user_id"]: row for row in (await conn.execute(sums)).mappings()}
    return RevenueReport(
        totals=usage_totals(daily),
        daily=[DailyRevenue(day=row["day"], totals=usage_totals([row])) for row in daily],
        top_users=[
            TopUser(end_user_id=user, totals=usage_totals([top_rows[user]])) for user in winners
        ],
    )
