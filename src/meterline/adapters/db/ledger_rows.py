"""A usage event as a ``usage_events`` row, and a row's rollup delta.

One pass per event computes everything a write needs from it: the row by column name
(money as integer nano-dollars, times as aware UTC), the event exactly as a
later read will return it, and the event's contribution to the daily rollups. Both
write paths (bound rows on SQLite, one JSON document on PostgreSQL) start from here.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from meterline.adapters.db.rollups import RollupKey, fold_delta
from meterline.domain.entities import Environment, UsageEvent
from meterline.domain.money import CTX, quantize_nano
from meterline.domain.windows import as_utc

__all__ = ["EventRow", "add_row_delta", "event_rows", "new_event_ids"]

#: A ``usage_events`` row by column name: bound as is on SQLite, serialised as is (one
#: JSON object) on PostgreSQL.
EventRow = dict[str, Any]


def new_event_ids(count: int) -> list[str]:
    """``evt_<32 hex>`` row ids, as random as ``uuid4``, from one read of the OS's
    random source for the whole batch."""
    pool = os.urandom(16 * count).hex()
    return ["evt_" + pool[32 * i : 32 * i + 32] for i in range(count)]


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is UTC else as_utc(moment)


def _stored_money(amount: Decimal | None) -> tuple[Decimal | None, int | None]:
    """(the amount at stored precision, its nano-dollars); the amount itself when it is
    already exact to 10⁻⁹, which every priced amount is."""
    if amount is None:
        return None, None
    q = quantize_nano(amount)
    # ``q`` is a whole number of nano-dollars: shifting it is exact (``to_nanos`` would
    # quantize it a second time).
    return (amount if q == amount else q), int(q.scaleb(9, context=CTX))


def event_rows(
    events: Sequence[UsageEvent], ids: Sequence[str], now: datetime
) -> tuple[list[UsageEvent], list[EventRow]]:
    """Each event as stored (UTC times, money at nano precision, ``recorded_at`` set to
    ``now`` if absent) and its row, with ``ids[i]`` as row id. Row keys are the
    column names of ``usage_events``."""
    stored: list[UsageEvent] = []
    rows: list[EventRow] = []
    for ev, row_id in zip(events, ids, strict=True):
        timestamp = _utc(ev.timestamp)
        recorded_at = _utc(ev.recorded_at) if ev.recorded_at else now
        cost, cost_n = _stored_money(ev.provider_cost)
        markup, markup_n = _stored_money(ev.markup)
        charge, charge_n = _stored_money(ev.charge)
        fee, fee_n = _stored_money(ev.flat_fee)
        environment = ev.environment
        if type(environment) is not Environment:  # a plain string from a caller
            environment = Environment(environment)
        if (
            timestamp is not ev.timestamp
            or recorded_at is not ev.recorded_at
            or cost is not ev.provider_cost
            or markup is not ev.markup
            or charge is not ev.charge
            or fee is not ev.flat_fee
            or environment is not ev.environment
        ):
            ev = dataclasses.replace(
                ev,
                environment=environment,
                timestamp=timestamp,
                recorded_at=recorded_at,
                provider_cost=cost,
                markup=markup,
                charge=charge,
                flat_fee=fee,
            )
        stored.append(ev)
        rows.append(
            {
                "id": row_id,
                "project_id": ev.project_id,
                "environment": environment.value,
                "event_id": ev.event_id,
                "end_user_id": ev.end_user_id,
                "timestamp": timestamp,
                "model": ev.model,
                "provider": ev.provider,
                "prompt_tokens": ev.prompt_tokens,
                "completion_tokens": ev.completion_tokens,
                "total_tokens": ev.total_tokens,
                "cached_tokens": ev.cached_tokens,
                "priced": ev.priced,
                "estimated": ev.estimated,
                "provider_cost_nanos": cost_n,
                "markup_nanos": markup_n,
                "flat_fee_nanos": fee_n,
                "charge_nanos": charge_n,
                "latency_ms": ev.latency_ms,
                "status": ev.status,
                "metadata": ev.metadata,
                "reservation_id": ev.reservation_id,
                "fingerprint": ev.fingerprint,
                "source": ev.source,
                "recorded_at": recorded_at,
            }
        )
    return stored, rows


def add_row_delta(deltas: dict[RollupKey, list[int]], row: EventRow) -> None:
    """Fold one inserted row into its batch's pending rollup deltas (sums in
    ``ROLLUP_SUMS`` order; an unpriced row counts as one unpriced request, money 0)."""
    day: date = row["timestamp"].date()
    key: RollupKey = (
        row["project_id"],
        row["environment"],
        row["end_user_id"] or "",
        row["model"] or "",
        row["provider"] or "",
        day,
    )
    delta = (
        1,
        row["prompt_tokens"],
        row["completion_tokens"],
        row["total_tokens"],
        row["provider_cost_nanos"] or 0,
        row["markup_nanos"] or 0,
        row["charge_nanos"] or 0,
        0 if row["priced"] else 1,
    )
    fold_delta(deltas, key, delta)
