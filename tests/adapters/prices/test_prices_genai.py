"""The prices adapter: genai-prices table, per-project overrides, caching, naming."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import genai_prices
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meterline.adapters.prices import GenaiPrices
from meterline.adapters.prices.genai import MAX_MODEL_REF, genai_provider_id, split_model
from meterline.adapters.prices.overrides import override_cost, pick_override
from meterline.ports import PriceOverride, PriceQuote

AT = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


@dataclass
class FakeOverrides:
    """A test double for the one method of ``ports.Accounts`` the adapter uses."""

    by_project: dict[str, list[PriceOverride]] = field(default_factory=dict)
    calls: int = 0

    async def price_overrides(self, project_id: str) -> list[PriceOverride]:
        self.calls += 1
        return list(self.by_project.get(project_id, []))


@dataclass
class FakeClock:
    moment: datetime = AT

    def now(self) -> datetime:
        return self.moment


def prices(
    accounts: FakeOverrides | None = None,
    *,
    cache_ttl_seconds: float = 5.0,
    clock: FakeClock | None = None,
) -> GenaiPrices:
    return GenaiPrices(
        accounts or FakeOverrides(), cache_ttl_seconds=cache_ttl_seconds, clock=clock
    )


async def gpt4o(
    p: GenaiPrices, project: str = "p", *, prompt: int = 1_000_000, cached: int = 0
) -> PriceQuote:
    """Quote OpenAI's gpt-4o for ``prompt`` input tokens and no output."""
    return await p.quote(
        project,
        provider="openai",
        model="gpt-4o",
        prompt_tokens=prompt,
        completion_tokens=0,
        cached_tokens=cached,
        at=AT,
    )


def direct(
    model: str, provider: str | None, prompt: int, completion: int, cached: int = 0
) -> Decimal:
    result = genai_prices.calc_price(
        genai_prices.Usage(input_tokens=prompt, output_tokens=completion, cache_read_tokens=cached),
        model,
        provider_id=provider,
        genai_request_timestamp=AT,
    )
    assert isinstance(result.total_price, Decimal)
    return result.total_price


# ---------------------------------------------------------------- the table


@pytest.mark.parametrize(
    ("provider", "model", "genai_provider"),
    [
        ("openai", "gpt-4o", "openai"),
        ("anthropic", "claude-3-5-sonnet", "anthropic"),
        ("anthropic", "claude-3-5-sonnet-20241022", "anthropic"),
        ("google", "gemini-2.0-flash", "google"),
        ("gemini", "gemini-2.0-flash", "google"),
        ("deepseek", "deepseek-chat", "deepseek"),
        ("groq", "llama-3.3-70b-versatile", "groq"),
    ],
)
@pytest.mark.parametrize(("prompt", "completion", "cached"), [(1000, 500, 0), (1234, 77, 1000)])
async def test_known_models_match_calc_price(
    provider: str,
    model: str,
    genai_provider: str,
    prompt: int,
    completion: int,
    cached: int,
) -> None:
    quote = await prices().quote(
        "p",
        provider=provider,
        model=model,
        prompt_tokens=prompt,
        completion_tokens=completion,
        cached_tokens=cached,
        at=AT,
    )
    expected = direct(model, genai_provider, prompt, completion, cached)
    assert quote == PriceQuote(priced=True, provider_cost=expected, provider=genai_provider)
    assert type(quote.provider_cost) is Decimal
    assert expected > 0


async def test_gpt4o_worked_example() -> None:
    # $2.50 / MTok input, $1.25 / MTok cached input, $10 / MTok output.
    quote = await prices().quote(
        "p",
        provider="openai",
        model="gpt-4o",
        prompt_tokens=1000,
        completion_tokens=500,
        cached_tokens=200,
        at=AT,
    )
    assert quote.provider_cost == Decimal("0.00725")  # 800×2.5 + 200×1.25 + 500×10, per 1e6


async def test_cached_tokens_are_not_double_charged() -> None:
    p = prices()
    none_cached = await gpt4o(p, prompt=1000)
    all_cached = await gpt4o(p, prompt=1000, cached=1000)
    assert none_cached.provider_cost == Decimal("0.0025")
    assert all_cached.provider_cost == Decimal("0.00125")  # cached rate only, once


