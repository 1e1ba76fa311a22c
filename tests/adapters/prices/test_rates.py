"""The memoized per-token rates give exactly ``calc_price``'s Decimal, for every model.

"Exactly" means digits and exponent (``Decimal.as_tuple``), not just numeric equality:
the fast path must be indistinguishable from the table's own calculation.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import genai_prices
import pytest
from genai_prices import data_snapshot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meterline.adapters.prices import GenaiPrices
from meterline.adapters.prices.rates import LinearPrice, RateMemo, linear_price
from meterline.ports import PriceOverride

#: Every (provider id, model id) of the bundled table.
MODELS = [(p.id, m.id) for p in data_snapshot.get_snapshot().providers for m in p.models]
WHEN = [
    datetime(2023, 3, 1, 0, 30, tzinfo=UTC),
    datetime(2025, 6, 1, 12, 0, tzinfo=UTC),
    datetime(2025, 6, 1, 18, 45, tzinfo=UTC),  # off-peak windows of time-of-day prices
    datetime(2026, 11, 27, 3, 0, tzinfo=UTC),
]
USAGES = [(0, 0, 0), (1, 1, 0), (812, 95, 0), (1234, 77, 1000), (10**9 + 7, 3, 10**9), (5, 0, 5)]


def table(model: str, provider: str, i: int, o: int, c: int, at: datetime) -> Any:
    usage = genai_prices.Usage(input_tokens=i, output_tokens=o, cache_read_tokens=c)
    return genai_prices.calc_price(usage, model, provider_id=provider, genai_request_timestamp=at)


def same(a: Decimal, b: Decimal) -> bool:
    return type(a) is Decimal and type(b) is Decimal and a.as_tuple() == b.as_tuple()


def test_every_linear_model_matches_calc_price_exactly() -> None:
    memo = RateMemo()
    linear = 0
    for provider, model in MODELS:
        for at in WHEN:
            try:
                found, rates = memo.lookup(model, provider, at)
            except LookupError:
                with pytest.raises(LookupError):
                    table(model, provider, 1, 1, 0, at)
                continue
            if rates is None:
                continue
            linear += 1
            for i, o, c in USAGES:
                expected = table(model, provider, i, o, c, at)
                assert found == expected.provider.id
                got = rates.cost(i, o, c)
                assert got is not None
                assert same(got, expected.total_price), (provider, model, at, i, o, c, got)
    assert linear > 0.8 * len(MODELS) * len(WHEN)  # the fast path is the common case


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    pair=st.sampled_from(MODELS),
    tokens=st.tuples(st.integers(0, 10**12), st.integers(0, 10**12), st.integers(0, 10**12)).map(
        lambda t: (max(t[0], t[2]), t[1], min(t[0], t[2]))
    ),  # cache reads ≤ input
    at=st.datetimes(
        min_value=datetime(2023, 1, 1), max_value=datetime(2028, 1, 1), timezones=st.just(UTC)
    ),
)
def test_rates_match_calc_price_property(
    pair: tuple[str, str], tokens: tuple[int, int, int], at: datetime
) -> None:
    provider, model = pair
    try:
        _, rates = RateMemo().lookup(model, provider, at)
    except LookupError:
        return
    if rates is None:
        return
    got = rates.cost(*tokens)
    assert got is not None
    assert same(got, table(model, provider, *tokens, at).total_price)


@settings(max_examples=400, deadline=None)
@given(
    pair=st.sampled_from(MODELS),
    prompt=st.integers(0, 10**9),
    completion=st.integers(0, 10**9),
    cached=st.integers(0, 10**9),
    hours=st.integers(0, 24 * 365 * 3),
)
async def test_quote_equals_calc_price(
    pair: tuple[str, str], prompt: int, completion: int, cached: int, hours: int
) -> None:
    """End to end through the adapter, linear or not: the table's answer, bit for bit."""
    provider, model = pair
    at = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(hours=hours)
    quote = await GenaiPrices(_NoOverrides()).quote(
        "p",
        provider=provider,
        model=model,
        prompt_tokens=prompt,
        completion_tokens=completion,
        cached_tokens=cached,
        at=at,
    )
    try:
        expected = table(model, provider, prompt, completion, min(cached, prompt), at)
    except LookupError:
        return  # the adapter may still find it by another spelling; not this test's point
    assert quote.priced
    assert quote.provider_cost is not None
    assert same(quote.provider_cost, expected.total_price)
    assert quote.provider == expected.provider.id


class _NoOverrides:
    async def price_overrides(self, project_id: str) -> list[PriceOverride]:
        return []


def test_tiered_prices_are_not_memoized_and_still_priced_by_the_table() -> None:
    at = datetime(2025, 6, 1, tzinfo=UTC)
    _, rates = RateMemo().lookup("gemini-1.5-pro", "google", at)
    assert rates is None  # above 128k input tokens the whole call is billed at another rate


async def test_tiered_model_quote_is_the_tables() -> None:
    at = datetime(2025, 6, 1, tzinfo=UTC)
    for prompt in (1000, 200_000):
        quote = await GenaiPrices(_NoOverrides()).quote(
            "p",
            provider="google",
            model="gemini-1.5-pro",
            prompt_tokens=prompt,
            completion_tokens=10,
            at=at,
        )
        expected = table("gemini-1.5-pro", "google", prompt, 10, 0, at).total_price
        assert quote.provider_cost is not None and same(quote.provider_cost, expected)


def test_analysis_is_done_once_per_model_price() -> None:
    calls: list[object] = []

    def analyse(model_price: object) -> LinearPrice | None:
        calls.append(model_price)
        return linear_price(model_price)

    memo = RateMemo(analyse)
    at = datetime(2025, 6, 1, tzinfo=UTC)
    for _ in range(50):
        memo.lookup("gpt-4o", "openai", at)
        memo.lookup("gpt-4o-mini", "openai", at)
    assert len(calls) == 2


def test_unanalysable_prices_fall_back() -> None:
    assert linear_price(object()) is None  # not a ModelPrice: no memo, calc_price decides


def test_negative_leaf_defers_to_the_table() -> None:
    """Cache reads above input make the table raise; the memo returns None to let it."""
    _, rates = RateMemo().lookup("gpt-4o", "openai", datetime(2025, 6, 1, tzinfo=UTC))
    assert rates is not None
    assert rates.cost(10, 0, 11) is None
