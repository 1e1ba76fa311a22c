"""``SqlInvoices``: invoices, their lines, and the link of each event to one invoice.

Drafts are recomputable previews: saving one replaces the previous draft for the same
(project, environment, end user, period) and keeps its id. Finalization is one
transaction that links the still-unlinked invoiceable events to the invoice
(``INSERT … SELECT … ON CONFLICT DO NOTHING`` on the link's primary key), recomputes the
lines from exactly the events it linked, takes the next number from the per-(project,
environment) counter and opens the invoice. Two finalizations racing for the same
events cannot both link one: the second waits on the first's uncommitted key, then
skips it — so usage that arrived after the draft is billed, and nothing twice.
"""

from __future__ import annotations

import dataclasses
from datetime import date, datetime
from typing import Any

from sqlalchemy import delete, literal, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from meterline.adapters.db import tables as t
from meterline.adapters.db.engine import writing
from meterline.adapters.db.invoice_reads import InvoiceReads
from meterline.adapters.db.invoice_rows import NUMBER_PREFIX, line_values
from meterline.adapters.db.invoice_usage import (
    env_value,
    finalized_periods,
    invoiceable_where,
    linked_usage,
)
from meterline.domain.entities import Environment
from meterline.domain.invoices import (
    Invoice,
    InvoiceStatus,
    can_transition,
    compute_lines,
    format_number,
    total_minor,
)
from meterline.ports import InvalidTransition, InvoiceFinalized, NotFound, UnpricedUsage

__all__ = ["SqlInvoices"]

_e = t.usage_events.c
_i = t.invoices.c
_il = t.invoice_lines.c
_l = t.invoice_event_links.c
_n = t.invoice_counters.c