async def test_cached_tokens_beyond_prompt_are_capped() -> None:
    quote = await prices().quote(
        "p",
        provider="openai",
        model="gpt-4o",
        prompt_tokens=100,
        completion_tokens=0,
        cached_tokens=500,
        at=AT,
    )
    assert quote.provider_cost == direct("gpt-4o", "openai", 100, 0, 100)


async def test_model_without_cache_price_charges_cached_at_input_rate() -> None:
    quote = await prices().quote(
        "p",
        provider="groq",
        model="llama-3.3-70b-versatile",
        prompt_tokens=1000,
        completion_tokens=0,
        cached_tokens=400,
        at=AT,
    )
    uncached = await prices().quote(
        "p",
        provider="groq",
        model="llama-3.3-70b-versatile",
        prompt_tokens=1000,
        completion_tokens=0,
        at=AT,
    )
    assert quote.provider_cost == uncached.provider_cost


@pytest.mark.parametrize(
    ("provider", "model"),
    [
        (None, "definitely-not-a-model-xyz"),
        ("openai", "definitely-not-a-model-xyz"),
        ("vllm", "my-finetune"),
        ("openai", ""),
        (None, "   "),
        (None, "x" * 500),
        ("openai", "claude-3-5-sonnet"),  # a known provider does not borrow another's price
    ],
)
async def test_unknown_model_is_unpriced_never_zero(provider: str | None, model: str) -> None:
    quote = await prices().quote(
        "p", provider=provider, model=model, prompt_tokens=10, completion_tokens=10, at=AT
    )
    assert quote == PriceQuote(priced=False, provider_cost=None, provider=None)


async def test_unknown_provider_falls_back_to_model_only() -> None:
    quote = await prices().quote(
        "p", provider="my-vllm", model="gpt-4o", prompt_tokens=1000, completion_tokens=0, at=AT
    )
    assert quote == PriceQuote(
        priced=True, provider_cost=direct("gpt-4o", None, 1000, 0), provider="openai"
    )


@pytest.mark.parametrize(
    ("provider", "model", "genai_provider", "genai_model"),
    [
        (None, "openai/gpt-4o", "openai", "gpt-4o"),
        (None, "anthropic/claude-3-5-sonnet", "anthropic", "claude-3-5-sonnet"),
        (None, "gemini/gemini-2.0-flash", "google", "gemini-2.0-flash"),
        ("openai", "openai/gpt-4o", "openai", "gpt-4o"),
        ("OpenAI", " gpt-4o ", "openai", "gpt-4o"),
        # OpenRouter's and Groq's own ids carry a namespace: looked up whole.
        ("openrouter", "anthropic/claude-3.5-sonnet", "openrouter", "anthropic/claude-3.5-sonnet"),
        (None, "openrouter/openai/gpt-4o", "openrouter", "openai/gpt-4o"),
        ("groq", "openai/gpt-oss-120b", "groq", "openai/gpt-oss-120b"),
        ("together", "meta-llama/Llama-3.3-70B-Instruct-Turbo", "together", None),
        # A namespace the provider does not use is dropped on a second try.
        ("azure", "openai/gpt-4o", "azure", "gpt-4o"),
    ],
)
async def test_provider_prefixes(
    provider: str | None, model: str, genai_provider: str, genai_model: str | None
) -> None:
    quote = await prices().quote(
        "p", provider=provider, model=model, prompt_tokens=1000, completion_tokens=100, at=AT
    )
    assert quote.priced
    assert quote.provider == genai_provider
    expected = direct(genai_model or model.strip(), genai_provider, 1000, 100)
    assert quote.provider_cost == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("openai", "openai"),
        ("anthropic", "anthropic"),
        ("google", "google"),
        ("gemini", "google"),
        ("Gemini", "google"),
        ("groq", "groq"),
        ("mistral", "mistral"),
        ("deepseek", "deepseek"),
        ("together", "together"),
        ("together_ai", "together"),
        ("openrouter", "openrouter"),
        ("xai", "x-ai"),
        ("azure", "azure"),
        ("bedrock", "aws"),
        ("vllm", None),
        ("ollama", None),
        ("", None),
        (None, None),
        ("x" * 100, None),
    ],
)
def test_provider_names(name: str | None, expected: str | None) -> None:
    assert genai_provider_id(name) == expected


