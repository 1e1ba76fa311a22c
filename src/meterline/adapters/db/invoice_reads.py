"""Reading invoices and the usage they may bill: the query half of ``SqlInvoices``
(split out to keep each module small; see ``invoices.py`` for the writes)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from meterline.adapters.db import tables as t
from meterline.adapters.db._base import SqlStore
from meterline.adapters.db.engine import reading
from meterline.adapters.db.invoice_rows import invoice_from_row
from meterline.adapters.db.invoice_usage import (
    CHUNK,
    LineSums,
    Scope,
    chunks,
    env_value,
    finalized_periods,
    in_period,
    invoiceable_where,
    late_ranges,
    not_linked,
    sum_by_user,
    sum_usage,
)
from meterline.adapters.db.ledger import _event
from meterline.domain.entities import Environment, UsageEvent
from meterline.domain.invoices import (
    INVOICED_STATUSES,
    Invoice,
    InvoiceStatus,
    LineUsage,
)
from meterline.ports.invoices import PeriodInvoice

__all__ = ["InvoiceReads"]

_e = t.usage_events.c
_i = t.invoices.c
_il = t.invoice_lines.c
_l = t.invoice_event_links.c


class InvoiceReads(SqlStore):
    """Queries shared by :class:`meterline.adapters.db.invoices.SqlInvoices`."""

    # ------------------------------------------------------------ usage

    async def users_with_usage(
        self, project_id: str, environment: Environment, start: date, end: date
    ) -> list[str]:
        env = env_value(environment)
        async with reading(self._engine) as conn:
            users = set(await self._users_in(conn, project_id, env, start, end))
            # Late usage: only users holding a finalized invoice before this period.
            query = (
                select(_i.end_user_id)
                .distinct()
                .where(
                    _i.project_id == project_id,
                    _i.environment == env,
                    _i.status.in_([s.value for s in INVOICED_STATUSES]),
                    _i.period_start < start,
                )
            )
            for (user,) in (await conn.execute(query)).all():
                if user in users:
                    continue
                if await self._has_late(conn, (project_id, env, user), start, end):
                    users.add(user)
        return sorted(users)

    async def _users_in(
        self, conn: AsyncConnection, project_id: str, env: str, start: date, end: date
    ) -> list[str]:
        query = (
            select(_e.end_user_id)
            .distinct()
            .where(
                _e.project_id == project_id,
                _e.environment == env,
                _e.end_user_id.is_not(None),
                in_period(start, end),
                not_linked(),
            )
        )
        return [r[0] for r in (await conn.execute(query)).all()]

    async def _has_late(self, conn: AsyncConnection, scope: Scope, start: date, end: date) -> bool:
        periods = await finalized_periods(conn, scope, start)
        _, late = invoiceable_where(scope, start, end, periods)
        return (await conn.execute(select(_e.id).where(late).limit(1))).first() is not None

    async def _usage(
        self, conn: AsyncConnection, scope: Scope, start: date, end: date
    ) -> list[LineUsage]:
        periods = await finalized_periods(conn, scope, start)
        return await sum_usage(conn, *invoiceable_where(scope, start, end, periods))

    async def invoice_usage(
        self, project_id: str, environment: Environment, end_user_id: str, start: date, end: date
    ) -> list[LineUsage]:
        async with reading(self._engine) as conn:
            scope = (project_id, env_value(environment), end_user_id)
            return await self._usage(conn, scope, start, end)

    # ------------------------------------------------------------ the invoice run

    async def period_usage(
        self,
        project_id: str,
        environment: Environment,
        start: date,
        end: date,
        end_user_ids: Sequence[str] | None = None,
    ) -> dict[str, list[LineUsage]]:
        """``invoice_usage`` of every user at once, in a few grouped queries: the period's
        events of all users (no link check, see ``invoice_usage.py`` for why that is exact),
        again with the link check for the users holding a non-draft invoice that overlaps
        the period, and the late ranges of the users with finalized earlier periods."""
        env = env_value(environment)
        scope = (_e.project_id == project_id) & (_e.environment == env)
        found: dict[str, LineSums] = {}
        async with reading(self._engine) as conn:
            held, late = await self._history(conn, project_id, env, start, end, end_user_ids)
            on_time = scope & in_period(start, end)
            wanted = None if end_user_ids is None else sorted(set(end_user_ids))
            if wanted is None or len(wanted) > CHUNK:
                # one pass over the period, whatever the number of users
                keep = None if wanted is None else set(wanted)
                everyone = on_time & _e.end_user_id.is_not(None)
                await sum_by_user(conn, everyone, False, found, keep)
            else:  # a few users: their events only, through the (user, time) index
                await sum_by_user(conn, on_time & _e.end_user_id.in_(wanted), False, found)
            for user in held:
                found.pop(user, None)
            for users in chunks(sorted(held)):
                where = on_time & _e.end_user_id.in_(users) & not_linked()
                await sum_by_user(conn, where, False, found)
            # Late usage, by range: most users share theirs (the same finalized months),
            # and a user's merged ranges are disjoint, so no event is summed twice.
            by_range: dict[tuple[datetime, datetime], list[str]] = {}
            for user, periods in sorted(late.items()):
                for span in late_ranges(periods, start):
                    by_range.setdefault(span, []).append(user)
            for (lo, hi), span_users in sorted(by_range.items()):
                for users in chunks(span_users):
                    where = scope & _e.end_user_id.in_(users) & (_e.timestamp >= lo)
                    where &= (_e.timestamp < hi) & not_linked()
                    await sum_by_user(conn, where, True, found)
        return {user: list(lines.values()) for user, lines in found.items() if lines}

    async def _history(
        self,
        conn: AsyncConnection,
        project_id: str,
        env: str,
        start: date,
        end: date,
        end_user_ids: Sequence[str] | None,
    ) -> tuple[set[str], dict[str, list[tuple[date, date]]]]:
        """(users holding a non-draft invoice that overlaps the period, the finalized
        periods before ``start`` of each user): one query over the non-draft invoices."""
        where = (
            (_i.project_id == project_id)
            & (_i.environment == env)
            & (_i.status != InvoiceStatus.DRAFT.value)
            & (_i.period_start <= end)
        )
        query = select(_i.end_user_id, _i.period_start, _i.period_end, _i.status)
        rows: list[Any] = []
        if end_user_ids is None:
            rows = list((await conn.execute(query.where(where))).all())
        else:
            for users in chunks(sorted(set(end_user_ids))):
                part = query.where(where & _i.end_user_id.in_(users))
                rows.extend((await conn.execute(part)).all())
        invoiced = {s.value for s in INVOICED_STATUSES}
        held: set[str] = set()
        late: dict[str, list[tuple[date, date]]] = {}
        for user, first, last, status in rows:
            if last >= start:
                held.add(user)
            if status in invoiced and first < start:
                late.setdefault(user, []).append((first, last))
        return held, late

    async def period_invoices(
        self,
        project_id: str,
        environment: Environment,
        start: date,
        end: date,
        end_user_ids: Sequence[str] | None = None,
    ) -> dict[str, PeriodInvoice]:
        where = (
            (_i.project_id == project_id)
            & (_i.environment == env_value(environment))
            & (_i.period_start == start)
            & (_i.period_end == end)
        )
        query = select(_i.id, _i.end_user_id, _i.status)
        rows: list[Any] = []
        async with reading(self._engine) as conn:
            if end_user_ids is None:
                rows = list((await conn.execute(query.where(where))).all())
            else:
                for users in chunks(sorted(set(end_user_ids))):
                    part = query.where(where & _i.end_user_id.in_(users))
                    rows.extend((await conn.execute(part)).all())
        return {
            user: PeriodInvoice(id=invoice_id, end_user_id=user, status=InvoiceStatus(status))
            for invoice_id, user, status in rows
        }

    # ------------------------------------------------------------ reads

    async def _load(self, conn: AsyncConnection, where: Any, limit: int = 1) -> list[Invoice]:
        query = (
            select(t.invoices)
            .where(where)
            .order_by(_i.period_start.desc(), _i.end_user_id, _i.id)
            .limit(limit)
        )
        rows = (await conn.execute(query)).mappings().all()
        if not rows:
            return []
        ids = [r["id"] for r in rows]
        lines: dict[str, list[Any]] = {i: [] for i in ids}
        for chunk_start in range(0, len(ids), 500):
            chunk = ids[chunk_start : chunk_start + 500]
            line_query = select(t.invoice_lines).where(_il.invoice_id.in_(chunk))
            for line in (await conn.execute(line_query)).mappings().all():
                lines[line["invoice_id"]].append(line)
        return [invoice_from_row(r, lines[r["id"]]) for r in rows]

    def _scoped(self, project_id: str, environment: Environment, invoice_id: str) -> Any:
        return (
            (_i.project_id == project_id)
            & (_i.environment == env_value(environment))
            & (_i.id == invoice_id)
        )

    async def get_invoice(
        self, project_id: str, environment: Environment, invoice_id: str
    ) -> Invoice | None:
        async with reading(self._engine) as conn:
            found = await self._load(conn, self._scoped(project_id, environment, invoice_id))
        return found[0] if found else None

    async def list_invoices(
        self,
        project_id: str,
        environment: Environment,
        *,
        status: InvoiceStatus | None = None,
        end_user_id: str | None = None,
        period_start: date | None = None,
        period_end: date | None = None,
        limit: int = 100,
    ) -> list[Invoice]:
        """Newest periods first. ``period_start``/``period_end`` keep invoices whose period
        lies inside [period_start, period_end]."""
        where = (_i.project_id == project_id) & (_i.environment == env_value(environment))
        if status is not None:
            where &= _i.status == InvoiceStatus(status).value
        if end_user_id is not None:
            where &= _i.end_user_id == end_user_id
        if period_start is not None:
            where &= _i.period_start >= period_start
        if period_end is not None:
            where &= _i.period_end <= period_end
        async with reading(self._engine) as conn:
            return await self._load(conn, where, limit)

    async def invoice_by_stripe_id(self, stripe_invoice_id: str) -> Invoice | None:
        async with reading(self._engine) as conn:
            found = await self._load(conn, _i.stripe_invoice_id == stripe_invoice_id)
        return found[0] if found else None

    async def invoice_events(
        self, project_id: str, environment: Environment, invoice: Invoice
    ) -> list[UsageEvent]:
        env = env_value(environment)
        async with reading(self._engine) as conn:
            if invoice.status is InvoiceStatus.DRAFT:
                scope = (project_id, env, invoice.end_user_id)
                periods = await finalized_periods(conn, scope, invoice.period_start)
                on_time, late = invoiceable_where(
                    scope, invoice.period_start, invoice.period_end, periods
                )
                where = on_time | late
            else:
                linked = select(_l.event_pk).where(_l.invoice_id == invoice.id)
                where = _e.id.in_(linked) & (_e.project_id == project_id)
            query = select(t.usage_events).where(where).order_by(_e.timestamp, _e.event_id)
            return [_event(r) for r in (await conn.execute(query)).mappings().all()]
