"""``SqlLedger``: the append-only usage ledger and its daily rollups.

Each batch is one transaction: events go in with ``INSERT … ON CONFLICT DO NOTHING``
(the unique index on (project, environment, event_id) is the idempotency guard), and the
rollup deltas of the rows that were actually inserted are upserted in the same
transaction, so a rollup always equals the sum of its events. Rows are written in sorted
key order (events, then rollups) so concurrent batches on PostgreSQL take their row locks
in one global order and cannot deadlock.
"""

from __future__ import annotations

import dataclasses
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
from meterline.adapters.db.engine import run_write
from meterline.adapters.db.rollups import (
    ROLLUP_KEY,
    ROLLUP_SUMS,
    RollupKey,
    add_delta,
    month_bounds,
    sum_rows,
    usage_totals,
)
from meterline.domain.entities import Environment, UsageEvent, UserKey
from meterline.domain.money import from_nanos, to_nanos
from meterline.domain.windows import as_utc, month_key
from meterline.ports import (
    RecordOutcome,
    RecordStatus,
    RevenueReport,
    UsageRow,
    WindowTotals,
)

__all__ = ["SqlLedger"]

_e = t.usage_events.c
_r = t.usage_daily_rollups.c
#: Rows per multi-row INSERT: 500 × 24 columns stays far below both backends'
#: bind-parameter limits (32,766 on SQLite, 32,767 on asyncpg).
_CHUNK = 500

EventKey = tuple[str, str, str]


def _money(value: Any) -> int | None:
    return None if value is None else to_nanos(value)


def _event_values(ev: UsageEvent) -> dict[str, Any]:
    return {
        "id": t.new_id("evt"),
        "project_id": ev.project_id,
        "environment": ev.environment.value,
        "event_id": ev.event_id,
        "end_user_id": ev.end_user_id,
        "timestamp": ev.timestamp,
        "model": ev.model,
        "provider": ev.provider,
        "prompt_tokens": ev.prompt_tokens,
        "completion_tokens": ev.completion_tokens,
        "total_tokens": ev.total_tokens,
        "cached_tokens": ev.cached_tokens,
        "priced": ev.priced,
        "estimated": ev.estimated,
        "provider_cost_nanos": _money(ev.provider_cost),
        "markup_nanos": _money(ev.markup),
        "charge_nanos": _money(ev.charge),
        "flat_fee_nanos": _money(ev.flat_fee),
        "latency_ms": ev.latency_ms,
        "status": ev.status,
        "metadata": dict(ev.metadata),
        "reservation_id": ev.reservation_id,
        "fingerprint": ev.fingerprint,
        "source": ev.source,
        "recorded_at": ev.recorded_at,
    }


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
    """The two write statements of every batch, built once per ledger: executed with a
    list of parameter sets (executemany; "insertmanyvalues" batching where RETURNING is
    needed), their SQL is compiled once and then served from SQLAlchemy's cache, where a
    fresh ``.values([...])`` statement per call was compiled anew every time."""

    def __init__(self, store: SqlStore) -> None:
        self.insert_events = (
            store._insert(t.usage_events)
            .on_conflict_do_nothing(index_elements=["project_id", "environment", "event_id"])
            .returning(_e.project_id, _e.environment, _e.event_id)
        )
        upsert = store._insert(t.usage_daily_rollups)
        self.upsert_rollups = upsert.on_conflict_do_update(
            index_elements=list(ROLLUP_KEY),
            set_={name: _r[name] + upsert.excluded[name] for name in ROLLUP_SUMS},
        )
        self.coarse = CoarseRollups(store)


class SqlLedger(SqlStore):
    """``SqlLedger(engine, clock=None)``; the clock stamps ``recorded_at``."""

    @functools.cached_property
    def _statements(self) -> _Statements:
        return _Statements(self)

    def _as_stored(self, ev: UsageEvent) -> UsageEvent:
        """The event exactly as a later read returns it (UTC, money at nano precision)."""
        return dataclasses.replace(
            ev,
            environment=Environment(ev.environment),
            timestamp=as_utc(ev.timestamp),
            provider_cost=_dollars(_money(ev.provider_cost)),
            markup=_dollars(_money(ev.markup)),
            charge=_dollars(_money(ev.charge)),
            flat_fee=_dollars(_money(ev.flat_fee)),
            recorded_at=as_utc(ev.recorded_at) if ev.recorded_at else self._now(),
        )

    async def record_events(self, events: Sequence[UsageEvent]) -> list[RecordOutcome]:
        """Idempotent on (project, environment, event_id); outcomes in input order.

        A repeated id inside one batch is judged against its first occurrence (or the row
        already stored), exactly as if it had arrived in a later call.
        """
        stored = [self._as_stored(ev) for ev in events]
        keys: list[EventKey] = [(e.project_id, e.environment.value, e.event_id) for e in stored]
        first: dict[EventKey, int] = {}
        for index in sorted(range(len(stored)), key=keys.__getitem__):
            first.setdefault(keys[index], index)
        candidates = sorted(first.items())  # (key, index) in lock order
        inserted, existing = await run_write(
            self._engine, functools.partial(self._write, stored, candidates)
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
        stored: list[UsageEvent],
        candidates: list[tuple[EventKey, int]],
        conn: Connection,
    ) -> tuple[set[EventKey], dict[EventKey, UsageEvent]]:
        """The transaction of one batch (synchronous: see ``engine.run_write``): insert
        the candidates, add the rollups of those inserted, and read back the rows that
        were already there. Returns (inserted keys, existing rows by key)."""
        inserted: set[EventKey] = set()
        for chunk in _chunks(candidates):
            params = [_event_values(stored[i]) for _, i in chunk]
            result = conn.execute(self._statements.insert_events, params)
            inserted.update(tuple(r) for r in result.all())
        deltas: dict[RollupKey, list[int]] = {}
        for key, index in candidates:
            if key in inserted:
                add_delta(deltas, stored[index])
        missing = [key for key, _ in candidates if key not in inserted]
        existing = self._fetch(conn, missing) if missing else {}
        self._upsert_rollups(conn, deltas)
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

    def _upsert_rollups(self, conn: Connection, deltas: dict[RollupKey, list[int]]) -> None:
        rows = [
            dict(zip(ROLLUP_KEY, key, strict=True)) | dict(zip(ROLLUP_SUMS, values, strict=True))
            for key, values in sorted(deltas.items())
        ]
        for chunk in _chunks(rows):
            conn.execute(self._statements.upsert_rollups, chunk)
        for stmt, params in self._statements.coarse.writes(deltas):
            conn.execute(stmt, params)

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