@pytest.mark.parametrize(
    ("provider", "model", "expected"),
    [
        (None, "gpt-4o", (None, "gpt-4o")),
        (None, "openai/gpt-4o", ("openai", "gpt-4o")),
        (None, "meta-llama/Llama-3", (None, "meta-llama/Llama-3")),
        ("openrouter", "openai/gpt-4o", ("openrouter", "openai/gpt-4o")),
        ("gemini", "google/gemini-2.0-flash", ("gemini", "gemini-2.0-flash")),
        (None, "openai/", (None, "openai/")),
        ("", "gpt-4o", (None, "gpt-4o")),
    ],
)
def test_split_model(provider: str | None, model: str, expected: tuple[str | None, str]) -> None:
    assert split_model(provider, model) == expected


async def test_timestamp_defaults_to_the_clock_and_accepts_naive() -> None:
    p = prices(clock=FakeClock())
    a = await p.quote(
        "p", provider="openai", model="gpt-4o", prompt_tokens=10, completion_tokens=10
    )
    b = await p.quote(
        "p",
        provider="openai",
        model="gpt-4o",
        prompt_tokens=10,
        completion_tokens=10,
        at=AT.replace(tzinfo=None),
    )
    assert a == b
    assert a.priced


async def test_negative_tokens_are_refused() -> None:
    with pytest.raises(ValueError):
        await prices().quote(
            "p", provider="openai", model="gpt-4o", prompt_tokens=-1, completion_tokens=0
        )


# ---------------------------------------------------------------- overrides


async def test_override_beats_the_table_and_is_exact() -> None:
    accounts = FakeOverrides(
        {
            "p": [
                PriceOverride(
                    model="gpt-4o",
                    input_per_mtok=Decimal("0.123456789"),
                    output_per_mtok=Decimal("7.000000001"),
                    cached_input_per_mtok=Decimal("0.01"),
                )
            ]
        }
    )
    quote = await prices(accounts).quote(
        "p",
        provider="openai",
        model="gpt-4o",
        prompt_tokens=1_000_003,
        completion_tokens=333,
        cached_tokens=3,
        at=AT,
    )
    expected = (
        Fraction(1_000_000) * Fraction("0.123456789")
        + 3 * Fraction("0.01")
        + 333 * Fraction("7.000000001")
    ) / 10**6
    assert quote.priced
    assert quote.provider == "openai"
    assert type(quote.provider_cost) is Decimal
    assert Fraction(quote.provider_cost) == expected  # not rounded to anything


async def test_override_for_an_unknown_model() -> None:
    accounts = FakeOverrides({"p": [PriceOverride(model="my-finetune", input_per_mtok=Decimal(1))]})
    quote = await prices(accounts).quote(
        "p",
        provider="vllm",
        model="my-finetune",
        prompt_tokens=2_000_000,
        completion_tokens=5,
        at=AT,
    )
    assert quote == PriceQuote(priced=True, provider_cost=Decimal(2), provider="vllm")


async def test_zero_override_is_priced_zero() -> None:
    # An explicit override of 0 (self-hosted) is a price, not a missing one.
    accounts = FakeOverrides({"p": [PriceOverride(model="gpt-4o")]})
    quote = await prices(accounts).quote(
        "p", provider="openai", model="gpt-4o", prompt_tokens=10, completion_tokens=10, at=AT
    )
    assert quote.priced
    assert quote.provider_cost == 0


async def test_overrides_are_per_project() -> None:
    accounts = FakeOverrides({"a": [PriceOverride(model="gpt-4o", input_per_mtok=Decimal(1))]})
    p = prices(accounts)
    a = await gpt4o(p, "a")
    b = await gpt4o(p, "b")
    assert a.provider_cost == Decimal(1)
    assert b.provider_cost == direct("gpt-4o", "openai", 1_000_000, 0)


