"""Invoice computation: one invoice per (project, environment, end user, period), one line
per (provider, model) — late usage on lines of its own — rounded once per line.

``amount_cents`` of a line is the line's exact charge rounded once to the currency's minor
unit, half away from zero; the invoice total is the sum of the rounded lines (never a
rounding of the sum), so every line a customer sees adds up to the total they are billed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from meterline.domain.entities import Environment
from meterline.domain.money import CTX, minor_unit_exponent, round_to_minor

__all__ = [
    "FINAL_STATUSES",
    "INVOICED_STATUSES",
    "Invoice",
    "InvoiceLine",
    "InvoiceStatus",
    "LineUsage",
    "can_transition",
    "compute_lines",
    "format_number",
    "minor_to_major",
    "total_minor",
]


class InvoiceStatus(StrEnum):
    DRAFT = "draft"
    OPEN = "open"  # finalized: numbered, immutable
    PAID = "paid"
    VOID = "void"
    UNCOLLECTIBLE = "uncollectible"


#: Statuses whose invoice holds its events: numbered, finalized, never recomputed. A late
#: event is one whose own period is covered by an invoice in one of these statuses.
INVOICED_STATUSES = frozenset({InvoiceStatus.OPEN, InvoiceStatus.PAID, InvoiceStatus.UNCOLLECTIBLE})

#: Nothing leaves these.
FINAL_STATUSES = frozenset({InvoiceStatus.PAID, InvoiceStatus.VOID})

#: The lifecycle, as Stripe's: a draft becomes open only by finalization (which links and
#: numbers it — :func:`can_transition` does not allow it, so no plain status write can
#: skip that); an open invoice is paid, voided or written off; a written-off one may still
#: be paid or voided. A draft is never voided: it has no number and no obligations, so it
#: is deleted instead.
_TRANSITIONS: dict[InvoiceStatus, frozenset[InvoiceStatus]] = {
    InvoiceStatus.DRAFT: frozenset(),
    InvoiceStatus.OPEN: frozenset(
        {InvoiceStatus.PAID, InvoiceStatus.VOID, InvoiceStatus.UNCOLLECTIBLE}
    ),
    InvoiceStatus.UNCOLLECTIBLE: frozenset({InvoiceStatus.PAID, InvoiceStatus.VOID}),
    InvoiceStatus.PAID: frozenset(),
    InvoiceStatus.VOID: frozenset(),
}


def can_transition(current: InvoiceStatus, target: InvoiceStatus) -> bool:
    """Whether a status write may move an invoice from ``current`` to ``target``."""
    return target in _TRANSITIONS[InvoiceStatus(current)]


def format_number(prefix: str, sequence: int) -> str:
    """``ML-000001``: zero-padded so numbers sort as text, widening past a million."""
    return f"{prefix}-{sequence:06d}"


def minor_to_major(amount_minor: int, currency: str = "USD") -> Decimal:
    """Integer minor units → a ``Decimal`` in major units with the currency's places
    (``1234`` cents → ``Decimal("12.34")``), exactly."""
    exp = minor_unit_exponent(currency)
    return Decimal(amount_minor).scaleb(-exp, context=CTX)


@dataclass(frozen=True, slots=True)
class LineUsage:
    """Exact sums of one user's events for one (provider, model) — the input to a line."""

    provider: str
    model: str
    requests: int
    prompt_tokens: int
    completion_tokens: int
    provider_cost: Decimal
    markup: Decimal
    charge: Decimal
    unpriced_requests: int = 0
    #: The flat per-request fees inside ``markup``.
    flat_fees: Decimal = Decimal(0)
    #: Usage that arrived after the invoice of its own period was finalized.
    late: bool = False


@dataclass(frozen=True, slots=True)
class InvoiceLine:
    provider: str
    model: str
    requests: int
    prompt_tokens: int
    completion_tokens: int
    provider_cost: Decimal
    markup: Decimal
    charge: Decimal
    amount_cents: int
    unpriced_requests: int = 0
    late: bool = False
    #: The flat per-request fees inside ``markup``.
    flat_fees: Decimal = Decimal(0)

    @property
    def description(self) -> str:
        late = " (late usage from an earlier period)" if self.late else ""
        name = f"{self.provider}/{self.model}" if self.provider else self.model
        return f"{name or 'usage'}: {self.requests} requests{late}"


@dataclass(frozen=True, slots=True)
class Invoice:
    id: str
    project_id: str
    environment: Environment
    end_user_id: str
    period_start: date
    period_end: date
    status: InvoiceStatus
    currency: str
    lines: tuple[InvoiceLine, ...] = ()
    number: str | None = None
    created_at: datetime | None = None
    finalized_at: datetime | None = None
    stripe_invoice_id: str | None = None
    hosted_invoice_url: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def total_cents(self) -> int:
        return total_minor(self.lines)

    @property
    def provider_cost(self) -> Decimal:
        return _exact_sum(line.provider_cost for line in self.lines)

    @property
    def margin(self) -> Decimal:
        """What the lines charge beyond what the provider costs, exactly (in the money
        context, never the thread's ambient one, which another library may narrow)."""
        return CTX.subtract(_exact_sum(line.charge for line in self.lines), self.provider_cost)

    @property
    def unpriced_models(self) -> tuple[str, ...]:
        return tuple(sorted({line.model for line in self.lines if line.unpriced_requests}))


def compute_lines(usages: Iterable[LineUsage], currency: str = "USD") -> tuple[InvoiceLine, ...]:
    """One line per input, in a stable order (on-time before late, then provider, model),
    each rounded once."""
    lines = [
        InvoiceLine(
            provider=u.provider,
            model=u.model,
            requests=u.requests,
            prompt_tokens=u.prompt_tokens,
            completion_tokens=u.completion_tokens,
            provider_cost=u.provider_cost,
            markup=u.markup,
            charge=u.charge,
            amount_cents=round_to_minor(u.charge, currency),
            unpriced_requests=u.unpriced_requests,
            late=u.late,
            flat_fees=u.flat_fees,
        )
        for u in usages
        if u.requests
    ]
    return tuple(sorted(lines, key=lambda line: (line.late, line.provider, line.model)))


def _exact_sum(amounts: Iterable[Decimal]) -> Decimal:
    total = Decimal(0)
    for amount in amounts:
        total = CTX.add(total, amount)
    return total


def total_minor(lines: Iterable[InvoiceLine]) -> int:
    return sum(line.amount_cents for line in lines)
