"""A ledger row names every ``usage_events`` column: PostgreSQL's bulk insert takes the
rows as JSON objects and would store NULL for a column a row leaves out. And rows fold
into exact rollup deltas."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from meterline.adapters.db import tables as t
from meterline.adapters.db.ledger_rows import add_row_delta, event_rows, new_event_ids
from meterline.domain.entities import Environment, UsageEvent
from meterline.domain.money import from_nanos, quantize_nano, to_nanos


def _event(**kw: object) -> UsageEvent:
    fields: dict[str, object] = {
        "project_id": "prj_1",
        "environment": Environment.LIVE,
        "event_id": "e1",
        "end_user_id": "u1",
        "timestamp": datetime(2026, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=2))),
        "model": "gpt-4o",
        "provider": "openai",
        "prompt_tokens": 3,
        "completion_tokens": 4,
        "total_tokens": 7,
        "provider_cost": Decimal("0.0000000015"),  # finer than a nano: stored rounded
        "markup": Decimal("0.5"),
        "charge": Decimal("0.5000000015"),
        "fingerprint": "fp",
        **kw,
    }
    return UsageEvent(**fields)  # type: ignore[arg-type]


def test_rows_name_every_column_and_fold_into_rollup_deltas() -> None:
    now = datetime(2026, 1, 2, tzinfo=UTC)
    events = [_event(), _event(event_id="e2", environment="test", recorded_at=now)]
    stored, rows = event_rows(events, new_event_ids(2), now)
    for row in rows:
        assert list(row) == list(t.usage_events.c.keys())
    assert rows[0]["timestamp"] == datetime(2025, 12, 31, 22, 30, tzinfo=UTC)
    assert stored[0].timestamp.tzinfo is UTC and stored[0].recorded_at == now
    assert stored[0].provider_cost == Decimal("0.000000002")  # half-even to 10⁻⁹
    assert rows[0]["provider_cost_nanos"] == 2
    assert stored[1].environment is Environment.TEST and rows[1]["environment"] == "test"
    unpriced = event_rows(
        [_event(event_id="e3", provider_cost=None, markup=None, charge=None, priced=False)],
        new_event_ids(1),
        now,
    )[1][0]
    deltas: dict = {}
    for row in [*rows, unpriced, rows[0]]:
        add_row_delta(deltas, row)
    day = date(2025, 12, 31)  # the UTC day of 00:30 at +02:00
    # requests, prompt, completion, total, cost, markup, charge (nanos), unpriced requests
    half = 5 * 10**8  # $0.50 in nanos
    live = ("prj_1", "live", "u1", "gpt-4o", "openai", day)
    test = ("prj_1", "test", "u1", "gpt-4o", "openai", day)
    assert deltas == {
        live: [3, 9, 12, 21, 4, 2 * half, 2 * half + 4, 1],
        test: [1, 3, 4, 7, 2, half, half + 2, 0],
    }


def test_an_event_already_in_stored_form_is_kept_as_is() -> None:
    now = datetime(2026, 1, 2, tzinfo=UTC)
    event = _event(
        timestamp=datetime(2026, 1, 1, tzinfo=UTC),
        provider_cost=Decimal("0.000000002"),
        charge=Decimal("0.500000002"),
        recorded_at=now,
    )
    [stored], _ = event_rows([event], new_event_ids(1), now)
    assert stored is event


def test_row_ids_are_distinct_and_shaped_like_the_others() -> None:
    ids = new_event_ids(1000)
    assert len(set(ids)) == 1000
    assert all(i.startswith("evt_") and len(i) == 36 for i in ids)


money_amounts = st.decimals(
    min_value=Decimal(-1_000_000), max_value=Decimal(1_000_000), places=14, allow_nan=False
) | st.decimals(min_value=0, max_value=Decimal(1_000_000), places=9, allow_nan=False)


@given(money_amounts, money_amounts, money_amounts, money_amounts)
def test_money_is_stored_as_the_nanos_the_domain_rounds_it_to(
    cost: Decimal, markup: Decimal, charge: Decimal, fee: Decimal
) -> None:
    """Each amount's column holds ``to_nanos`` of it, and the stored event holds the
    amount rounded to 10⁻⁹ (the very object when it was already exact)."""
    now = datetime(2026, 1, 2, tzinfo=UTC)
    event = _event(provider_cost=cost, markup=markup, charge=charge, flat_fee=fee)
    [stored], [row] = event_rows([event], new_event_ids(1), now)
    for name, column in (
        ("provider_cost", "provider_cost_nanos"),
        ("markup", "markup_nanos"),
        ("charge", "charge_nanos"),
        ("flat_fee", "flat_fee_nanos"),
    ):
        sent, kept = getattr(event, name), getattr(stored, name)
        assert row[column] == to_nanos(sent) and type(row[column]) is int
        assert kept == quantize_nano(sent)
        assert from_nanos(row[column]) == kept
        if quantize_nano(sent) == sent:
            assert kept is sent
