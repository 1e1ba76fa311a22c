"""Choosing an upstream adapter, the shared HTTP client, and the providers we know.

One pooled :class:`UpstreamHttp` serves every provider: connection reuse matters more
than isolation for a gateway, and a single client keeps the pool limits meaningful.
The read timeout is generous because a long completion may stream for minutes (it bounds
the silence between reads, not the whole answer).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

from meterline.adapters.upstreams.anthropic import AnthropicUpstream
from meterline.adapters.upstreams.http_client import UpstreamHttp
from meterline.adapters.upstreams.openai_compat import OpenAICompatible
from meterline.ports import ProviderTarget, Upstream, WireProtocol

__all__ = ["KNOWN_PROVIDERS", "KnownProvider", "Upstreams", "make_http_client"]


@dataclass(frozen=True, slots=True)
class KnownProvider:
    """How to reach a provider by default: protocol, base URL, env var of its API key."""

    protocol: WireProtocol
    base_url: str
    api_key_env: str | None


_OPENAI = WireProtocol.OPENAI
_GEMINI = KnownProvider(
    _OPENAI, "https://generativelanguage.googleapis.com/v1beta/openai", "GEMINI_API_KEY"
)

KNOWN_PROVIDERS: MappingProxyType[str, KnownProvider] = MappingProxyType(
    {
        "openai": KnownProvider(_OPENAI, "https://api.openai.com/v1", "OPENAI_API_KEY"),
        "anthropic": KnownProvider(
            WireProtocol.ANTHROPIC, "https://api.anthropic.com", "ANTHROPIC_API_KEY"
        ),
        "gemini": _GEMINI,
        "google": _GEMINI,
        "groq": KnownProvider(_OPENAI, "https://api.groq.com/openai/v1", "GROQ_API_KEY"),
        "together": KnownProvider(_OPENAI, "https://api.together.xyz/v1", "TOGETHER_API_KEY"),
        "mistral": KnownProvider(_OPENAI, "https://api.mistral.ai/v1", "MISTRAL_API_KEY"),
        "deepseek": KnownProvider(_OPENAI, "https://api.deepseek.com/v1", "DEEPSEEK_API_KEY"),
        "openrouter": KnownProvider(_OPENAI, "https://openrouter.ai/api/v1", "OPENROUTER_API_KEY"),
        "ollama": KnownProvider(_OPENAI, "http://127.0.0.1:11434/v1", None),
        "vllm": KnownProvider(_OPENAI, "http://127.0.0.1:8000/v1", None),
    }
)


#: The one pooled client for all providers (close it at shutdown: ``aclose()``); its
#: options (timeouts, pool size, keep-alive) are :class:`UpstreamHttp`'s.
make_http_client = UpstreamHttp


class Upstreams:
    """The adapter for a target's wire protocol (adapters are stateless: built once)."""

    def __init__(self, client: UpstreamHttp) -> None:
        self.client = client
        self._by_protocol: dict[WireProtocol, Upstream] = {
            WireProtocol.OPENAI: OpenAICompatible(client),
            WireProtocol.ANTHROPIC: AnthropicUpstream(client),
        }

    def for_target(self, target: ProviderTarget) -> Upstream:
        return self._by_protocol[target.protocol]
