"""Exact money: parsing, nano-dollar storage units and minor-unit rounding.

Money is ``Decimal`` in memory and an integer number of nano-dollars (10⁻⁹ USD) at
rest, so sums are exact on every database. Values never pass through ``float``: JSON
numbers are parsed straight to ``Decimal`` (the web layer hands us the literal text),
and a ``float`` given to :func:`parse_money` is refused rather than silently widened.
"""

from __future__ import annotations

import decimal
import re
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal

__all__ = [
    "CTX",
    "MAX_AMOUNT",
    "MAX_DECIMAL_PLACES",
    "MINOR_UNITS",
    "NANO",
    "InvalidMoney",
    "from_nanos",
    "minor_unit_exponent",
    "money_str",
    "parse_money",
    "quantize_nano",
    "round_to_minor",
    "to_nanos",
]

#: A private context wide enough for any amount we accept; the global context is
#: never touched (other libraries in the process may rely on it).
CTX = decimal.Context(prec=60, rounding=ROUND_HALF_EVEN, Emin=-999999, Emax=999999)

NANO = Decimal("0.000000001")

#: Largest single amount accepted (one million dollars): keeps a row's nano-dollars far
#: inside a signed 64-bit column (whose limit is about 9.2 billion dollars). Sums are
#: computed by the database as NUMERIC/arbitrary-precision integers.
MAX_AMOUNT = Decimal("1000000")

#: Finest accepted amount: 10⁻³⁰ (trailing zeros do not count). Far below a nano-dollar,
#: and above the 17 significant digits of any float a client may have printed for a tiny
#: cost; it bounds the digits exact arithmetic needs (``1e-999999999`` is 12 characters).
MAX_DECIMAL_PLACES = 30

#: A plain decimal literal in ASCII: ``Decimal()`` alone would also take ``1_000``,
#: non-ASCII digits (``"١٢"``), ``Infinity`` and ``NaN``.
_DECIMAL_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")

#: ISO 4217 minor-unit exponents for currencies that differ from two decimals.
MINOR_UNITS: dict[str, int] = {
    "JPY": 0,
    "KRW": 0,
    "VND": 0,
    "CLP": 0,
    "ISK": 0,
    "UGX": 0,
    "XAF": 0,
    "XOF": 0,
    "BHD": 3,
    "KWD": 3,
    "OMR": 3,
    "JOD": 3,
    "TND": 3,
}


class InvalidMoney(ValueError):
    """An amount that is not a finite, non-negative decimal within bounds."""


def parse_money(value: object, *, field: str = "amount", allow_negative: bool = False) -> Decimal:
    """Parse a JSON number or decimal string into ``Decimal`` without using ``float``.

    ``int``, ``str`` and ``Decimal`` are accepted; ``float`` is refused because its
    binary value is already inexact (the web layer parses JSON numbers as ``Decimal``).
    ``bool`` is refused though it is an ``int``.
    """
    if isinstance(value, bool) or isinstance(value, float):
        raise InvalidMoney(f"{field}: must be a decimal string or number")
    if isinstance(value, Decimal):
        amount = value
    elif isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, str):
        text = value.strip()
        if not text or len(text) > 64:
            raise InvalidMoney(f"{field}: must be a decimal string or number")
        if _DECIMAL_TEXT.fullmatch(text) is None:
            raise InvalidMoney(f"{field}: {value!r} is not a decimal number")
        try:
            amount = Decimal(text)
        except decimal.InvalidOperation:  # pragma: no cover - the pattern admits only literals
            raise InvalidMoney(f"{field}: {value!r} is not a decimal number") from None
    else:
        raise InvalidMoney(f"{field}: must be a decimal string or number")
    if not amount.is_finite():
        raise InvalidMoney(f"{field}: must be finite")
    if amount < 0 and not allow_negative:
        raise InvalidMoney(f"{field}: must not be negative")
    if amount.copy_abs() > MAX_AMOUNT:  # copy_abs: no context, so no Overflow
        raise InvalidMoney(f"{field}: must not exceed {MAX_AMOUNT}")
    if amount.is_zero():
        return Decimal(0)
    if _decimal_places(amount) > MAX_DECIMAL_PLACES:
        raise InvalidMoney(f"{field}: more than {MAX_DECIMAL_PLACES} decimal places")
    return amount


def _decimal_places(amount: Decimal) -> int:
    """Decimal places of a finite, non-zero ``amount``, not counting trailing zeros."""
    _, digits, exponent = amount.as_tuple()
    assert isinstance(exponent, int)  # finite, checked by the caller
    trailing = 0
    for digit in reversed(digits):
        if digit:
            break
        trailing += 1
    return max(0, -(exponent + trailing))


def quantize_nano(amount: Decimal) -> Decimal:
    """Round once to 10⁻⁹, half-even: the precision at which money is stored."""
    return amount.quantize(NANO, rounding=ROUND_HALF_EVEN, context=CTX)


def to_nanos(amount: Decimal) -> int:
    """Dollars → integer nano-dollars (rounded half-even if finer than 10⁻⁹)."""
    return int(quantize_nano(amount).scaleb(9, context=CTX))


#: Below this many nano-dollars (in magnitude) a product in ``CTX`` is exact: it has
#: fewer digits than the context's precision.
_EXACT_IN_CTX = 10**60


def from_nanos(nanos: int) -> Decimal:
    """Integer nano-dollars → dollars, exactly (for any size: no context rounding).

    The result always has exponent -9 (``5`` → ``5E-9``, ``0`` → ``0E-9``). Within the
    context's precision that is one multiplication in C; beyond it (never for a stored
    amount) the digits are copied."""
    if -_EXACT_IN_CTX < nanos < _EXACT_IN_CTX:
        return CTX.multiply(nanos, NANO)
    sign, digits, _ = Decimal(nanos).as_tuple()
    return Decimal((sign, digits, -9))


def minor_unit_exponent(currency: str) -> int:
    return MINOR_UNITS.get(currency.upper(), 2)


def round_to_minor(amount: Decimal, currency: str = "USD") -> int:
    """Round to the currency's minor unit, half away from zero; returns minor units.

    ``ROUND_HALF_UP`` in ``decimal`` rounds ties away from zero for both signs.
    """
    exp = minor_unit_exponent(currency)
    scaled = amount.scaleb(exp, context=CTX)
    return int(scaled.quantize(Decimal(1), rounding=ROUND_HALF_UP, context=CTX))


def money_str(amount: Decimal) -> str:
    """A plain decimal string (no exponent) with at most nine decimal places."""
    q = quantize_nano(amount)
    text = format(q, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text
