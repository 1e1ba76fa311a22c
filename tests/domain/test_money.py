"""Money parsing, nano-dollar storage units and minor-unit rounding (domain/money.py)."""

from __future__ import annotations

import decimal
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meterline.domain.money import (
    MAX_AMOUNT,
    MAX_DECIMAL_PLACES,
    InvalidMoney,
    from_nanos,
    minor_unit_exponent,
    money_str,
    parse_money,
    quantize_nano,
    round_to_minor,
    to_nanos,
)


def _within_places(amount: Decimal) -> bool:
    """Amounts ``parse_money`` accepts have at most ``MAX_DECIMAL_PLACES`` places."""
    exponent = amount.as_tuple().exponent
    return isinstance(exponent, int) and exponent >= -MAX_DECIMAL_PLACES


SETTINGS = settings(max_examples=200, deadline=None)

#: Nano-dollar integers spanning zero, cents, dollars and well past a single amount's cap.
nanos_ints = st.integers(min_value=-(10**30), max_value=10**30)
#: Any amount ``parse_money`` accepts: up to 10⁶, up to 30 places, either sign.
amounts: st.SearchStrategy[Decimal] = st.decimals(
    min_value=-MAX_AMOUNT, max_value=MAX_AMOUNT, places=None, allow_nan=False, allow_infinity=False
).filter(_within_places)


def _round_half_even(value: Fraction) -> int:
    """Independent half-even rounding of a rational to an integer."""
    floor = value.numerator // value.denominator
    rest = value - floor
    if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and floor % 2 == 1):
        return floor + 1
    return floor


def _round_half_away(value: Fraction) -> int:
    """Independent half-away-from-zero rounding of a rational to an integer."""
    magnitude = abs(value)
    floor = magnitude.numerator // magnitude.denominator
    if magnitude - floor >= Fraction(1, 2):
        floor += 1
    return floor if value >= 0 else -floor


# ---------------------------------------------------------------- parse_money


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (0, Decimal(0)),
        (12, Decimal(12)),
        ("0", Decimal(0)),
        ("1.50", Decimal("1.50")),
        ("  2.5  ", Decimal("2.5")),
        ("+3", Decimal(3)),
        (".5", Decimal("0.5")),
        ("5.", Decimal(5)),
        ("1e3", Decimal(1000)),
        ("1E-9", Decimal("0.000000001")),
        ("0.000000000123", Decimal("0.000000000123")),
        (Decimal("7.25"), Decimal("7.25")),
        ("1000000", MAX_AMOUNT),
        ("-0", Decimal(0)),
        ("0e999999", Decimal(0)),
        ("1" + "0" * 40 + "e-40", Decimal(1)),  # trailing zeros do not count as places
        ("1e-30", Decimal("1e-30")),
    ],
)
def test_parse_money_accepts(raw: object, expected: Decimal) -> None:
    result = parse_money(raw)
    assert isinstance(result, Decimal)
    assert result == expected


@pytest.mark.parametrize(
    "raw",
    [
        1.5,  # float: its binary value is already inexact
        0.1,
        0.0,
        float("nan"),
        float("inf"),
        True,
        False,
        None,
        [],
        {},
        b"1",
        Fraction(1, 3),
        "",
        "   ",
        "abc",
        "1.2.3",
        "1,000",
        "1_000",  # Decimal() alone accepts this
        "١٢",  # non-ASCII digits, which Decimal() alone accepts
        "0x10",
        "$5",
        "5 USD",
        "1e",
        "e5",
        "--1",
        "NaN",
        "nan",
        "sNaN",
        "Infinity",
        "-Infinity",
        "inf",
        "1" * 65,  # absurdly long text
        "1e999999999",
        "1e-999999999",  # 12 characters, a billion decimal places
        "1.5e-30",  # 31 places
        "1000000.000000001",
        Decimal("NaN"),
        Decimal("sNaN"),
        Decimal("Infinity"),
        Decimal("-Infinity"),
        Decimal("1000000.01"),
        Decimal("1e-31"),
        10**6 + 1,
        10**400,
        "-1",
        -1,
        Decimal("-0.000000001"),
    ],
)
def test_parse_money_refuses(raw: object) -> None:
    with pytest.raises(InvalidMoney):
        parse_money(raw)


def test_invalid_money_is_a_value_error_and_names_the_field() -> None:
    with pytest.raises(ValueError, match="cost_usd"):
        parse_money("x", field="cost_usd")


@pytest.mark.parametrize("raw", ["-1", -1, Decimal("-0.5"), "-1000000"])
def test_parse_money_negative_allowed_when_asked(raw: object) -> None:
    assert parse_money(raw, allow_negative=True) == Decimal(str(raw))


