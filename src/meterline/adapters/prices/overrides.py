"""Per-project price overrides: which one applies, and the exact cost it gives.

An operator overrides the price table when they negotiated a different rate, run a
model the table does not know (a fine-tune, a self-hosted model), or the table is wrong.
The override therefore always wins over the table, and its arithmetic is exact: prices
are USD per million tokens, so the cost is an integer-times-decimal sum shifted by
10⁻⁶, which ``Decimal`` represents without rounding.
"""

from __future__ import annotations

import decimal
from collections.abc import Callable, Iterable
from decimal import Decimal

from meterline.ports import PriceOverride

__all__ = ["override_cost", "pick_override"]

#: Exact arithmetic: override prices are validated amounts (≤ 10⁶, ≤ 30 places) and token
#: counts integers, so 200 digits is ample; ``Inexact`` is trapped so nothing is rounded.
_EXACT = decimal.Context(
    prec=200,
    Emin=decimal.MIN_EMIN,
    Emax=decimal.MAX_EMAX,
    traps=[decimal.InvalidOperation, decimal.Inexact, decimal.Overflow],
)


def pick_override(
    overrides: Iterable[PriceOverride],
    *,
    model: str,
    bare_model: str,
    providers: frozenset[str],
    canonical: Callable[[str], str | None] = lambda _name: None,
) -> PriceOverride | None:
    """The override for this call, or ``None``.

    An override names a model exactly as the request did (``openai/gpt-4o``) or without
    its provider prefix (``gpt-4o``). Its provider ``""`` matches any provider; otherwise
    it must be one of ``providers`` (the request's names for its provider, lower-case),
    directly or through ``canonical`` (so an override for ``gemini`` applies to ``google``).
    The most specific match wins: a named provider beats ``""``, the full model name
    beats the bare one; among equals the first listed.
    """
    best: PriceOverride | None = None
    best_rank = (-1, -1)
    for override in overrides:
        if override.model not in (model, bare_model):
            continue
        wanted = override.provider.strip().lower()
        if wanted and wanted not in providers and canonical(wanted) not in providers:
            continue
        rank = (1 if wanted else 0, 1 if override.model == model else 0)
        if rank > best_rank:
            best, best_rank = override, rank
    return best


def override_cost(
    override: PriceOverride,
    *,
    prompt_tokens: int,
    completion_tokens: int,
    cached_tokens: int,
) -> Decimal:
    """USD for one call, exactly.

    ``prompt_tokens`` includes ``cached_tokens`` (the OpenAI convention the gateway
    normalizes to); cached tokens are charged at ``cached_input_per_mtok`` when set, else
    at the input price, and never twice.
    """
    cached = min(cached_tokens, prompt_tokens)
    uncached = prompt_tokens - cached
    cached_price = (
        override.input_per_mtok
        if override.cached_input_per_mtok is None
        else override.cached_input_per_mtok
    )
    total = _EXACT.add(
        _EXACT.add(
            _EXACT.multiply(Decimal(uncached), override.input_per_mtok),
            _EXACT.multiply(Decimal(cached), cached_price),
        ),
        _EXACT.multiply(Decimal(completion_tokens), override.output_per_mtok),
    )
    return _EXACT.scaleb(total, -6)
