"""Markup pricing: what an end user is charged for one metered call.

``charge = provider_cost × (1 + markup_percentage / 100) + flat_rate_per_request``,
kept at nano-dollar precision on the event (rounding to cents happens once per
invoice line, in :mod:`meterline.domain.invoices`).
"""

from __future__ import annotations

import decimal
from dataclasses import dataclass
from decimal import Decimal

from meterline.domain.money import CTX, InvalidMoney, quantize_nano

__all__ = ["Charge", "Pricing", "compute_charge", "effective_pricing", "margin"]

#: Exact arithmetic: wide enough for any amounts ``parse_money`` accepts (≤ 10⁶, ≤ 30
#: places), and ``Inexact`` is trapped so a result is exact or an error, never silently
#: rounded before the one rounding to 10⁻⁹. (``CTX``'s 60 digits could round first.)
_EXACT = decimal.Context(
    prec=200,
    rounding=decimal.ROUND_HALF_EVEN,
    Emin=decimal.MIN_EMIN,
    Emax=decimal.MAX_EMAX,
    traps=[decimal.InvalidOperation, decimal.Inexact, decimal.Overflow],
)


@dataclass(frozen=True, slots=True)
class Pricing:
    """Markup percentage and flat fee per request, both ``Decimal`` and non-negative."""

    markup_percentage: Decimal = Decimal(0)
    flat_rate_per_request: Decimal = Decimal(0)


@dataclass(frozen=True, slots=True)
class Charge:
    """One event's money, each part at nano-dollar precision.

    ``markup`` covers percentage markup and flat fee together, so that
    ``charge == provider_cost + markup`` always holds exactly; ``flat_fee`` is the part of
    ``markup`` that is the per-request fee (shown apart on invoice lines).
    """

    provider_cost: Decimal
    markup: Decimal
    charge: Decimal
    flat_fee: Decimal = Decimal(0)


def effective_pricing(
    project_default: Pricing,
    plan_markup: Decimal | None,
    plan_flat_fee: Decimal | None,
) -> Pricing:
    """A plan's markup and fee override the project default, each independently."""
    return Pricing(
        markup_percentage=(
            project_default.markup_percentage if plan_markup is None else plan_markup
        ),
        flat_rate_per_request=(
            project_default.flat_rate_per_request if plan_flat_fee is None else plan_flat_fee
        ),
    )


def compute_charge(provider_cost: Decimal, pricing: Pricing) -> Charge:
    """Price one call. Exact in ``Decimal``; quantized once to 10⁻⁹ for storage.

    Every step uses an explicit context, never the thread's ambient one (which another
    library may have narrowed). Raises :class:`InvalidMoney` for inputs so precise that
    the exact result would need more than 200 digits (``parse_money`` never yields them).
    """
    try:
        factor = _EXACT.add(Decimal(1), _EXACT.scaleb(pricing.markup_percentage, -2))
        raw = _EXACT.add(_EXACT.multiply(provider_cost, factor), pricing.flat_rate_per_request)
    except decimal.Inexact:
        raise InvalidMoney("amounts too precise to price exactly") from None
    cost = quantize_nano(provider_cost)
    charge = quantize_nano(raw)
    return Charge(
        provider_cost=cost,
        markup=CTX.subtract(charge, cost),
        charge=charge,
        flat_fee=quantize_nano(pricing.flat_rate_per_request),
    )


def margin(revenue: Decimal, provider_cost: Decimal) -> Decimal:
    """Revenue minus provider cost, in the explicit money context."""
    return CTX.subtract(revenue, provider_cost)
