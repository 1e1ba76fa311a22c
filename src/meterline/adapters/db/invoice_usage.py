"""Which usage events an invoice may bill, as SQL conditions, and their exact sums.

An event is *invoiceable* for (end user, period P) when no finalized invoice holds it
(no row in ``invoice_event_links``) and either

* its timestamp falls in P (UTC dates, both ends inclusive): on-time usage; or
* it is timestamped before P's start, inside the period of an invoice of the same user
  that is already finalized (open, paid or uncollectible): *late* usage, which arrived
  after its own invoice was closed and so goes to the next one, on lines of its own.

Late events of a period that was never invoiced are not pulled forward: they wait for
their own period's invoice. A voided invoice does not make its period "late" either (the
brief: a void invoice is no longer a finalized one); its linked events stay linked.

Finalized periods are read first (a handful per user) and turned into timestamp ranges
in Python, which keeps the SQL free of dialect-specific date arithmetic.

The invoice run reads the same sums for many users at once (:func:`sum_by_user`, grouped
by end user as well). It relies on one invariant of the link table: an event is linked
only by finalizing an invoice of *its own* end user whose period holds the event's
timestamp, or — as late usage — whose user holds a finalized invoice over that timestamp;
a non-draft invoice is never deleted nor turned back into a draft. So an event of user U
at time T can be linked only if U has a non-draft invoice whose period contains T, and the
run skips the link check (an anti-join against every link ever written) for users with
no non-draft invoice overlapping the period.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypeVar

from sqlalchemy import and_, case, false, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from meterline.adapters.db import tables as t
from meterline.domain.entities import Environment
from meterline.domain.invoices import INVOICED_STATUSES, LineUsage
from meterline.domain.money import CTX, from_nanos

__all__ = [
    "CHUNK",
    "LineSums",
    "Scope",
    "chunks",
    "day_start",
    "env_value",
    "finalized_periods",
    "in_period",
    "invoiceable_where",
    "late_ranges",
    "linked_usage",
    "not_linked",
    "sum_by_user",
    "sum_usage",
]

_e = t.usage_events.c
_i = t.invoices.c
_l = t.invoice_event_links.c

#: (project_id, environment value, end_user_id)
Scope = tuple[str, str, str]

#: End users per ``IN`` list, ranges per ``OR``, rows per multi-row ``INSERT``: far below
#: the bind parameter limits of SQLite (32,766) and asyncpg (32,767).
CHUNK = 500

#: One user's lines being summed: (late, provider, model) → sums.
LineSums = dict[tuple[bool, str, str], LineUsage]


_T = TypeVar("_T")


def chunks(items: Sequence[_T], size: int = CHUNK) -> list[Sequence[_T]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def in_period(start: date, end: date) -> Any:
    return and_(_e.timestamp >= day_start(start), _e.timestamp < day_start(end + timedelta(1)))


async def finalized_periods(
    conn: AsyncConnection, scope: Scope, before: date
) -> list[tuple[date, date]]:
    """Periods of the user's finalized invoices that start before ``before``."""
    project_id, env, user = scope
    query = select(_i.period_start, _i.period_end).where(
        _i.project_id == project_id,
        _i.environment == env,
        _i.end_user_id == user,
        _i.status.in_([s.value for s in INVOICED_STATUSES]),
        _i.period_start < before,
    )
    return [(r[0], r[1]) for r in (await conn.execute(query)).all()]


def not_linked() -> Any:
    return ~select(_l.event_pk).where(_l.event_pk == _e.id).exists()


def invoiceable_where(
    scope: Scope, start: date, end: date, late_periods: Sequence[tuple[date, date]]
) -> tuple[Any, Any]:
    """(on-time condition, late condition) over ``usage_events`` for one user."""
    project_id, env, user = scope
    base = and_(
        _e.project_id == project_id,
        _e.environment == env,
        _e.end_user_id == user,
        not_linked(),
    )
    on_time = and_(base, in_period(start, end))
    ranges = [in_period(s, min(e, start - timedelta(1))) for s, e in late_periods]
    late = and_(base, _e.timestamp < day_start(start), or_(*ranges)) if ranges else false()
    return on_time, late


def late_ranges(
    periods: Sequence[tuple[date, date]], start: date
) -> list[tuple[datetime, datetime]]:
    """The late ranges of :func:`invoiceable_where` as half-open timestamp ranges, sorted
    and merged (so an event inside two overlapping finalized periods is counted once)."""
    spans = sorted(
        (day_start(s), day_start(min(e, start - timedelta(1)) + timedelta(1))) for s, e in periods
    )
    merged: list[tuple[datetime, datetime]] = []
    for lo, hi in spans:
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


