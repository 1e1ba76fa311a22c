"""Ports: upstreams (providers)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

__all__ = [
    "Operation",
    "ProviderTarget",
    "StreamChunk",
    "Upstream",
    "UpstreamBroken",
    "UpstreamError",
    "UpstreamReply",
    "UpstreamUsage",
    "WireProtocol",
]


class Operation(StrEnum):
    """What the client asked for, in the client's wire format."""

    CHAT = "chat"  # OpenAI chat completions
    EMBEDDINGS = "embeddings"  # OpenAI embeddings
    RESPONSES = "responses"  # OpenAI Responses API
    MESSAGES = "messages"  # Anthropic Messages API


class WireProtocol(StrEnum):
    """How a provider is spoken to."""

    OPENAI = "openai"  # any OpenAI-compatible base URL (OpenAI, Groq, vLLM, Gemini's…)
    ANTHROPIC = "anthropic"


@dataclass(frozen=True, slots=True)
class ProviderTarget:
    """Where one call goes: provider name (for pricing), protocol, endpoint, key, model."""

    provider: str
    protocol: WireProtocol
    base_url: str
    api_key: str | None
    model: str


@dataclass(frozen=True, slots=True)
class UpstreamUsage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class UpstreamError(Exception):
    """The provider answered with an error, or could not be reached, before any output.

    ``body`` is already in the client's wire format (OpenAI- or Anthropic-style error
    JSON), so the gateway passes it through unchanged with ``status``.
    """

    def __init__(self, status: int, body: dict[str, Any], message: str = "") -> None:
        super().__init__(message or f"upstream error {status}")
        self.status = status
        self.body = body


class UpstreamBroken(Exception):
    """The stream broke after output had started (connection reset, timeout, bad data)."""


@dataclass(frozen=True, slots=True)
class UpstreamReply:
    """A complete (non-streamed) answer, translated to the client's wire format."""

    status: int
    body: dict[str, Any]
    usage: UpstreamUsage | None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StreamChunk:
    """One server-sent event for the client, already in the client's wire format.

    ``data`` is the whole SSE event (``event:``/``data:`` lines and the blank line). The
    gateway forwards it unless ``usage_only`` is set and the client did not ask for
    usage. ``final`` marks the terminator (``data: [DONE]`` or Anthropic's
    ``message_stop``): the ledger row is written before it is sent.
    """

    data: bytes
    usage: UpstreamUsage | None = None
    text: str = ""
    usage_only: bool = False
    final: bool = False


class Upstream(Protocol):
    """One wire protocol to providers. Raises :class:`UpstreamError` before output,
    :class:`UpstreamBroken` once a stream has started."""

    async def send(
        self, target: ProviderTarget, operation: Operation, body: dict[str, Any]
    ) -> UpstreamReply: ...

    def stream(
        self, target: ProviderTarget, operation: Operation, body: dict[str, Any]
    ) -> AsyncIterator[StreamChunk]: ...
