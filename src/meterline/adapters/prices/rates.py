"""Per-token rates of a genai-prices model price, memoized: the table's arithmetic without
its per-call bookkeeping.

``genai_prices.calc_price`` spends tens of microseconds per call resolving the price's
units against its registry, validating them and decomposing the usage into "leaf" counts
(uncached input = input − cache reads, …) before a handful of ``Decimal`` operations. For
one model price that preparation gives the same answer every time, so :class:`RateMemo`
does it once per ``ModelPrice`` object and then repeats only the arithmetic, in the
library's own order and with its own operations (``price × count / per``, summed from
``Decimal(0)`` in the thread's decimal context), so the result is the same ``Decimal``,
digits and exponent, as ``calc_price`` returns.

That holds only when every price is a plain ``Decimal`` and every leaf count is a linear
function of (input, output, cache-read) tokens, which is checked when the rates are built
(and proven against ``calc_price`` for every model of the table by the property tests in
``tests/adapters/prices/test_rates.py``). Anything else (tiered prices, units the check
does not understand, a library whose internals moved) is not memoized: :meth:`cost`
returns ``None`` and the caller asks ``calc_price`` itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from genai_prices import Usage, data_snapshot

__all__ = ["LinearPrice", "RateMemo"]

#: Model prices remembered at once; the table holds a few thousand, a call names a few.
_MAX_ENTRIES = 4096

#: (base, per input token, per output token, per cache-read token) of one leaf count.
_Coefficients = tuple[int, int, int, int]

#: Usages the leaf counts are sampled at to find their coefficients, and a few more to
#: confirm the counts are linear (cache reads never exceed input, as the adapter ensures).
_PROBES = ((0, 0, 0), (1, 0, 0), (0, 1, 0), (1, 0, 1))
_CHECKS = ((7, 5, 3), (1_000_003, 99, 999_999), (12, 0, 12))


@dataclass(frozen=True, slots=True)
class _Term:
    price: Decimal
    per: int
    counts: _Coefficients


@dataclass(frozen=True, slots=True)
class LinearPrice:
    """One model price whose cost is linear in the token counts."""

    terms: tuple[_Term, ...]

    def cost(self, input_tokens: int, output_tokens: int, cache_read_tokens: int) -> Decimal | None:
        """``calc_price(...).total_price`` for this usage, or ``None`` if a leaf count
        would be negative (the library raises then; let it)."""
        total = Decimal(0)
        for term in self.terms:
            base, per_in, per_out, per_cached = term.counts
            count = (
                base
                + per_in * input_tokens
                + per_out * output_tokens
                + per_cached * cache_read_tokens
            )
            if count < 0:
                return None
            total += term.price * Decimal(count) / term.per
        return total


def _leaf_counts(resolved: Any, input_tokens: int, output_tokens: int, cached: int) -> Any:
    from genai_prices import types

    usage = Usage(input_tokens=input_tokens, output_tokens=output_tokens, cache_read_tokens=cached)
    return types._compute_registry_priced_counts(resolved, Usage.from_raw(usage))


def linear_price(model_price: Any) -> LinearPrice | None:
    """The memoizable form of ``model_price``, or ``None`` when it is not linear or cannot
    be analysed (then ``calc_price`` is the only authority)."""
    try:
        from genai_prices import types
        from genai_prices.units import _get_registry
        from genai_prices.validation import validate_priced_units

        registry = _get_registry()
        resolved = types._collect_resolved_model_prices(model_price, registry)
        validate_priced_units(tuple(unit for unit, _ in resolved), registry)
        samples = [_leaf_counts(resolved, *probe) for probe in _PROBES]
        terms: list[_Term] = []
        for unit, price in resolved:
            if type(price) is not Decimal or not price.is_finite() or price < 0:
                return None  # tiered prices pick their rate by total input: not linear
            if type(unit.per) is not int or unit.per <= 0:
                return None
            zero, one_in, one_out, in_and_cached = (s[unit.usage_key] for s in samples)
            if any(type(v) is not int for v in (zero, one_in, one_out, in_and_cached)):
                return None
            counts = (zero, one_in - zero, one_out - zero, in_and_cached - one_in)
            terms.append(_Term(price, unit.per, counts))
        for probe in _CHECKS:
            actual = _leaf_counts(resolved, *probe)
            for term, (unit, _) in zip(terms, resolved, strict=True):
                base, a, b, c = term.counts
                if actual[unit.usage_key] != base + a * probe[0] + b * probe[1] + c * probe[2]:
                    return None
        return LinearPrice(tuple(terms))
    except Exception:  # internals moved, or a price the analysis does not understand
        return None


class RateMemo:
    """``(provider, model, timestamp)`` → the model's linear price, if it has one.

    The lookup itself stays the library's (``find_provider_model`` and ``get_prices``,
    both cheap and cached by it), so the provider and the price period (conditional
    prices by date or time of day) are exactly the ones ``calc_price`` would pick; only
    the analysis of the resulting ``ModelPrice`` object is remembered, keyed by identity.
    A new snapshot (a price update) brings new objects, hence fresh analyses.
    """

    def __init__(self, analyse: Callable[[Any], LinearPrice | None] = linear_price) -> None:
        self._analyse = analyse
        self._memo: dict[int, tuple[Any, LinearPrice | None]] = {}

    def lookup(
        self, model_ref: str, provider_id: str | None, at: datetime
    ) -> tuple[str, LinearPrice | None]:
        """(genai-prices provider id, linear price or ``None``) for this call; raises
        ``LookupError`` exactly when ``calc_price`` would not find the model."""
        snapshot = data_snapshot.get_snapshot()
        provider, model = snapshot.find_provider_model(model_ref, None, provider_id, None)
        if provider.id == "groq" and model.id.startswith("whisper"):
            return provider.id, None  # the library rewrites these usages itself
        model_price = model.get_prices(at)
        hit = self._memo.get(id(model_price))
        if hit is not None and hit[0] is model_price:
            return provider.id, hit[1]
        linear = self._analyse(model_price)
        if len(self._memo) >= _MAX_ENTRIES:
            self._memo.clear()
        # The object is kept with its analysis, so its id cannot be reused meanwhile.
        self._memo[id(model_price)] = (model_price, linear)
        return provider.id, linear
