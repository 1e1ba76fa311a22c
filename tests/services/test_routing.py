"""Model → provider routing: model map, provider prefix, price table, default."""

from __future__ import annotations

import pytest

from meterline.adapters.prices import GenaiPrices
from meterline.domain.entities import Project
from meterline.ports import WireProtocol
from meterline.services.errors import Invalid
from meterline.services.routing import ProviderConfig, Router


class NoOverrides:
    async def price_overrides(self, project_id):
        return []


PROVIDERS = {
    "openai": ProviderConfig("openai", WireProtocol.OPENAI, "http://oa/v1/", "k-oa"),
    "anthropic": ProviderConfig("anthropic", WireProtocol.ANTHROPIC, "http://an", "k-an"),
    "gemini": ProviderConfig("gemini", WireProtocol.OPENAI, "http://ge/v1", None),
    "groq": ProviderConfig("groq", WireProtocol.OPENAI, "http://groq/v1", "k-g"),
}


def router(**kw) -> Router:
    return Router(PROVIDERS, GenaiPrices(NoOverrides()), **kw)


PROJECT = Project(
    id="p",
    organization_id="o",
    name="x",
    model_map={"fast": "groq/llama-3.1-8b-instant", "smart": "claude-3-5-sonnet-latest"},
)


@pytest.mark.parametrize(
    ("model", "provider", "upstream_model", "protocol"),
    [
        ("gpt-4o", "openai", "gpt-4o", WireProtocol.OPENAI),
        ("claude-3-5-haiku-latest", "anthropic", "claude-3-5-haiku-latest", WireProtocol.ANTHROPIC),
        ("gemini-1.5-pro", "gemini", "gemini-1.5-pro", WireProtocol.OPENAI),
        ("groq/llama-3.3-70b", "groq", "llama-3.3-70b", WireProtocol.OPENAI),
        ("fast", "groq", "llama-3.1-8b-instant", WireProtocol.OPENAI),
        ("smart", "anthropic", "claude-3-5-sonnet-latest", WireProtocol.ANTHROPIC),
        # Unknown to the price table, no known prefix: the default OpenAI-compatible upstream.
        ("my-finetune", "openai", "my-finetune", WireProtocol.OPENAI),
        ("meta-llama/Llama-3-8b", "openai", "meta-llama/Llama-3-8b", WireProtocol.OPENAI),
    ],
)
async def test_resolution(model, provider, upstream_model, protocol):
    target = await router().resolve(PROJECT, model)
    assert (target.provider, target.model, target.protocol) == (provider, upstream_model, protocol)
    assert not target.base_url.endswith("/")


async def test_project_credentials_override_key_and_base_url():
    class Own:
        api_key = "own"
        base_url = "http://mine/v1/"

    async def creds(project_id):
        return {"openai": Own()}

    target = await router(project_credentials=creds).resolve(PROJECT, "gpt-4o")
    assert (target.api_key, target.base_url) == ("own", "http://mine/v1")
    other = await router(project_credentials=creds).resolve(PROJECT, "claude-3-5-haiku-latest")
    assert other.api_key == "k-an"


async def test_no_model_is_a_clear_error():
    with pytest.raises(Invalid):
        await router().resolve(PROJECT, "")
