"""Which provider serves a model: the project's model map, a ``provider/model`` prefix,
the price table's provider for that model, else the default OpenAI-compatible upstream."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from meterline.domain.entities import Project
from meterline.ports import Prices, ProviderTarget, WireProtocol
from meterline.services.errors import Invalid

__all__ = ["ProviderConfig", "Router"]

#: genai-prices provider ids → our provider names, where they differ.
_FROM_PRICE_TABLE = {"google": "gemini"}


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    name: str
    protocol: WireProtocol
    base_url: str
    api_key: str | None


class Router:
    def __init__(
        self,
        providers: Mapping[str, ProviderConfig],
        prices: Prices,
        *,
        default_provider: str = "openai",
        project_credentials: Callable[[str], Awaitable[Mapping[str, Any]]] | None = None,
    ) -> None:
        self._providers = dict(providers)
        self._prices = prices
        self._default = default_provider
        self._project_credentials = project_credentials

    def providers(self) -> Mapping[str, ProviderConfig]:
        return self._providers

    async def resolve(self, project: Project, model: str) -> ProviderTarget:
        """The target, with the project's own key and base URL when it has set them."""
        target = await self._resolve(project, model)
        if self._project_credentials is None:
            return target
        own = (await self._project_credentials(project.id)).get(target.provider)
        if own is None:
            return target
        return replace(
            target,
            api_key=own.api_key,
            base_url=(own.base_url or target.base_url).rstrip("/"),
        )

    async def _resolve(self, project: Project, model: str) -> ProviderTarget:
        if not model or len(model) > 200:
            raise Invalid("model is required: a model name", param="model")
        mapped = project.model_map.get(model)
        if mapped:
            model = mapped
        provider, _, rest = model.partition("/")
        if rest and provider.lower() in self._providers:
            return self._target(provider.lower(), rest)
        known = await self._prices.provider_of(model)
        if known:
            name = _FROM_PRICE_TABLE.get(known, known)
            if name in self._providers:
                return self._target(name, model)
        if self._default not in self._providers:
            raise Invalid(
                f"no provider is configured for model {model!r}",
                param="model",
                code="model_not_found",
            )
        return self._target(self._default, model)

    def _target(self, name: str, model: str) -> ProviderTarget:
        config = self._providers[name]
        return ProviderTarget(
            provider=name,
            protocol=config.protocol,
            base_url=config.base_url.rstrip("/"),
            api_key=config.api_key,
            model=model,
        )