def test_parse_money_negative_still_bounded() -> None:
    with pytest.raises(InvalidMoney):
        parse_money("-1000000.5", allow_negative=True)
    with pytest.raises(InvalidMoney):
        parse_money("-Infinity", allow_negative=True)


@SETTINGS
@given(st.floats(allow_nan=True, allow_infinity=True))
def test_parse_money_refuses_every_float(value: float) -> None:
    with pytest.raises(InvalidMoney):
        parse_money(value)


@SETTINGS
@given(st.integers(min_value=0, max_value=10**6))
def test_parse_money_int_is_exact(value: int) -> None:
    assert parse_money(value) == value


@SETTINGS
@given(amounts)
def test_parse_money_str_and_decimal_agree(amount: Decimal) -> None:
    if amount < 0:
        with pytest.raises(InvalidMoney):
            parse_money(str(amount))
        assert parse_money(str(amount), allow_negative=True) == amount
    else:
        assert parse_money(str(amount)) == amount
        assert parse_money(amount) == amount


@SETTINGS
@given(st.text(max_size=20))
def test_parse_money_never_raises_anything_but_invalid_money(text: str) -> None:
    try:
        result = parse_money(text, allow_negative=True)
    except InvalidMoney:
        return
    assert isinstance(result, Decimal)
    assert result.is_finite()
    assert abs(result) <= MAX_AMOUNT


def test_parse_money_ignores_ambient_decimal_context() -> None:
    with decimal.localcontext() as ctx:
        ctx.prec = 3
        ctx.traps[decimal.InvalidOperation] = False
        assert parse_money("123456.789123") == Decimal("123456.789123")
        with pytest.raises(InvalidMoney):
            parse_money("not a number")


# ---------------------------------------------------------------- nanos


@pytest.mark.parametrize(
    ("amount", "nanos"),
    [
        (Decimal(0), 0),
        (Decimal("0.000000001"), 1),
        (Decimal("1"), 1_000_000_000),
        (Decimal("0.01"), 10_000_000),
        (Decimal("-2.5"), -2_500_000_000),
        (Decimal("1000000"), 10**15),
        # Finer than 10⁻⁹: half-even, once.
        (Decimal("0.0000000005"), 0),
        (Decimal("0.0000000015"), 2),
        (Decimal("0.0000000025"), 2),
        (Decimal("0.00000000250000001"), 3),
        (Decimal("0.0000000024999999"), 2),
        (Decimal("-0.0000000005"), 0),
        (Decimal("-0.0000000015"), -2),
    ],
)
def test_to_nanos_examples(amount: Decimal, nanos: int) -> None:
    assert to_nanos(amount) == nanos


@SETTINGS
@given(nanos_ints)
def test_nanos_round_trip_from_int(nanos: int) -> None:
    dollars = from_nanos(nanos)
    assert isinstance(dollars, Decimal)
    assert Fraction(dollars) == Fraction(nanos, 10**9)
    assert to_nanos(dollars) == nanos


@SETTINGS
@given(nanos_ints)
def test_nanos_round_trip_from_decimal(nanos: int) -> None:
    amount = Decimal(nanos).scaleb(-9, context=decimal.Context(prec=100))
    assert from_nanos(to_nanos(amount)) == amount


def test_from_nanos_exact_for_huge_values() -> None:
    nanos = 10**70 + 1
    assert Fraction(from_nanos(nanos)) == Fraction(nanos, 10**9)


@SETTINGS
@given(
    st.one_of(
        nanos_ints,
        st.integers(-(10**75), 10**75),
        st.sampled_from([0, 10**60 - 1, 10**60, 10**60 + 1, -(10**60) + 1, -(10**60)]),
    )
)
def test_from_nanos_is_the_integer_at_exponent_minus_nine(nanos: int) -> None:
    """Same digits, exponent -9, whatever the size: the fast path (a multiplication in
    the money context) and the digit copy beyond its precision give one representation."""
    sign = 1 if nanos < 0 else 0
    digits = tuple(int(d) for d in str(abs(nanos)))
    assert from_nanos(nanos).as_tuple() == (sign, digits, -9)


@SETTINGS
@given(amounts)
def test_to_nanos_is_one_half_even_rounding(amount: Decimal) -> None:
    expected = _round_half_even(Fraction(amount) * 10**9)
    assert to_nanos(amount) == expected
    assert quantize_nano(amount) == from_nanos(expected)
    # Already at nano precision: a second rounding changes nothing.
    assert to_nanos(quantize_nano(amount)) == expected


