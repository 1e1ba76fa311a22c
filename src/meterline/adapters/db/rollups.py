"""Daily rollup arithmetic: pending deltas, their upsert, SQL sums, and sums back to
``UsageTotals``.

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
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.sql.elements import Label

from meterline.adapters.db import tables as t
from meterline.adapters.db._base import SqlStore
from meterline.adapters.db.driver_statements import DriverStatement, dbapi_cursor
from meterline.adapters.db.pg_json_rows import json_rows, json_upsert
from meterline.domain.entities import UsageTotals
from meterline.domain.money import from_nanos

__all__ = [
    "ROLLUP_KEY",
    "ROLLUP_SUMS",
    "RollupKey",
    "RollupUpsert",
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


class RollupUpsert:
    """Adds pending deltas to one rollup table's rows (keyed by ``key``), creating the
    missing ones: on PostgreSQL the rows go as one JSON parameter (``pg_json_rows``), on
    SQLite as bound rows. ``conn.execute(upsert.statement, upsert.params(deltas))`` on
    any connection, or :meth:`write` in a synchronous transaction (on SQLite it runs on
    the DBAPI cursor: see ``driver_statements``)."""

    def __init__(self, store: SqlStore, table: Table, key: Sequence[str]) -> None:
        self.key = tuple(key)
        self._as_json = store._dialect == "postgresql"
        self._driver: DriverStatement | None = None
        if self._as_json:
            self.statement: Any = json_upsert(
                table, (*self.key, *ROLLUP_SUMS), conflict=self.key, add=ROLLUP_SUMS
            )
        else:
            stmt = store._insert(table)
            self.statement = stmt.on_conflict_do_update(
                index_elements=list(self.key),
                set_={name: table.c[name] + stmt.excluded[name] for name in ROLLUP_SUMS},
            )
            self._driver = DriverStatement(
                self.statement, store.engine.dialect, (*self.key, *ROLLUP_SUMS)
            )

    def params(self, deltas: Mapping[Any, Sequence[int]]) -> Any:
        """The rows of these deltas, in key order (the lock order)."""
        rows = rollup_rows(self.key, deltas)
        return json_rows(rows) if self._as_json else rows

    def write(self, conn: Connection, deltas: Mapping[Any, Sequence[int]]) -> None:
        """Add these deltas inside ``conn``'s transaction (a synchronous connection)."""
        if self._driver is None:
            conn.execute(self.statement, self.params(deltas))
        else:
            self._driver.execute_many(dbapi_cursor(conn), rollup_rows(self.key, deltas))


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
