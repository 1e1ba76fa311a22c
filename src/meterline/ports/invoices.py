"""Ports: invoices."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Protocol

from meterline.domain.entities import (
    Environment,
    UsageEvent,
)
from meterline.domain.invoices import Invoice, InvoiceStatus, LineUsage

__all__ = [
    "InvalidTransition",
    "InvoiceFinalized",
    "InvoiceStore",
    "PeriodInvoice",
    "RepricedEvent",
    "UnpricedEvent",
    "UnpricedUsage",
    "UsageRepricer",
]


class InvoiceFinalized(Exception):
    """The period already has a finalized (non-draft) invoice for this end user."""


class InvalidTransition(Exception):
    """An invoice status change the lifecycle does not allow."""


class UnpricedUsage(Exception):
    """Finalization refused: some of the invoice's usage has no price. Set a price for
    ``models`` (a per-project override) and reprice the usage, then finalize again."""

    def __init__(self, models: Sequence[str]) -> None:
        self.models = tuple(models)
        names = ", ".join(self.models) or "(no model)"
        super().__init__(f"usage of these models has no price: {names}")


@dataclass(frozen=True, slots=True)
class PeriodInvoice:
    """The invoice holding one end user's key for a period: enough to decide a run."""

    id: str
    end_user_id: str
    status: InvoiceStatus


class InvoiceStore(Protocol):
    """Invoices and the link of each usage event to at most one finalized invoice."""

    async def users_with_usage(
        self, project_id: str, environment: Environment, start: date, end: date
    ) -> list[str]:
        """End users with invoiceable usage for the period: events in it not yet on a
        finalized invoice, plus late events of earlier, already finalized periods."""
        ...

    async def invoice_usage(
        self, project_id: str, environment: Environment, end_user_id: str, start: date, end: date
    ) -> list[LineUsage]:
        """Exact sums per (provider, model), late usage (``late=True``) apart."""
        ...

    async def period_usage(
        self,
        project_id: str,
        environment: Environment,
        start: date,
        end: date,
        end_user_ids: Sequence[str] | None = None,
    ) -> dict[str, list[LineUsage]]:
        """The invoice run's reads, set-based: for every end user with invoiceable usage
        (``users_with_usage``), or for each of ``end_user_ids`` that has some, exactly what
        :meth:`invoice_usage` returns for that user (lines with no requests left out)."""
        ...

    async def period_invoices(
        self,
        project_id: str,
        environment: Environment,
        start: date,
        end: date,
        end_user_ids: Sequence[str] | None = None,
    ) -> dict[str, PeriodInvoice]:
        """The invoices of exactly this period, by end user (of ``end_user_ids`` if given)."""
        ...

    async def save_drafts(self, invoices: Sequence[Invoice]) -> list[Invoice | None]:
        """:meth:`save_draft` for many users of one (project, environment, period), in one
        transaction: each saved draft in input order, or ``None`` where a non-draft
        invoice holds that key. Safe against a concurrent run saving the same keys: each
        key ends up with exactly one invoice."""
        ...

    async def delete_drafts(
        self,
        project_id: str,
        environment: Environment,
        end_user_ids: Sequence[str],
        start: date,
        end: date,
    ) -> None:
        """:meth:`delete_draft` for many end users, in one transaction."""
        ...

    async def save_draft(self, invoice: Invoice) -> Invoice:
        """Insert or replace the draft for (project, environment, end user, period).
        Raises :class:`InvoiceFinalized` when a non-draft invoice holds that key."""
        ...

    async def delete_draft(
        self, project_id: str, environment: Environment, end_user_id: str, start: date, end: date
    ) -> None: ...

    async def get_invoice(
        self, project_id: str, environment: Environment, invoice_id: str
    ) -> Invoice | None: ...

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
    ) -> list[Invoice]: ...

    async def finalize(
        self,
        project_id: str,
        environment: Environment,
        invoice_id: str,
        now: datetime,
        currency: str,
    ) -> Invoice:
        """Atomically: recompute the lines from the events not yet invoiced, link those
        events to this invoice, number it (per project) and mark it open."""
        ...

    async def set_status(
        self,
        project_id: str,
        environment: Environment,
        invoice_id: str,
        status: InvoiceStatus,
        *,
        stripe_invoice_id: str | None = None,
        hosted_invoice_url: str | None = None,
    ) -> Invoice: ...

    async def invoice_by_stripe_id(self, stripe_invoice_id: str) -> Invoice | None: ...

    async def invoice_events(
        self, project_id: str, environment: Environment, invoice: Invoice
    ) -> list[UsageEvent]:
        """The events behind an invoice: those linked to it once finalized, the currently
        invoiceable ones while it is a draft."""
        ...


@dataclass(frozen=True, slots=True)
class UnpricedEvent:
    """What repricing needs of a stored event that has no price yet."""

    pk: str
    end_user_id: str | None
    timestamp: datetime
    provider: str | None
    model: str | None
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0


@dataclass(frozen=True, slots=True)
class RepricedEvent:
    pk: str
    provider_cost: Decimal
    markup: Decimal
    charge: Decimal
    flat_fee: Decimal = Decimal(0)


class UsageRepricer(Protocol):
    """Prices, after the fact, events recorded without a price — the one change the
    append-only ledger allows: money columns go from NULL to a value, once, never back."""

    async def unpriced_events(
        self,
        project_id: str,
        environment: Environment,
        *,
        model: str | None = None,
        start: date | None = None,
        end: date | None = None,
        after_pk: str = "",
        limit: int = 500,
    ) -> list[UnpricedEvent]:
        """Unpriced, uninvoiced events ordered by ``pk``, those after ``after_pk``."""
        ...

    async def reprice_events(
        self, project_id: str, environment: Environment, updates: Sequence[RepricedEvent]
    ) -> int:
        """Set the money of still-unpriced events and move their daily rollups by the same
        amounts, in one transaction. Returns how many events changed."""
        ...

    async def count_unpriced(
        self,
        project_id: str,
        environment: Environment,
        *,
        model: str | None = None,
        start: date | None = None,
        end: date | None = None,
    ) -> int: ...