class SqlInvoices(InvoiceReads):
    """``SqlInvoices(engine, clock=None)`` — implements :class:`meterline.ports.InvoiceStore`."""

    # ------------------------------------------------------------ writes

    def _key_where(self, inv: Invoice) -> Any:
        return (
            (_i.project_id == inv.project_id)
            & (_i.environment == env_value(inv.environment))
            & (_i.end_user_id == inv.end_user_id)
            & (_i.period_start == inv.period_start)
            & (_i.period_end == inv.period_end)
        )

    async def _replace_lines(self, conn: AsyncConnection, invoice: Invoice) -> None:
        await conn.execute(delete(t.invoice_lines).where(_il.invoice_id == invoice.id))
        if invoice.lines:
            await conn.execute(
                t.invoice_lines.insert(), [line_values(invoice.id, ln) for ln in invoice.lines]
            )

    async def save_draft(self, invoice: Invoice) -> Invoice:
        """Insert, or replace the draft holding the same key (keeping its id)."""
        async with writing(self._engine) as conn:
            query = select(_i.id, _i.status, _i.created_at).where(self._key_where(invoice))
            existing = (await conn.execute(query.with_for_update())).first()
            now = self._now()
            totals = {"subtotal_cents": invoice.total_cents, "total_cents": invoice.total_cents}
            if existing is not None:
                if existing.status != InvoiceStatus.DRAFT.value:
                    raise InvoiceFinalized(f"invoice {existing.id} is {existing.status}")
                saved = dataclasses.replace(
                    invoice, id=existing.id, status=InvoiceStatus.DRAFT, created_at=existing[2]
                )
                values = {"currency": invoice.currency, **totals}
                await conn.execute(update(t.invoices).where(_i.id == saved.id).values(values))
            else:
                saved = dataclasses.replace(
                    invoice,
                    id=invoice.id or t.new_id("inv"),
                    status=InvoiceStatus.DRAFT,
                    created_at=now,
                )
                await conn.execute(
                    t.invoices.insert().values(
                        id=saved.id,
                        project_id=saved.project_id,
                        environment=env_value(saved.environment),
                        end_user_id=saved.end_user_id,
                        period_start=saved.period_start,
                        period_end=saved.period_end,
                        status=InvoiceStatus.DRAFT.value,
                        currency=saved.currency,
                        created_at=now,
                        **totals,
                    )
                )
            await self._replace_lines(conn, saved)
        return saved

    async def delete_draft(
        self, project_id: str, environment: Environment, end_user_id: str, start: date, end: date
    ) -> None:
        async with writing(self._engine) as conn:
            await conn.execute(
                delete(t.invoices).where(
                    _i.project_id == project_id,
                    _i.environment == env_value(environment),
                    _i.end_user_id == end_user_id,
                    _i.period_start == start,
                    _i.period_end == end,
                    _i.status == InvoiceStatus.DRAFT.value,
                )
            )

    async def _locked(
        self, conn: AsyncConnection, project_id: str, environment: Environment, invoice_id: str
    ) -> Any:
        query = select(t.invoices).where(self._scoped(project_id, environment, invoice_id))
        row = (await conn.execute(query.with_for_update())).mappings().first()
        if row is None:
            raise NotFound(f"no invoice {invoice_id!r}")
        return row

    async def _next_number(self, conn: AsyncConnection, project_id: str, env: str) -> int:
        stmt = self._insert(t.invoice_counters).values(
            project_id=project_id, environment=env, last_number=1
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["project_id", "environment"],
            set_={"last_number": _n.last_number + 1},
        ).returning(_n.last_number)
        return int((await conn.execute(stmt)).scalar_one())

    async def finalize(
        self,
        project_id: str,
        environment: Environment,
        invoice_id: str,
        now: datetime,
        currency: str,
    ) -> Invoice:
        env = env_value(environment)
        async with writing(self._engine) as conn:
            row = await self._locked(conn, project_id, environment, invoice_id)
            if row["status"] != InvoiceStatus.DRAFT.value:
                raise InvalidTransition(f"invoice {invoice_id} is {row['status']}, not a draft")
            scope = (project_id, env, row["end_user_id"])
            start, end = row["period_start"], row["period_end"]
            periods = await finalized_periods(conn, scope, start)
            on_time, late = invoiceable_where(scope, start, end, periods)
            link = (
                self._insert(t.invoice_event_links)
                .from_select(
                    ["event_pk", "invoice_id"],
                    select(_e.id, literal(invoice_id)).where(on_time | late),
                )
                .on_conflict_do_nothing(index_elements=["event_pk"])
            )
            await conn.execute(link)
            lines = compute_lines(await linked_usage(conn, invoice_id, start), currency)
            unpriced = sorted({ln.model for ln in lines if ln.unpriced_requests})
            if unpriced:
                raise UnpricedUsage(unpriced)  # rolls the links back
            number = format_number(NUMBER_PREFIX, await self._next_number(conn, project_id, env))
            total = total_minor(lines)
            await conn.execute(
                update(t.invoices)
                .where(_i.id == invoice_id)
                .values(
                    status=InvoiceStatus.OPEN.value,
                    number=number,
                    currency=currency,
                    finalized_at=now,
                    subtotal_cents=total,
                    total_cents=total,
                )
            )
            current = await self._load(conn, _i.id == invoice_id)
            invoice = dataclasses.replace(current[0], lines=lines)
            await self._replace_lines(conn, invoice)
        return invoice

    async def set_status(
        self,
        project_id: str,
        environment: Environment,
        invoice_id: str,
        status: InvoiceStatus,
        *,
        stripe_invoice_id: str | None = None,
        hosted_invoice_url: str | None = None,
    ) -> Invoice:
        """Move along the lifecycle (:func:`domain.invoices.can_transition`). The same
        status again only records Stripe's ids (for a non-draft)."""
        target = InvoiceStatus(status)
        async with writing(self._engine) as conn:
            row = await self._locked(conn, project_id, environment, invoice_id)
            current = InvoiceStatus(row["status"])
            same = current is target and current is not InvoiceStatus.DRAFT
            if not same and not can_transition(current, target):
                raise InvalidTransition(f"an invoice that is {current} cannot become {target}")
            values: dict[str, Any] = {"status": target.value}
            if target is InvoiceStatus.VOID and not same:
                values["voided_at"] = self._now()
            if stripe_invoice_id is not None:
                values["stripe_invoice_id"] = stripe_invoice_id
            if hosted_invoice_url is not None:
                values["hosted_invoice_url"] = hosted_invoice_url
            await conn.execute(update(t.invoices).where(_i.id == invoice_id).values(values))
            return (await self._load(conn, _i.id == invoice_id))[0]