@pytest.mark.parametrize(
    ("overrides", "provider", "model", "expected_input"),
    [
        # provider "" matches any provider
        ([PriceOverride(model="gpt-4o", input_per_mtok=Decimal(1))], "azure", "gpt-4o", 1),
        ([PriceOverride(model="gpt-4o", input_per_mtok=Decimal(1))], None, "gpt-4o", 1),
        # a named provider must match (through aliases, case-insensitively)…
        (
            [PriceOverride(model="gemini-2.0-flash", provider="Gemini", input_per_mtok=Decimal(2))],
            "google",
            "gemini-2.0-flash",
            2,
        ),
        # …and beats the any-provider override, whatever the order
        (
            [
                PriceOverride(model="gpt-4o", input_per_mtok=Decimal(1)),
                PriceOverride(model="gpt-4o", provider="openai", input_per_mtok=Decimal(3)),
            ],
            "openai",
            "gpt-4o",
            3,
        ),
        # the bare model name matches a prefixed request
        ([PriceOverride(model="gpt-4o", input_per_mtok=Decimal(4))], None, "openai/gpt-4o", 4),
        # the full name beats the bare one
        (
            [
                PriceOverride(model="gpt-4o", input_per_mtok=Decimal(4)),
                PriceOverride(model="openai/gpt-4o", input_per_mtok=Decimal(5)),
            ],
            None,
            "openai/gpt-4o",
            5,
        ),
    ],
)
async def test_override_matching(
    overrides: list[PriceOverride], provider: str | None, model: str, expected_input: int
) -> None:
    quote = await prices(FakeOverrides({"p": overrides})).quote(
        "p", provider=provider, model=model, prompt_tokens=1_000_000, completion_tokens=0, at=AT
    )
    assert quote.provider_cost == Decimal(expected_input)


async def test_override_for_another_provider_does_not_apply() -> None:
    accounts = FakeOverrides(
        {"p": [PriceOverride(model="gpt-4o", provider="azure", input_per_mtok=Decimal(1))]}
    )
    quote = await prices(accounts).quote(
        "p", provider="openai", model="gpt-4o", prompt_tokens=1_000_000, completion_tokens=0, at=AT
    )
    assert quote.provider_cost == direct("gpt-4o", "openai", 1_000_000, 0)


def test_pick_override_none_when_nothing_matches() -> None:
    assert (
        pick_override(
            [PriceOverride(model="a")], model="b", bare_model="b", providers=frozenset({"x"})
        )
        is None
    )


tokens = st.integers(min_value=0, max_value=10**9)
per_mtok = st.decimals(min_value=0, max_value=1000, places=9, allow_nan=False, allow_infinity=False)


@settings(max_examples=300, deadline=None)
@given(tokens, tokens, tokens, per_mtok, per_mtok, st.none() | per_mtok)
def test_override_cost_is_exact(
    prompt: int,
    completion: int,
    cached: int,
    input_price: Decimal,
    output_price: Decimal,
    cached_price: Decimal | None,
) -> None:
    override = PriceOverride(
        model="m",
        input_per_mtok=input_price,
        output_per_mtok=output_price,
        cached_input_per_mtok=cached_price,
    )
    cost = override_cost(
        override, prompt_tokens=prompt, completion_tokens=completion, cached_tokens=cached
    )
    c = min(cached, prompt)
    expected = (
        (prompt - c) * Fraction(input_price)
        + c * Fraction(input_price if cached_price is None else cached_price)
        + completion * Fraction(output_price)
    ) / 10**6
    assert type(cost) is Decimal
    assert Fraction(cost) == expected


# ---------------------------------------------------------------- override cache


async def test_overrides_are_cached_for_the_ttl() -> None:
    accounts = FakeOverrides({"p": [PriceOverride(model="gpt-4o", input_per_mtok=Decimal(1))]})
    clock = FakeClock()
    p = prices(accounts, cache_ttl_seconds=5.0, clock=clock)
    first = await gpt4o(p, "p")
    accounts.by_project["p"] = [PriceOverride(model="gpt-4o", input_per_mtok=Decimal(2))]
    clock.moment = AT + timedelta(seconds=4)
    cached = await gpt4o(p, "p")
    assert first.provider_cost == cached.provider_cost == Decimal(1)
    assert accounts.calls == 1
    clock.moment = AT + timedelta(seconds=5)
    fresh = await gpt4o(p, "p")
    assert fresh.provider_cost == Decimal(2)
    assert accounts.calls == 2


