"""``SqlLedger``: the append-only usage ledger and its daily rollups.

Each batch is written as one unit: events go in with ``INSERT … ON CONFLICT DO NOTHING``
(the unique index on (project, environment, event_id) is the idempotency guard), and the
rollup deltas of the rows that were actually inserted are added in the same unit, so a
rollup always equals the sum of its events. On SQLite that unit is one transaction in the
writer thread; on PostgreSQL it is one statement (``pg_ledger_write``). Rows are written
in sorted key order (events, then rollups) so concurrent batches on PostgreSQL take
their row locks in one global order and cannot deadlock.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection, RowMapping

from meterline.adapters.db import tables as t
from meterline.adapters.db._base import SqlStore
from meterline.adapters.db.coarse_rollups import CoarseRollups
from meterline.adapters.db.daily_reads import revenue_report, user_daily
from meterline.adapters.db.driver_statements import DriverStatement, dbapi_cursor
from meterline.adapters.db.engine import run_write
from meterline.adapters.db.ledger_rows import (
    EventRow,
    add_row_delta,
    event_rows,
    new_event_ids,
)
from meterline.adapters.db.pg_json_rows import json_rows
from meterline.adapters.db.pg_ledger_write import ledger_write
from meterline.adapters.db.rollups import (
    ROLLUP_KEY,
    RollupKey,
    RollupUpsert,
    month_bounds,
    sum_rows,
    usage_totals,
)
from meterline.domain.entities import Environment, UsageEvent, UserKey
from meterline.domain.money import from_nanos
from meterline.domain.windows import month_key
from meterline.ports import (
    RecordOutcome,
    RecordStatus,
    RevenueReport,
    UsageRow,
    WindowTotals,
)

__all__ = ["SqlLedger"]

_e = t.usage_events.c
#: Event ids per ``IN (…)`` of a read-back: far below both backends' bind-parameter
#: limits (32,766 on SQLite, 32,767 on asyncpg).
_CHUNK = 500
#: Every column: a row (``ledger_rows.event_rows``) names each of them.
_EVENT_COLUMNS = tuple(t.usage_events.c.keys())

EventKey = tuple[str, str, str]


def _dollars(nanos: int | None) -> Any:
    return None if nanos is None else from_nanos(nanos)


def _event(row: RowMapping) -> UsageEvent:
    return UsageEvent(
        project_id=row["project_id"],
        environment=Environment(row["environment"]),
        event_id=row["event_id"],
        end_user_id=row["end_user_id"],
        timestamp=row["timestamp"],
        model=row["model"],
        provider=row["provider"],
        prompt_tokens=row["prompt_tokens"],
        completion_tokens=row["completion_tokens"],
        total_tokens=row["total_tokens"],
        cached_tokens=row["cached_tokens"],
        priced=row["priced"],
        estimated=row["estimated"],
        provider_cost=_dollars(row["provider_cost_nanos"]),
        markup=_dollars(row["markup_nanos"]),
        charge=_dollars(row["charge_nanos"]),
        flat_fee=_dollars(row["flat_fee_nanos"]),
        latency_ms=row["latency_ms"],
        status=row["status"],
        metadata=dict(row["metadata"] or {}),
        reservation_id=row["reservation_id"],
        fingerprint=row["fingerprint"],
        source=row["source"],
        recorded_at=row["recorded_at"],
    )


def _chunks(items: list[Any], size: int = _CHUNK) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class _Statements:
    """The write statements of every batch, built once per ledger.

    SQLite: the statements compiled once and run on the DBAPI cursor
    (``driver_statements``) in one transaction: the gateway writes one event per call,
    and SQLAlchemy's per-execution work cost more than SQLite's. PostgreSQL: the events
    and their rollups as one statement, with the batch's rows as one JSON parameter
    (``pg_ledger_write``), committed on its own (autocommit).
    """

    def __init__(self, store: SqlStore) -> None:
        self.postgres = store._dialect == "postgresql"
        if self.postgres:
            self.pg_write = ledger_write(_EVENT_COLUMNS)
            # One statement commits as one unit: no BEGIN and COMMIT round trips.
            self.autocommit = store.engine.execution_options(isolation_level="AUTOCOMMIT")
            return
        self.rollups = RollupUpsert(store, t.usage_daily_rollups, ROLLUP_KEY)
        self.coarse = CoarseRollups(store)
        insert_events = (
            store._insert(t.usage_events)
            .on_conflict_do_nothing(index_elements=list(t.USAGE_EVENT_KEY))
            .returning(_e.project_id, _e.environment, _e.event_id)
        )
        self.driver_events = DriverStatement(insert_events, store.engine.dialect, _EVENT_COLUMNS)


class SqlLedger(SqlStore):
    """``SqlLedger(engine, clock=None)``; the clock stamps ``recorded_at``."""

    @functools.cached_property
    def _statements(self) -> _Statements:
        return _Statements(self)

    async def record_events(self, events: Sequence[UsageEvent]) -> list[RecordOutcome]:
        """Idempotent on (project, environment, event_id); outcomes in input order.

        A repeated id inside one batch is judged against its first occurrence (or the row
        already stored), exactly as if it had arrived in a later call.
        """
        stored, rows = event_rows(events, new_event_ids(len(events)), self._now())
        keys: list[EventKey] = [
            (row["project_id"], row["environment"], row["event_id"]) for row in rows
        ]
        first: dict[EventKey, int] = {}
        for index in sorted(range(len(stored)), key=keys.__getitem__):
            first.setdefault(keys[index], index)
        candidates = sorted(first.items())  # (key, index) in lock order
        if self._statements.postgres:
            inserted, existing = await self._write_postgres(rows, candidates)
        else:
            inserted, existing = await run_write(
                self._engine, functools.partial(self._write, rows, candidates)
            )
        outcomes: dict[EventKey, RecordOutcome] = {
            key: RecordOutcome(RecordStatus.RECORDED, stored[first[key]]) for key in inserted
        }
        for key, event in existing.items():
            same = event.fingerprint == stored[first[key]].fingerprint
            status = RecordStatus.DUPLICATE if same else RecordStatus.CONFLICT
            outcomes[key] = RecordOutcome(status, event)
        result: list[RecordOutcome] = []
        for index, key in enumerate(keys):
            outcome = outcomes[key]
            if first[key] != index:  # a repeat inside this batch
                same = outcome.event.fingerprint == stored[index].fingerprint
                status = RecordStatus.DUPLICATE if same else RecordStatus.CONFLICT
                outcome = RecordOutcome(status, outcome.event)
            result.append(outcome)
        return result

    def _write(
        self,
        rows: list[EventRow],
        candidates: list[tuple[EventKey, int]],
        conn: Connection,
    ) -> tuple[set[EventKey], dict[EventKey, UsageEvent]]:
        """SQLite's transaction of one batch (synchronous: see ``engine.run_write``):
        insert the candidates, add the rollups of those inserted, and read back the rows
        that were already there. Returns (inserted keys, existing rows by key)."""
        ordered = [rows[i] for _, i in candidates]
        returned = self._statements.driver_events.execute_each(dbapi_cursor(conn), ordered)
        inserted = {(r[0], r[1], r[2]) for r in returned}
        deltas: dict[RollupKey, list[int]] = {}
        for key, index in candidates:
            if key in inserted:
                add_row_delta(deltas, rows[index])
        missing = [key for key, _ in candidates if key not in inserted]
        existing = self._fetch(conn, missing) if missing else {}
        if deltas:
            self._statements.rollups.write(conn, deltas)
            self._statements.coarse.write(conn, deltas)
        return inserted, existing

    async def _write_postgres(
        self, rows: list[EventRow], candidates: list[tuple[EventKey, int]]
    ) -> tuple[set[EventKey], dict[EventKey, UsageEvent]]:
        """PostgreSQL's write of one batch: one statement (see ``pg_ledger_write``), then
        a read of the rows that were already there. That read needs no shared
        transaction: rows are never deleted."""
        ordered = json_rows([rows[i] for _, i in candidates])
        async with self._statements.autocommit.connect() as conn:
            result = await conn.execute(self._statements.pg_write, ordered)
            inserted = {(r[0], r[1], r[2]) for r in result.all()}
            missing = [key for key, _ in candidates if key not in inserted]
            existing = await conn.run_sync(self._fetch, missing) if missing else {}
        return inserted, existing

    @staticmethod
    def _fetch(conn: Connection, keys: list[EventKey]) -> dict[EventKey, UsageEvent]:
        by_scope: dict[tuple[str, str], list[str]] = {}
        for project_id, env, event_id in keys:
            by_scope.setdefault((project_id, env), []).append(event_id)
        found: dict[EventKey, UsageEvent] = {}
        for (project_id, env), ids in by_scope.items():
            for chunk in _chunks(ids):
                query = select(t.usage_events).where(
                    _e.project_id == project_id, _e.environment == env, _e.event_id.in_(chunk)
                )
                for row in conn.execute(query).mappings():
                    found[(project_id, env, row["event_id"])] = _event(row)
        absent = set(keys) - set(found)
        if absent:  # rows are never deleted, so a conflicting insert means the row exists
            raise RuntimeError(f"usage events vanished during insert: {sorted(absent)[:3]}")
        return found

    async def window_totals(self, key: UserKey, day: date) -> WindowTotals:
        """Sums for ``day`` and for its calendar month, to seed the counters."""
        first, next_first = month_bounds(day)
        daily = await user_daily(self._engine, key, first, next_first)
        month = sum_rows(row for _, row in daily)
        today = sum_rows(row for d, row in daily if d == day)
        return WindowTotals(
            day=day,
            daily_tokens=today["total_tokens"],
            monthly_tokens=month["total_tokens"],
            daily_requests=today["requests"],
            monthly_requests=month["requests"],
            daily_cost_nanos=today["provider_cost_nanos"],
            monthly_cost_nanos=month["provider_cost_nanos"],
        )

    async def usage(self, key: UserKey, granularity: str, start: date, end: date) -> list[UsageRow]:
        """Per-day (``YYYY-MM-DD``) or per-month (``YYYY-MM``) sums over inclusive dates;
        periods without usage are omitted."""
        if granularity not in ("day", "month"):
            raise ValueError("granularity must be 'day' or 'month'")
        daily = await user_daily(self._engine, key, start, end + timedelta(days=1))
        groups: dict[str, list[RowMapping]] = {}
        for day, row in daily:
            period = day.isoformat() if granularity == "day" else month_key(day)
            groups.setdefault(period, []).append(row)
        return [
            UsageRow(period=period, totals=usage_totals(rows))
            for period, rows in sorted(groups.items())
        ]

    async def revenue(
        self, project_id: str, environment: Environment, start: date, end: date, top: int = 10
    ) -> RevenueReport:
        """Totals, a daily series (days with usage only) and the top end users by charge
        over inclusive dates (see ``daily_reads``)."""
        return await revenue_report(self._engine, project_id, environment, start, end, top)
