"""``ports.Prices`` backed by the ``genai-prices`` table, with per-project overrides.

Order of precedence: a project's own override for the model, else the table. A model
neither knows is *unpriced* (``priced=False``), never $0: billing a call at zero by
accident is the one mistake a billing system must not make quietly.

``genai_prices`` is synchronous and CPU-only (a lookup in an in-memory table it already
caches per model reference), so it is called inline. What it redoes on every call (units,
validation, usage decomposition) is done once per model price by ``rates.RateMemo``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import MappingProxyType
from typing import Protocol

import genai_prices
from genai_prices import data_snapshot

from meterline.adapters.prices.overrides import override_cost, pick_override
from meterline.adapters.prices.rates import RateMemo
from meterline.domain.windows import as_utc
from meterline.ports import Clock, PriceOverride, PriceQuote

__all__ = ["GenaiPrices", "genai_provider_id", "split_model"]

#: Our provider names (as projects configure them and as ``provider/model`` prefixes
#: spell them) → genai-prices provider ids. Names not listed are asked of genai-prices
#: itself, which knows its own ids and a few spellings.
PROVIDER_ALIASES: Mapping[str, str] = MappingProxyType(
    {
        "openai": "openai",
        "anthropic": "anthropic",
        "google": "google",
        "gemini": "google",
        "vertex": "google",
        "vertex_ai": "google",
        "vertexai": "google",
        "groq": "groq",
        "mistral": "mistral",
        "mistralai": "mistral",
        "deepseek": "deepseek",
        "together": "together",
        "togetherai": "together",
        "together_ai": "together",
        "together-ai": "together",
        "openrouter": "openrouter",
        "xai": "x-ai",
        "x-ai": "x-ai",
        "grok": "x-ai",
        "fireworks": "fireworks",
        "fireworks_ai": "fireworks",
        "fireworks-ai": "fireworks",
        "azure": "azure",
        "azure_openai": "azure",
        "azure-openai": "azure",
        "bedrock": "aws",
        "aws": "aws",
        "cohere": "cohere",
        "perplexity": "perplexity",
        "cerebras": "cerebras",
        "moonshot": "moonshotai",
        "moonshotai": "moonshotai",
    }
)

#: Longer model names are not looked up: genai-prices remembers every reference it is
#: asked about, and a model name is client input.
MAX_MODEL_REF = 200

_MAX_CACHED_PROJECTS = 10_000
_MAX_ROUTES = 10_000
_MAX_PROVIDER_NAME = 64


class OverrideSource(Protocol):
    """The one part of ``ports.Accounts`` this adapter needs."""

    async def price_overrides(self, project_id: str) -> list[PriceOverride]: ...


def genai_provider_id(name: str | None) -> str | None:
    """The genai-prices provider id for one of our provider names, ``None`` if unknown."""
    if not name:
        return None
    key = name.strip().lower()
    if not key or len(key) > _MAX_PROVIDER_NAME:
        return None
    if key in PROVIDER_ALIASES:
        return PROVIDER_ALIASES[key]
    try:
        return data_snapshot.get_snapshot().find_provider(None, key, None).id
    except LookupError:
        return None


def split_model(provider: str | None, model: str) -> tuple[str | None, str]:
    """(provider name, model reference) for a call.

    ``openai/gpt-4o`` with no provider names its provider in the prefix. With a provider
    the prefix is dropped only when it repeats that provider: OpenRouter's and Groq's own
    model ids contain slashes (``anthropic/claude-3.5-sonnet``, ``openai/gpt-oss-120b``)
    and are looked up whole. An unknown prefix (``meta-llama/…``) is part of the name.
    """
    provider = provider.strip() if provider else None
    model = model.strip()
    prefix, slash, rest = model.partition("/")
    if not slash or not rest:
        return provider or None, model
    if not provider:
        if genai_provider_id(prefix) is not None:
            return prefix, rest
        return None, model
    if prefix.lower() == provider.lower() or (
        genai_provider_id(prefix) is not None
        and genai_provider_id(prefix) == genai_provider_id(provider)
    ):
        return provider, rest
    return provider, model


#: (provider name, model reference, genai-prices provider id, override or ``None``).
_Route = tuple[str | None, str, str | None, PriceOverride | None]


def _resolve(
    overrides: tuple[PriceOverride, ...], provider: str | None, model: str
) -> _Route | None:
    """The route of a call (see ``GenaiPrices._route``), computed."""
    name, ref = split_model(provider, model)
    if not ref:
        return None
    names = frozenset(n for n in ((provider or "").strip().lower(), (name or "").lower()) if n)
    aliases = frozenset(filter(None, (genai_provider_id(n) for n in names)))
    override = pick_override(
        overrides,
        model=model.strip(),
        bare_model=ref,
        providers=names | aliases,
        canonical=genai_provider_id,
    )
    return name, ref, genai_provider_id(name), override


class GenaiPrices:
    """Provider cost in USD for one call: project override first, then genai-prices.

    Overrides are read through ``accounts.price_overrides`` and cached per project for
    ``cache_ttl_seconds`` (a price change reaches other replicas within that time;
    :meth:`invalidate` makes it immediate on this one). ``clock`` (a ``ports.Clock``)
    drives the cache and is the default ``at``; the system clock when omitted.
    """

    def __init__(
        self,
        accounts: OverrideSource,
        *,
        cache_ttl_seconds: float = 5.0,
        clock: Clock | None = None,
    ) -> None:
        self._accounts = accounts
        self._ttl = timedelta(seconds=cache_ttl_seconds)
        self._clock = clock
        self._cache: dict[str, tuple[datetime, tuple[PriceOverride, ...]]] = {}
        #: Bumped by :meth:`invalidate`, so a load that started before an invalidation
        #: cannot store what it read after it.
        self._generation = 0
        #: The table's per-token rates per model price, so a call costs a few ``Decimal``
        #: operations instead of a full ``calc_price`` (same result, see ``rates``).
        self._rates = RateMemo()
        #: Per (project, provider, model): the overrides the names were resolved under,
        #: and their route (see :meth:`_route`).
        self._routes: dict[
            tuple[str, str | None, str], tuple[tuple[PriceOverride, ...], _Route | None]
        ] = {}
        #: The table's provider per model name (see :meth:`provider_of`).
        self._providers: dict[str, str | None] = {}

    def _now(self) -> datetime:
        return self._clock.now() if self._clock is not None else datetime.now(UTC)

    def invalidate(self, project_id: str | None = None) -> None:
        """Forget cached overrides for one project (all projects with ``None``)."""
        self._generation += 1
        if project_id is None:
            self._cache.clear()
        else:
            self._cache.pop(project_id, None)

    async def _overrides(self, project_id: str) -> tuple[PriceOverride, ...]:
        now = self._now()
        hit = self._cache.get(project_id)
        if hit is not None and hit[0] > now:
            return hit[1]
        generation = self._generation
        loaded = tuple(await self._accounts.price_overrides(project_id))
        if self._ttl > timedelta(0) and generation == self._generation:
            if len(self._cache) >= _MAX_CACHED_PROJECTS:
                self._cache.clear()
            self._cache[project_id] = (now + self._ttl, loaded)
        return loaded

    async def quote(
        self,
        project_id: str,
        *,
        provider: str | None,
        model: str,
        prompt_tokens: int,
        completion_tokens: int,
        cached_tokens: int = 0,
        at: datetime | None = None,
    ) -> PriceQuote:
        """Provider cost in USD. An unknown model is ``priced=False``, never $0.

        ``prompt_tokens`` includes ``cached_tokens`` (OpenAI's convention); cached tokens
        beyond the prompt are capped to it rather than charged twice.
        """
        if min(prompt_tokens, completion_tokens, cached_tokens) < 0:
            raise ValueError("token counts must not be negative")
        cached = min(cached_tokens, prompt_tokens)
        route = self._route(project_id, await self._overrides(project_id), provider, model)
        if route is None:
            return PriceQuote(priced=False)
        name, ref, pid, override = route
        if override is not None:
            cost = override_cost(
                override,
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                cached_tokens=cached,
            )
            return PriceQuote(priced=True, provider_cost=cost, provider=pid or name)

        if len(ref) > MAX_MODEL_REF:
            return PriceQuote(priced=False)
        when = as_utc(at) if at is not None else self._now()
        for attempt in _attempts(ref):
            try:
                found, linear = self._rates.lookup(attempt, pid, when)
            except LookupError:
                continue
            price = (
                linear.cost(prompt_tokens, completion_tokens, cached)
                if linear is not None
                else None
            )
            if price is None:  # not memoizable: the table's own calculation
                usage = genai_prices.Usage(
                    input_tokens=prompt_tokens,
                    output_tokens=completion_tokens,
                    cache_read_tokens=cached,
                )
                result = genai_prices.calc_price(
                    usage, attempt, provider_id=pid, genai_request_timestamp=when
                )
                price, found = result.total_price, result.provider.id
            if not isinstance(price, Decimal) or not price.is_finite() or price < 0:
                return PriceQuote(priced=False)
            return PriceQuote(priced=True, provider_cost=price, provider=found)
        return PriceQuote(priced=False)

    def _route(
        self,
        project_id: str,
        overrides: tuple[PriceOverride, ...],
        provider: str | None,
        model: str,
    ) -> _Route | None:
        """What a call's provider and model names resolve to before any price: (provider
        name, model reference, genai-prices provider id, the override that applies), or
        ``None`` when there is no model reference. It depends on the two names and the
        project's overrides alone, so it is remembered per project and pair of names
        while the overrides loaded are the same tuple (a reload or an invalidation
        brings a new one)."""
        memo_key = (project_id, provider, model)
        hit = self._routes.get(memo_key)
        if hit is not None and hit[0] is overrides:
            return hit[1]
        route = _resolve(overrides, provider, model)
        if len(self._routes) >= _MAX_ROUTES:  # the names are client input: bounded
            self._routes.clear()
        self._routes[memo_key] = (overrides, route)
        return route

    async def provider_of(self, model: str) -> str | None:
        """The genai-prices provider id the table knows ``model`` from (for routing),
        remembered per model name (bounded: the name is client input)."""
        model = model.strip()
        if model in self._providers:
            return self._providers[model]
        if len(self._providers) >= _MAX_ROUTES:
            self._providers.clear()
        found = self._providers[model] = _provider_of(model)
        return found


def _provider_of(model: str) -> str | None:
    if not model or len(model) > MAX_MODEL_REF:
        return None
    try:
        result = genai_prices.calc_price(genai_prices.Usage(input_tokens=1), model)
    except LookupError:
        return None
    return str(result.provider.id)


def _attempts(ref: str) -> list[str]:
    """Model references to try, in order, always on the same provider (or by model alone
    when the provider is unknown): the name as given, then without its namespace
    (``meta-llama/Llama-3.3-70B`` → ``Llama-3.3-70B``)."""
    attempts = [ref]
    bare = ref.rpartition("/")[2]
    if bare and bare != ref:
        attempts.append(bare)
    return attempts