def _sums() -> list[Any]:
    unpriced = func.sum(case((_e.charge_nanos.is_(None), 1), else_=0))
    return [
        _e.provider.label("provider"),
        _e.model.label("model"),
        func.count().label("requests"),
        func.coalesce(func.sum(_e.prompt_tokens), 0).label("prompt_tokens"),
        func.coalesce(func.sum(_e.completion_tokens), 0).label("completion_tokens"),
        func.coalesce(func.sum(_e.provider_cost_nanos), 0).label("cost"),
        func.coalesce(func.sum(_e.markup_nanos), 0).label("markup"),
        func.coalesce(func.sum(_e.charge_nanos), 0).label("charge"),
        func.coalesce(func.sum(_e.flat_fee_nanos), 0).label("flat_fees"),
        func.coalesce(unpriced, 0).label("unpriced"),
    ]


def _line(row: Any, late: bool) -> LineUsage:
    # SUM(bigint) is NUMERIC on PostgreSQL (a Decimal here) and int on SQLite: int() is
    # exact for both, and dollars appear only through from_nanos.
    return LineUsage(
        provider=row.provider or "",
        model=row.model or "",
        requests=int(row.requests),
        prompt_tokens=int(row.prompt_tokens),
        completion_tokens=int(row.completion_tokens),
        provider_cost=from_nanos(int(row.cost)),
        markup=from_nanos(int(row.markup)),
        charge=from_nanos(int(row.charge)),
        unpriced_requests=int(row.unpriced),
        late=late,
        flat_fees=from_nanos(int(row.flat_fees)),
    )


async def sum_usage(conn: AsyncConnection, on_time: Any, late: Any) -> list[LineUsage]:
    """Exact sums per (provider, model) for each condition, late lines apart."""
    merged: dict[tuple[bool, str, str], LineUsage] = {}
    for where, is_late in ((on_time, False), (late, True)):
        query = select(*_sums()).where(where).group_by(_e.provider, _e.model)
        for row in (await conn.execute(query)).all():
            line = _line(row, is_late)
            key = (is_late, line.provider, line.model)
            # NULL and '' are one line (the line's key stores '').
            merged[key] = _add(merged[key], line) if key in merged else line
    return list(merged.values())


async def sum_by_user(
    conn: AsyncConnection,
    where: Any,
    late: bool,
    into: dict[str, LineSums],
    keep: set[str] | None = None,
) -> None:
    """:func:`sum_usage` for many end users at once: adds the sums of the events matching
    ``where`` to ``into`` (end user → lines), NULL and '' provider/model merged as there;
    only those of the users in ``keep`` when given."""
    query = (
        select(_e.end_user_id.label("end_user_id"), *_sums())
        .where(where)
        .group_by(_e.end_user_id, _e.provider, _e.model)
    )
    for row in (await conn.execute(query)).all():
        if keep is not None and row.end_user_id not in keep:
            continue
        line = _line(row, late)
        lines = into.setdefault(row.end_user_id, {})
        key = (late, line.provider, line.model)
        lines[key] = _add(lines[key], line) if key in lines else line


def _add(a: LineUsage, b: LineUsage) -> LineUsage:
    return LineUsage(
        provider=a.provider,
        model=a.model,
        requests=a.requests + b.requests,
        prompt_tokens=a.prompt_tokens + b.prompt_tokens,
        completion_tokens=a.completion_tokens + b.completion_tokens,
        provider_cost=CTX.add(a.provider_cost, b.provider_cost),
        markup=CTX.add(a.markup, b.markup),
        charge=CTX.add(a.charge, b.charge),
        unpriced_requests=a.unpriced_requests + b.unpriced_requests,
        late=a.late,
        flat_fees=CTX.add(a.flat_fees, b.flat_fees),
    )


async def linked_usage(conn: AsyncConnection, invoice_id: str, start: date) -> list[LineUsage]:
    """Exact sums of the events linked to ``invoice_id``; those before ``start`` are late."""
    linked = select(_l.event_pk).where(_l.invoice_id == invoice_id)
    before = _e.timestamp < day_start(start)
    on_time = and_(_e.id.in_(linked), ~before)
    late = and_(_e.id.in_(linked), before)
    return await sum_usage(conn, on_time, late)


def env_value(environment: Environment | str) -> str:
    return Environment(environment).value
