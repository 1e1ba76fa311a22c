"""Providers behind ``ports.Upstream``: any OpenAI-compatible base URL, and Anthropic
(translated both ways, streams included) — DESIGN.md §2.1. Errors and stream chunks
come back already in the client's wire format, so the gateway only forwards."""

from __future__ import annotations

from meterline.adapters.upstreams.anthropic import AnthropicUpstream
from meterline.adapters.upstreams.openai_compat import OpenAICompatible
from meterline.adapters.upstreams.registry import (
    KNOWN_PROVIDERS,
    KnownProvider,
    Upstreams,
    make_http_client,
)

__all__ = [
    "KNOWN_PROVIDERS",
    "AnthropicUpstream",
    "KnownProvider",
    "OpenAICompatible",
    "Upstreams",
    "make_http_client",
]