def test_quantize_nano_ignores_ambient_context() -> None:
    with decimal.localcontext() as ctx:
        ctx.prec = 2
        ctx.rounding = decimal.ROUND_DOWN
        assert quantize_nano(Decimal("123.4567890125")) == Decimal("123.456789012")
        assert to_nanos(Decimal("123.4567890135")) == 123_456_789_014


# ---------------------------------------------------------------- minor units


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [
        (Decimal("0.005"), "USD", 1),
        (Decimal("-0.005"), "USD", -1),
        (Decimal("0.0049999"), "USD", 0),
        (Decimal("-0.0049999"), "USD", 0),
        (Decimal("0.015"), "USD", 2),  # away from zero, not half-even
        (Decimal("0.025"), "USD", 3),
        (Decimal("1.234999999"), "USD", 123),
        (Decimal("1.235"), "usd", 124),
        (Decimal("0"), "USD", 0),
        (Decimal("12.5"), "JPY", 13),
        (Decimal("-12.5"), "JPY", -13),
        (Decimal("12.49"), "JPY", 12),
        (Decimal("1.0005"), "KWD", 1001),
        (Decimal("-1.0005"), "KWD", -1001),
        (Decimal("1.00049"), "KWD", 1000),
        (Decimal("2.5"), "EUR", 250),
    ],
)
def test_round_to_minor_examples(amount: Decimal, currency: str, minor: int) -> None:
    assert round_to_minor(amount, currency) == minor


def test_minor_unit_exponents() -> None:
    assert minor_unit_exponent("USD") == 2
    assert minor_unit_exponent("eur") == 2
    assert minor_unit_exponent("JPY") == 0
    assert minor_unit_exponent("KWD") == 3
    assert minor_unit_exponent("BHD") == 3
    assert minor_unit_exponent("XYZ") == 2


@SETTINGS
@given(amounts, st.sampled_from(["USD", "EUR", "JPY", "KRW", "KWD", "BHD"]))
def test_round_to_minor_is_half_away_from_zero(amount: Decimal, currency: str) -> None:
    exp = minor_unit_exponent(currency)
    assert round_to_minor(amount, currency) == _round_half_away(Fraction(amount) * 10**exp)
    # Symmetric in sign.
    assert round_to_minor(-amount, currency) == -round_to_minor(amount, currency)


def test_round_to_minor_ignores_ambient_context() -> None:
    with decimal.localcontext() as ctx:
        ctx.prec = 2
        ctx.rounding = decimal.ROUND_FLOOR
        assert round_to_minor(Decimal("123456.785")) == 12345679


# ---------------------------------------------------------------- money_str


@pytest.mark.parametrize(
    ("amount", "text"),
    [
        (Decimal(0), "0"),
        (Decimal("0E-9"), "0"),
        (Decimal("-0"), "0"),
        (Decimal("-0.0000000001"), "0"),
        (Decimal("1.50"), "1.5"),
        (Decimal("100"), "100"),
        (Decimal("1E+3"), "1000"),
        (Decimal("1E-9"), "0.000000001"),
        (Decimal("1.2345678905"), "1.23456789"),  # half-even at nine places
        (Decimal("1.2345678915"), "1.234567892"),
        (Decimal("-2.5"), "-2.5"),
        (Decimal("1000000.000000001"), "1000000.000000001"),
    ],
)
def test_money_str_examples(amount: Decimal, text: str) -> None:
    assert money_str(amount) == text


@SETTINGS
@given(nanos_ints)
def test_money_str_round_trips_nano_amounts(nanos: int) -> None:
    amount = from_nanos(nanos)
    text = money_str(amount)
    assert "e" not in text.lower()
    assert Decimal(text) == amount
    if abs(amount) <= MAX_AMOUNT:
        assert parse_money(text, allow_negative=True) == amount
    if "." in text:
        assert not text.endswith("0")
        assert len(text.split(".")[1]) <= 9


@SETTINGS
@given(amounts)
def test_money_str_is_the_nano_rounding(amount: Decimal) -> None:
    text = money_str(amount)
    assert "e" not in text.lower()
    assert Decimal(text) == quantize_nano(amount)


def test_money_text_is_accepted_up_to_64_characters() -> None:
    at_limit = "1." + "0" * 62  # 64 characters, the value 1
    assert parse_money(at_limit) == 1
    assert parse_money(f"  {at_limit}  ") == 1  # surrounding spaces do not count
    with pytest.raises(InvalidMoney, match="decimal string or number"):
        parse_money(at_limit + "0")
