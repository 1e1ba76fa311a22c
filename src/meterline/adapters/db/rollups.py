"""Daily rollup arithmetic: one event's delta, SQL sums, and sums back to ``UsageTotals``.

Every sum is an integer: ``SUM(bigint)`` comes back as ``Decimal`` from PostgreSQL
(it is NUMERIC there, so it cannot overflow) and as ``int`` from SQLite; both are
converted with ``int()``, which is exact for integral values. Dollars appear only at
the very end, through :func:`meterline.domain.money.from_nanos`.
"""

from __future__ import annotations

import operator
from collections.abc import Hashable, Iterable, Mapping, Sequence
from datetime import date
from typing import Any, TypeVar

from sqlalchemy import Table, func
from sqlalchemy.engine import RowMapping
from sqlalchemy.sql.elements import Label

from meterline.adapters.db import tables as t
from meterline.domain.entities import UsageEvent, UsageTotals
from meterline.domain.money import from_nanos, to_nanos
from meterline.domain.windows import as_utc

__all__ = [
    "ROLLUP_KEY",
    "ROLLUP_SUMS",
    "RollupKey",
    "add_delta",
    "fold_delta",
    "month_bounds",
    "rollup_rows",
    "sum_columns",
    "sum_rows",
    "usage_totals",
]

#: The key columns of ``usage_daily_rollups`` (its primary key), in order.
ROLLUP_KEY = ("project_id", "environment", "end_user_id", "model", "provider", "day")

#: The additive columns of the rollup tables, in a fixed order.
ROLLUP_SUMS = t.ROLLUP_SUM_COLUMNS

K = TypeVar("K", bound=Hashable)

#: (project_id, environment, end_user_id, model, provider, day); '' for an absent part.
RollupKey = tuple[str, str, str, str, str, date]


def _nanos(value: Any) -> int:
    return 0 if value is None else to_nanos(value)


def add_delta(deltas: dict[RollupKey, list[int]], ev: UsageEvent) -> None:
    """Fold one recorded event into the pending rollup deltas of its batch."""
    key: RollupKey = (
        ev.project_id,
        ev.environment.value,
        ev.end_user_id or "",
        ev.model or "",
        ev.provider or "",
        as_utc(ev.timestamp).date(),
    )
    delta = (
        1,
        ev.prompt_tokens,
        ev.completion_tokens,
        ev.total_tokens,
        _nanos(ev.provider_cost),
        _nanos(ev.markup),
        _nanos(ev.charge),
        0 if ev.priced else 1,
    )
    fold_delta(deltas, key, delta)


def fold_delta(deltas: dict[K, list[int]], key: K, delta: Sequence[int]) -> None:
    """Add ``delta`` (sums in ``ROLLUP_SUMS`` order) to ``key``'s pending sums."""
    acc = deltas.get(key)
    if acc is None:
        deltas[key] = list(delta)
    else:
        acc[:] = map(operator.add, acc, delta)


def rollup_rows(
    key_names: Sequence[str], deltas: Mapping[Any, Sequence[int]]
) -> list[dict[str, Any]]:
    """Pending deltas as rows to upsert, by column name, in key order (lock order)."""
    columns = (*key_names, *ROLLUP_SUMS)
    return [dict(zip(columns, (*key, *sums), strict=True)) for key, sums in sorted(deltas.items())]


def sum_columns(table: Table = t.usage_daily_rollups) -> list[Label[Any]]:
    """``COALESCE(SUM(col), 0) AS col`` for every additive column of a rollup table."""
    return [func.coalesce(func.sum(table.c[name]), 0).label(name) for name in ROLLUP_SUMS]


def sum_rows(rows: Iterable[RowMapping]) -> dict[str, int]:
    """Add up rows of :func:`sum_columns` results as exact Python ints."""
    total = dict.fromkeys(ROLLUP_SUMS, 0)
    for row in rows:
        for name in ROLLUP_SUMS:
            total[name] += int(row[name] or 0)
    return total


def usage_totals(rows: Iterable[RowMapping]) -> UsageTotals:
    s = sum_rows(rows)
    return UsageTotals(
        requests=s["requests"],
        prompt_tokens=s["prompt_tokens"],
        completion_tokens=s["completion_tokens"],
        total_tokens=s["total_tokens"],
        provider_cost=from_nanos(s["provider_cost_nanos"]),
        markup=from_nanos(s["markup_nanos"]),
        charge=from_nanos(s["charge_nanos"]),
        unpriced_requests=s["unpriced_requests"],
    )


def month_bounds(day: date) -> tuple[date, date]:
    """First day of ``day``'s month and first day of the next month."""
    first = day.replace(day=1)
    if first.month == 12:
        return first, date(first.year + 1, 1, 1)
    return first, date(first.year, first.month + 1, 1)