async def test_invalidate_makes_a_change_visible_at_once() -> None:
    accounts = FakeOverrides({"p": [PriceOverride(model="gpt-4o", input_per_mtok=Decimal(1))]})
    p = prices(accounts, cache_ttl_seconds=3600, clock=FakeClock())
    assert (await gpt4o(p, "p")).provider_cost == 1
    accounts.by_project["p"] = []
    assert (await gpt4o(p, "p")).provider_cost == 1
    p.invalidate("p")
    after = await gpt4o(p, "p")
    assert after.provider_cost == direct("gpt-4o", "openai", 10**6, 0)
    accounts.by_project["p"] = [PriceOverride(model="gpt-4o", input_per_mtok=Decimal(9))]
    p.invalidate()
    assert (await gpt4o(p, "p")).provider_cost == 9


async def test_invalidate_during_a_load_is_not_undone() -> None:
    """A load that started before ``invalidate`` must not cache what it read."""
    p: GenaiPrices

    class Racing(FakeOverrides):
        async def price_overrides(self, project_id: str) -> list[PriceOverride]:
            result = await super().price_overrides(project_id)
            p.invalidate(project_id)  # a write lands while this read is in flight
            return result

    accounts = Racing({"p": [PriceOverride(model="gpt-4o", input_per_mtok=Decimal(1))]})
    p = prices(accounts, cache_ttl_seconds=3600, clock=FakeClock())
    await p.quote("p", provider="openai", model="gpt-4o", prompt_tokens=1, completion_tokens=0)
    await p.quote("p", provider="openai", model="gpt-4o", prompt_tokens=1, completion_tokens=0)
    assert accounts.calls == 2


async def test_projects_with_the_same_names_keep_their_own_overrides() -> None:
    """The resolution of (provider, model) names is remembered per project and per
    loaded set of overrides: interleaved projects, and a project whose overrides
    change, each get their own price."""
    accounts = FakeOverrides(
        {
            "a": [PriceOverride(model="gpt-4o", input_per_mtok=Decimal(1))],
            "b": [PriceOverride(model="gpt-4o", provider="openai", input_per_mtok=Decimal(2))],
        }
    )
    clock = FakeClock()
    p = prices(accounts, cache_ttl_seconds=5.0, clock=clock)
    table = direct("gpt-4o", "openai", 10**6, 0)
    for _ in range(2):
        assert (await gpt4o(p, "a")).provider_cost == 1
        assert (await gpt4o(p, "b")).provider_cost == 2
        assert (await gpt4o(p, "c")).provider_cost == table
    accounts.by_project["a"] = []
    accounts.by_project["c"] = [PriceOverride(model="gpt-4o", input_per_mtok=Decimal(3))]
    clock.moment = AT + timedelta(seconds=5)  # the overrides are reloaded
    assert (await gpt4o(p, "a")).provider_cost == table
    assert (await gpt4o(p, "c")).provider_cost == 3
    assert (await gpt4o(p, "b")).provider_cost == 2
    other = await p.quote(
        "b", provider="azure", model="gpt-4o", prompt_tokens=10**6, completion_tokens=0, at=AT
    )
    assert other.provider_cost != 2  # b's override names openai, not azure


async def test_zero_ttl_never_caches() -> None:
    accounts = FakeOverrides()
    p = prices(accounts, cache_ttl_seconds=0, clock=FakeClock())
    for _ in range(3):
        await p.quote("p", provider="openai", model="gpt-4o", prompt_tokens=1, completion_tokens=0)
    assert accounts.calls == 3


async def test_provider_of_names_the_tables_provider_for_routing() -> None:
    p = prices()
    for _ in range(2):  # the second answer is the remembered one
        assert await p.provider_of(" gpt-4o ") == "openai"
        assert await p.provider_of("claude-3-5-sonnet-20241022") == "anthropic"
        assert await p.provider_of("no-such-model-anywhere") is None
        assert await p.provider_of("m" * (MAX_MODEL_REF + 1)) is None
        assert await p.provider_of("") is None
