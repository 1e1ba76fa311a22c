"""Choosing adapters by protocol, the pooled client, the provider table."""

from __future__ import annotations

from meterline.adapters.upstreams import (
    KNOWN_PROVIDERS,
    AnthropicUpstream,
    OpenAICompatible,
    Upstreams,
    make_http_client,
)
from meterline.adapters.upstreams.http_client import UpstreamHttp
from meterline.ports import ProviderTarget, WireProtocol


async def test_for_target_picks_by_protocol() -> None:
    client = make_http_client()
    try:
        upstreams = Upstreams(client)
        openai = ProviderTarget("groq", WireProtocol.OPENAI, "http://x/v1", None, "m")
        claude = ProviderTarget("anthropic", WireProtocol.ANTHROPIC, "http://x", None, "m")
        assert isinstance(upstreams.for_target(openai), OpenAICompatible)
        assert isinstance(upstreams.for_target(claude), AnthropicUpstream)
        assert upstreams.for_target(openai) is upstreams.for_target(openai)
    finally:
        await client.aclose()


async def test_client_timeouts() -> None:
    client = make_http_client()
    try:
        assert isinstance(client, UpstreamHttp)
        assert client.timeout.connect == 10.0 and client.timeout.read == 600.0
    finally:
        await client.aclose()


def test_known_providers() -> None:
    assert KNOWN_PROVIDERS["anthropic"].protocol is WireProtocol.ANTHROPIC
    assert KNOWN_PROVIDERS["openai"].base_url == "https://api.openai.com/v1"
    assert KNOWN_PROVIDERS["google"] == KNOWN_PROVIDERS["gemini"]
    assert KNOWN_PROVIDERS["gemini"].api_key_env == "GEMINI_API_KEY"
    assert KNOWN_PROVIDERS["ollama"].api_key_env is None
    others = {n for n, p in KNOWN_PROVIDERS.items() if p.protocol is WireProtocol.OPENAI}
    assert others == {
        "openai", "gemini", "google", "groq", "together", "mistral", "deepseek",
        "openrouter", "ollama", "vllm",
    }  # fmt: skip
