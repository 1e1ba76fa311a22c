"""Invoicing use cases: generate drafts for a period, finalize, void, write off, read.

Generation is safe to repeat: a user's draft is recomputed and replaced, a finalized
invoice is never touched (the user is reported as skipped), and usage that reached the
ledger after a period was finalized lands on the next period's invoice as late lines
(see ``adapters/db/invoice_usage.py`` for the exact rule).
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

from meterline.domain.entities import UsageEvent
from meterline.domain.invoices import Invoice, InvoiceStatus, compute_lines
from meterline.domain.money import InvalidMoney
from meterline.ports import (
    Clock,
    InvalidTransition,
    InvoiceStore,
    NotFound,
    UnpricedUsage,
)
from meterline.services.auth import AuthContext
from meterline.services.errors import Conflict, Invalid, NotFoundError

__all__ = [
    "MAX_PERIOD_DAYS",
    "GenerateResult",
    "Invoicing",
    "month_period",
    "parse_period",
]

MAX_PERIOD_DAYS = 366
MAX_USERS_PER_CALL = 10_000
#: End users whose drafts are written in one transaction.
SAVE_CHUNK = 500
_MONTH = re.compile(r"(\d{4})-(\d{2})")


def _parse_date(value: object, param: str) -> date:
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or len(value) != 10:
        raise Invalid(f"{param} must be a date as YYYY-MM-DD", param=param)
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise Invalid(f"{param} must be a date as YYYY-MM-DD", param=param) from None


def parse_period(start: object, end: object) -> tuple[date, date]:
    """Validate an inclusive period of UTC dates: start ≤ end, at most 366 days."""
    first, last = _parse_date(start, "period_start"), _parse_date(end, "period_end")
    if last < first:
        raise Invalid("period_end must not be before period_start", param="period_end")
    if (last - first).days + 1 > MAX_PERIOD_DAYS:
        raise Invalid(f"a period spans at most {MAX_PERIOD_DAYS} days", param="period_end")
    return first, last


def month_period(text: str) -> tuple[date, date]:
    """``2026-11`` → (2026-11-01, 2026-11-30)."""
    match = _MONTH.fullmatch(text.strip())
    if match is None or not 1 <= int(match.group(2)) <= 12:
        raise Invalid("period must be a month as YYYY-MM", param="period")
    year, month = int(match.group(1)), int(match.group(2))
    if year < 1:
        raise Invalid("period must be a month as YYYY-MM", param="period")
    return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])


@dataclass
class GenerateResult:
    generated: list[Invoice] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)


class Invoicing:
    def __init__(self, store: InvoiceStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    async def generate(
        self,
        ctx: AuthContext,
        period_start: date,
        period_end: date,
        end_user_ids: Sequence[str] | None = None,
    ) -> GenerateResult:
        """Drafts for every end user with invoiceable usage in the period (or for each of
        ``end_user_ids``), set-based: the usage of all users and the period's existing
        invoices are read in a few grouped queries, lines are computed here, and drafts are
        written :data:`SAVE_CHUNK` users per transaction. Results are in end-user order."""
        start, end = parse_period(period_start, period_end)
        env, project_id = ctx.environment, ctx.project_id
        wanted: list[str] | None = None
        if end_user_ids is not None:
            wanted = sorted(set(end_user_ids))
            self._check_size(wanted)
        usage = await self._store.period_usage(project_id, env, start, end, wanted)
        users = sorted(usage) if wanted is None else wanted
        self._check_size(users)
        existing = await self._store.period_invoices(project_id, env, start, end, wanted)
        outcome: dict[str, tuple[str, Invoice | dict[str, str]]] = {}
        drafts: list[Invoice] = []
        stale: list[str] = []
        for user in users:
            held = existing.get(user)
            if held is not None and held.status is not InvoiceStatus.DRAFT:
                outcome[user] = ("skipped", self._skip(user, "finalized", held.id))
                continue
            lines_usage = usage.get(user, [])
            if not any(u.requests for u in lines_usage):
                if held is not None:  # its usage went to another invoice meanwhile
                    stale.append(user)
                outcome[user] = ("skipped", {"end_user_id": user, "reason": "no_usage"})
                continue
            try:
                lines = compute_lines(lines_usage, ctx.project.currency)
            except InvalidMoney as exc:
                outcome[user] = ("error", {"end_user_id": user, "error": str(exc)})
                continue
            drafts.append(
                Invoice(
                    id="",
                    project_id=project_id,
                    environment=env,
                    end_user_id=user,
                    period_start=start,
                    period_end=end,
                    status=InvoiceStatus.DRAFT,
                    currency=ctx.project.currency,
                    lines=lines,
                )
            )
        for i in range(0, len(drafts), SAVE_CHUNK):
            chunk = drafts[i : i + SAVE_CHUNK]
            for draft, saved in zip(chunk, await self._store.save_drafts(chunk), strict=True):
                user = draft.end_user_id
                if saved is None:  # finalized between our read and our write
                    outcome[user] = ("skipped", {"end_user_id": user, "reason": "finalized"})
                else:
                    outcome[user] = ("generated", saved)
        if stale:
            await self._store.delete_drafts(project_id, env, stale, start, end)
        result = GenerateResult()
        for user in users:
            kind, value = outcome[user]
            if isinstance(value, Invoice):
                result.generated.append(value)
            elif kind == "skipped":
                result.skipped.append(value)
            else:
                result.errors.append(value)
        return result

    @staticmethod
    def _check_size(users: Sequence[str]) -> None:
        if len(users) > MAX_USERS_PER_CALL:
            raise Invalid(f"at most {MAX_USERS_PER_CALL} end users per call", param="end_user_ids")

    @staticmethod
    def _skip(user: str, reason: str, invoice_id: str) -> dict[str, str]:
        return {"end_user_id": user, "reason": reason, "invoice_id": invoice_id}

    async def get(self, ctx: AuthContext, invoice_id: str) -> Invoice:
        invoice = await self._store.get_invoice(ctx.project_id, ctx.environment, invoice_id)
        if invoice is None:
            raise NotFoundError(f"No invoice {invoice_id!r} in this environment.")
        return invoice

    async def list_invoices(
        self,
        ctx: AuthContext,
        *,
        status: str | None = None,
        end_user_id: str | None = None,
        period_start: date | None = None,
        period_end: date | None = None,
        limit: int = 100,
    ) -> list[Invoice]:
        parsed: InvoiceStatus | None = None
        if status is not None:
            try:
                parsed = InvoiceStatus(status)
            except ValueError:
                names = ", ".join(s.value for s in InvoiceStatus)
                raise Invalid(f"status must be one of: {names}", param="status") from None
        return await self._store.list_invoices(
            ctx.project_id,
            ctx.environment,
            status=parsed,
            end_user_id=end_user_id,
            period_start=period_start,
            period_end=period_end,
            limit=limit,
        )

    async def finalize(self, ctx: AuthContext, invoice_id: str) -> Invoice:
        try:
            return await self._store.finalize(
                ctx.project_id,
                ctx.environment,
                invoice_id,
                self._clock.now(),
                ctx.project.currency,
            )
        except NotFound:
            raise NotFoundError(f"No invoice {invoice_id!r} in this environment.") from None
        except InvalidTransition as exc:
            raise Conflict(str(exc), code="invalid_transition") from None
        except UnpricedUsage as exc:
            raise Conflict(
                f"Can't finalize: {exc}. Set a price (PUT /api/v1/billing/prices/{{model}}), "
                "reprice the usage (POST /api/v1/billing/usage/reprice), then finalize.",
                code="unpriced_usage",
            ) from None

    async def set_status(
        self,
        ctx: AuthContext,
        invoice_id: str,
        status: InvoiceStatus,
        *,
        stripe_invoice_id: str | None = None,
        hosted_invoice_url: str | None = None,
    ) -> Invoice:
        await self.get(ctx, invoice_id)
        try:
            return await self._store.set_status(
                ctx.project_id,
                ctx.environment,
                invoice_id,
                status,
                stripe_invoice_id=stripe_invoice_id,
                hosted_invoice_url=hosted_invoice_url,
            )
        except NotFound:
            raise NotFoundError(f"No invoice {invoice_id!r} in this environment.") from None
        except InvalidTransition as exc:
            hint = " (a draft is deleted, not voided)" if status is InvoiceStatus.VOID else ""
            raise Conflict(f"{exc}{hint}", code="invalid_transition") from None

    async def void(self, ctx: AuthContext, invoice_id: str) -> Invoice:
        return await self.set_status(ctx, invoice_id, InvoiceStatus.VOID)

    async def mark_uncollectible(self, ctx: AuthContext, invoice_id: str) -> Invoice:
        return await self.set_status(ctx, invoice_id, InvoiceStatus.UNCOLLECTIBLE)

    async def delete_draft(self, ctx: AuthContext, invoice_id: str) -> None:
        invoice = await self.get(ctx, invoice_id)
        if invoice.status is not InvoiceStatus.DRAFT:
            raise Conflict(
                f"invoice {invoice_id} is {invoice.status}: only drafts are deleted",
                code="invalid_transition",
            )
        await self._store.delete_draft(
            ctx.project_id,
            ctx.environment,
            invoice.end_user_id,
            invoice.period_start,
            invoice.period_end,
        )

    async def events_by_invoice(
        self, ctx: AuthContext, invoices: Sequence[Invoice]
    ) -> list[tuple[Invoice, list[UsageEvent]]]:
        return [
            (inv, await self._store.invoice_events(ctx.project_id, ctx.environment, inv))
            for inv in invoices
        ]
