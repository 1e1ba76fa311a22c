"""Markup pricing (domain/pricing.py), checked against exact rational arithmetic."""

from __future__ import annotations

import decimal
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meterline.domain.money import MAX_AMOUNT, MAX_DECIMAL_PLACES, InvalidMoney, parse_money
from meterline.domain.pricing import Charge, Pricing, compute_charge, effective_pricing, margin


def _within_places(amount: Decimal) -> bool:
    """Amounts ``parse_money`` accepts have at most ``MAX_DECIMAL_PLACES`` places."""
    exponent = amount.as_tuple().exponent
    return isinstance(exponent, int) and exponent >= -MAX_DECIMAL_PLACES


SETTINGS = settings(max_examples=200, deadline=None)


def _money(
    max_value: Decimal = MAX_AMOUNT, places: int | None = None
) -> st.SearchStrategy[Decimal]:
    """Non-negative amounts as ``parse_money`` admits them."""
    return (
        st.decimals(
            min_value=0, max_value=max_value, places=places, allow_nan=False, allow_infinity=False
        )
        .filter(_within_places)
        .map(parse_money)
    )


#: A mix of realistic and adversarial amounts: many places, big and tiny values.
costs = st.one_of(_money(Decimal(10), places=12), _money(places=None), _money(places=30))
markups = st.one_of(
    _money(Decimal(1000), places=4), _money(places=None), _money(Decimal(100), places=30)
)
fees = st.one_of(_money(Decimal(1), places=6), _money(places=None), _money(places=30))


def _half_even_nano(value: Fraction) -> Fraction:
    scaled = value * 10**9
    floor = scaled.numerator // scaled.denominator
    rest = scaled - floor
    if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and floor % 2 == 1):
        floor += 1
    return Fraction(floor, 10**9)


def _expected_charge(cost: Decimal, pricing: Pricing) -> Fraction:
    """The rule of DESIGN.md §3, restated with exact rationals."""
    raw = Fraction(cost) * (1 + Fraction(pricing.markup_percentage) / 100) + Fraction(
        pricing.flat_rate_per_request
    )
    return _half_even_nano(raw)


@pytest.mark.parametrize(
    ("cost", "markup", "fee", "charge"),
    [
        ("0", "0", "0", "0"),
        ("1", "0", "0", "1"),
        ("1", "20", "0", "1.2"),
        ("0.00725", "20", "0", "0.0087"),
        ("0.00725", "20", "0.01", "0.0187"),
        ("0", "50", "0.001", "0.001"),
        ("0.000000001", "50", "0", "0.000000002"),  # 1.5 nano → 2 (half-even)
        ("0.000000003", "50", "0", "0.000000004"),  # 4.5 nano → 4 (half-even)
        ("0.000000005", "50", "0", "0.000000008"),  # 7.5 nano → 8
        ("0.0000000005", "0", "0", "0"),  # 0.5 nano → 0
        ("3", "33.3333333", "0", "3.999999999"),
        ("3", "33.333333333", "0", "4"),  # 3.99999999999 → 4
        ("1000000", "1000000", "1000000", "10002000000"),
    ],
)
def test_compute_charge_examples(cost: str, markup: str, fee: str, charge: str) -> None:
    result = compute_charge(Decimal(cost), Pricing(Decimal(markup), Decimal(fee)))
    assert result.charge == Decimal(charge)
    assert result.charge == result.provider_cost + result.markup


def test_compute_charge_rounds_provider_cost_to_nano() -> None:
    result = compute_charge(Decimal("0.0000000015"), Pricing())
    assert result == Charge(
        provider_cost=Decimal("0.000000002"),
        markup=Decimal(0),
        charge=Decimal("0.000000002"),
    )


@SETTINGS
@given(costs, markups, fees)
def test_compute_charge_matches_exact_rational(
    cost: Decimal, markup: Decimal, fee: Decimal
) -> None:
    pricing = Pricing(markup, fee)
    result = compute_charge(cost, pricing)
    assert Fraction(result.charge) == _expected_charge(cost, pricing)
    assert Fraction(result.provider_cost) == _half_even_nano(Fraction(cost))


@SETTINGS
@given(costs, markups, fees)
def test_charge_is_cost_plus_markup_exactly(cost: Decimal, markup: Decimal, fee: Decimal) -> None:
    result = compute_charge(cost, Pricing(markup, fee))
    for part in (result.provider_cost, result.markup, result.charge):
        assert isinstance(part, Decimal)
        assert _within_places(part) and part == part.quantize(Decimal("1e-9"))
    assert result.charge == result.provider_cost + result.markup
    assert result.markup >= 0
    assert result.charge >= result.provider_cost


@SETTINGS
@given(costs, markups, fees)
def test_compute_charge_ignores_ambient_context(
    cost: Decimal, markup: Decimal, fee: Decimal
) -> None:
    expected = compute_charge(cost, Pricing(markup, fee))
    with decimal.localcontext() as ctx:
        ctx.prec = 3
        ctx.rounding = decimal.ROUND_FLOOR
        assert compute_charge(cost, Pricing(markup, fee)) == expected


@SETTINGS
@given(costs, costs, markups, fees)
def test_charge_is_monotonic_in_cost(a: Decimal, b: Decimal, markup: Decimal, fee: Decimal) -> None:
    low, high = sorted((a, b))
    pricing = Pricing(markup, fee)
    assert compute_charge(low, pricing).charge <= compute_charge(high, pricing).charge


def test_compute_charge_refuses_absurd_precision_rather_than_rounding_twice() -> None:
    # Not reachable through parse_money (≤ 30 places): the exact product would need
    # more than 200 digits, so compute_charge refuses instead of rounding silently.
    tiny = Decimal("1e-300")
    with pytest.raises(InvalidMoney):
        compute_charge(Decimal("1000000"), Pricing(Decimal(0), tiny))


@pytest.mark.parametrize(
    ("plan_markup", "plan_fee", "expected"),
    [
        (None, None, Pricing(Decimal(10), Decimal("0.01"))),
        (Decimal(50), None, Pricing(Decimal(50), Decimal("0.01"))),
        (None, Decimal("0.5"), Pricing(Decimal(10), Decimal("0.5"))),
        (Decimal(0), Decimal(0), Pricing(Decimal(0), Decimal(0))),  # zero overrides too
    ],
)
def test_effective_pricing_examples(
    plan_markup: Decimal | None, plan_fee: Decimal | None, expected: Pricing
) -> None:
    default = Pricing(Decimal(10), Decimal("0.01"))
    assert effective_pricing(default, plan_markup, plan_fee) == expected


@SETTINGS
@given(markups, fees, st.none() | markups, st.none() | fees)
def test_effective_pricing_overrides_independently(
    default_markup: Decimal,
    default_fee: Decimal,
    plan_markup: Decimal | None,
    plan_fee: Decimal | None,
) -> None:
    result = effective_pricing(Pricing(default_markup, default_fee), plan_markup, plan_fee)
    assert result.markup_percentage == (default_markup if plan_markup is None else plan_markup)
    assert result.flat_rate_per_request == (default_fee if plan_fee is None else plan_fee)


@SETTINGS
@given(st.integers(-(10**20), 10**20), st.integers(-(10**20), 10**20))
def test_margin_is_exact(revenue_nanos: int, cost_nanos: int) -> None:
    revenue = Decimal(revenue_nanos).scaleb(-9)
    cost = Decimal(cost_nanos).scaleb(-9)
    with decimal.localcontext() as ctx:
        ctx.prec = 3
        result = margin(revenue, cost)
    assert Fraction(result) == Fraction(revenue_nanos - cost_nanos, 10**9)
