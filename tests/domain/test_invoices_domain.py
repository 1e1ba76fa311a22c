"""Invoice math: each line rounded once, half away from zero; total = sum of lines;
the lifecycle's transitions."""

from __future__ import annotations

import decimal
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from hypothesis import given
from hypothesis import strategies as st

from meterline.domain.entities import Environment
from meterline.domain.invoices import (
    Invoice,
    InvoiceStatus,
    LineUsage,
    can_transition,
    compute_lines,
    format_number,
    minor_to_major,
    total_minor,
)

S = InvoiceStatus

nanos = st.integers(min_value=0, max_value=10**15)
usage = st.builds(
    lambda provider, model, n, cost, markup, late: LineUsage(
        provider=provider,
        model=model,
        requests=n,
        prompt_tokens=n * 3,
        completion_tokens=n,
        provider_cost=Decimal(cost).scaleb(-9),
        markup=Decimal(markup).scaleb(-9),
        charge=Decimal(cost + markup).scaleb(-9),
        late=late,
    ),
    st.sampled_from(["openai", "anthropic", ""]),
    st.text(min_size=1, max_size=8),
    st.integers(min_value=1, max_value=10**6),
    nanos,
    nanos,
    st.booleans(),
)


@given(st.lists(usage, max_size=30), st.sampled_from(["USD", "EUR", "JPY", "KWD"]))
def test_each_line_rounds_once_and_total_is_sum_of_lines(usages, currency):
    lines = compute_lines(usages, currency)
    places = {"JPY": 0, "KWD": 3}.get(currency, 2)
    for line in lines:
        exact = line.charge.scaleb(places)
        assert line.amount_cents == int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))
        assert abs(Decimal(line.amount_cents) - exact) <= Decimal("0.5")
    assert total_minor(lines) == sum(line.amount_cents for line in lines)
    assert len(lines) == len(usages)
    assert [ln.late for ln in lines] == sorted(ln.late for ln in lines)


def test_half_cent_rounds_away_from_zero():
    [line] = compute_lines(
        [LineUsage("p", "m", 1, 0, 0, Decimal(0), Decimal("0.005"), Decimal("0.005"))]
    )
    assert line.amount_cents == 1


def test_transitions():
    assert not can_transition(S.DRAFT, S.OPEN)  # only finalization opens a draft
    assert not can_transition(S.DRAFT, S.VOID)
    assert {s for s in S if can_transition(S.OPEN, s)} == {S.PAID, S.VOID, S.UNCOLLECTIBLE}
    assert {s for s in S if can_transition(S.UNCOLLECTIBLE, s)} == {S.PAID, S.VOID}
    assert not any(can_transition(S.PAID, s) or can_transition(S.VOID, s) for s in S)


def test_number_and_major_units():
    assert format_number("ML", 1) == "ML-000001"
    assert format_number("ML", 1234567) == "ML-1234567"
    assert str(minor_to_major(1234)) == "12.34" and str(minor_to_major(5)) == "0.05"
    assert str(minor_to_major(7, "JPY")) == "7"


@given(st.lists(usage, max_size=30))
def test_invoice_cost_and_margin_are_exact_sums_of_its_lines(usages):
    lines = compute_lines(usages)
    invoice = Invoice(
        "inv", "proj", Environment.LIVE, "u", date(2026, 11, 1), date(2026, 11, 30), S.DRAFT,
        "USD", lines,
    )  # fmt: skip
    cost = sum(int(line.provider_cost.scaleb(9)) for line in lines)  # nano-dollars
    charge = sum(int(line.charge.scaleb(9)) for line in lines)
    # A narrow ambient context (another library's) must not round the sums.
    with decimal.localcontext(decimal.Context(prec=3)):
        got_cost, got_margin = invoice.provider_cost, invoice.margin
    assert got_cost == Decimal(cost).scaleb(-9)
    assert got_margin == Decimal(charge - cost).scaleb(-9)
