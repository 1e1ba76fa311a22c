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
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import bindparam, delete, literal, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from meterline.adapters.db import tables as t
from meterline.adapters.db.engine import writing
from meterline.adapters.db.invoice_reads import InvoiceReads
from meterline.adapters.db.invoice_rows import NUMBER_PREFIX, line_values
from meterline.adapters.db.invoice_usage import (
    chunks,
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

#: The columns of ``uq_invoices_user_period``: one invoice per user and period.
_KEY = ("project_id", "environment", "end_user_id", "period_start", "period_end")


def _invoice_values(inv: Invoice) -> dict[str, Any]:
    return {
        "id": inv.id,
        "project_id": inv.project_id,
        "environment": env_value(inv.environment),
        "end_user_id": inv.end_user_id,
        "period_start": inv.period_start,
        "period_end": inv.period_end,
        "status": InvoiceStatus.DRAFT.value,
        "currency": inv.currency,
        "created_at": inv.created_at,
        "subtotal_cents": inv.total_cents,
        "total_cents": inv.total_cents,
    }


class SqlInvoices(InvoiceReads):
    """``SqlInvoices(engine, clock=None)`` — implements :class:`meterline.ports.InvoiceStore`."""

    # ------------------------------------------------------------ writes

    async def save_draft(self, invoice: Invoice) -> Invoice:
        """Insert, or replace the draft holding the same key (keeping its id)."""
        async with writing(self._engine) as conn:
            saved = await self._save(conn, [invoice])
        outcome = saved[invoice.end_user_id]
        if isinstance(outcome, tuple):
            raise InvoiceFinalized(f"invoice {outcome[0]} is {outcome[1]}")
        return outcome

    async def save_drafts(self, invoices: Sequence[Invoice]) -> list[Invoice | None]:
        """Many drafts of one (project, environment, period) in one transaction."""
        if not invoices:
            return []
        async with writing(self._engine) as conn:
            saved = await self._save(conn, invoices)
        return [
            None if isinstance(out, tuple) else out
            for out in (saved[inv.end_user_id] for inv in invoices)
        ]

    async def _save(
        self, conn: AsyncConnection, invoices: Sequence[Invoice]
    ) -> dict[str, Invoice | tuple[str, str]]:
        """Insert or replace each draft: end user → the saved draft, or (id, status) of the
        non-draft invoice holding the key.

        New keys are inserted first, in end-user order, with ``ON CONFLICT DO NOTHING`` on
        the unique (project, environment, end user, period) key; the keys someone else holds
        are then locked (``FOR UPDATE``, again in end-user order) and their drafts replaced
        in place. A concurrent run inserting the same key makes our insert wait for its
        commit and then skip it, and we replace its draft: one invoice per key, and both
        transactions take their row locks in the same order, so they cannot deadlock."""
        first = invoices[0]
        key = (first.project_id, env_value(first.environment), first.period_start, first.period_end)
        drafts: dict[str, Invoice] = {}
        for inv in invoices:
            if (
                inv.project_id,
                env_value(inv.environment),
                inv.period_start,
                inv.period_end,
            ) != key:
                raise ValueError("save_drafts takes drafts of one project, environment and period")
            if inv.end_user_id in drafts:
                raise ValueError(f"two drafts for end user {inv.end_user_id!r}")
            drafts[inv.end_user_id] = inv
        period = (
            (_i.project_id == key[0])
            & (_i.environment == key[1])
            & (_i.period_start == key[2])
            & (_i.period_end == key[3])
        )
        now = self._now()
        out: dict[str, Invoice | tuple[str, str]] = {}
        replaced: list[Invoice] = []
        pending = sorted(drafts)
        while pending:  # again only if a held key was deleted before we could lock it
            fresh = {
                user: dataclasses.replace(
                    drafts[user],
                    id=drafts[user].id or t.new_id("inv"),
                    status=InvoiceStatus.DRAFT,
                    created_at=now,
                )
                for user in pending
            }
            stmt = (
                self._insert(t.invoices)
                .on_conflict_do_nothing(index_elements=list(_KEY))
                .returning(_i.end_user_id)
            )
            rows = [_invoice_values(fresh[user]) for user in pending]  # multi-row, in order
            inserted = set((await conn.execute(stmt, rows)).scalars())
            out.update((user, fresh[user]) for user in inserted)
            held = [user for user in pending if user not in inserted]
            found: set[str] = set()
            for users in chunks(held):
                query = (
                    select(_i.id, _i.end_user_id, _i.status, _i.created_at)
                    .where(period & _i.end_user_id.in_(users))
                    .order_by(_i.end_user_id)
                    .with_for_update()
                )
                for row in (await conn.execute(query)).all():
                    found.add(row.end_user_id)
                    if row.status != InvoiceStatus.DRAFT.value:
                        out[row.end_user_id] = (row.id, row.status)
                        continue
                    saved = dataclasses.replace(
                        drafts[row.end_user_id],
                        id=row.id,
                        status=InvoiceStatus.DRAFT,
                        created_at=row.created_at,
                    )
                    out[row.end_user_id] = saved
                    replaced.append(saved)
            pending = [user for user in held if user not in found]
        if replaced:
            await conn.execute(
                update(t.invoices)
                .where(_i.id == bindparam("b_id"))
                .values(
                    currency=bindparam("b_currency"),
                    subtotal_cents=bindparam("b_total"),
                    total_cents=bindparam("b_total"),
                ),
                [
                    {"b_id": inv.id, "b_currency": inv.currency, "b_total": inv.total_cents}
                    for inv in replaced
                ],
            )
            for ids in chunks([inv.id for inv in replaced]):
                await conn.execute(delete(t.invoice_lines).where(_il.invoice_id.in_(ids)))
        lines = [
            line_values(inv.id, ln)
            for inv in out.values()
            if isinstance(inv, Invoice)
            for ln in inv.lines
        ]
        if lines:
            await conn.execute(t.invoice_lines.insert(), lines)
        return out

    async def _replace_lines(self, conn: AsyncConnection, invoice: Invoice) -> None:
        await conn.execute(delete(t.invoice_lines).where(_il.invoice_id == invoice.id))
        if invoice.lines:
            await conn.execute(
                t.invoice_lines.insert(), [line_values(invoice.id, ln) for ln in invoice.lines]
            )

    async def delete_draft(
        self, project_id: str, environment: Environment, end_user_id: str, start: date, end: date
    ) -> None:
        await self.delete_drafts(project_id, environment, [end_user_id], start, end)

    async def delete_drafts(
        self,
        project_id: str,
        environment: Environment,
        end_user_ids: Sequence[str],
        start: date,
        end: date,
    ) -> None:
        async with writing(self._engine) as conn:
            for users in chunks(sorted(set(end_user_ids))):
                await conn.execute(
                    delete(t.invoices).where(
                        _i.project_id == project_id,
                        _i.environment == env_value(environment),
                        _i.end_user_id.in_(users),
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
