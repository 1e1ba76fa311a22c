"""Anthropic's Messages API behind ``ports.Upstream``.

Messages clients get a passthrough (only ``model`` replaced); OpenAI chat clients get
their request translated to Messages and the answer — complete or streamed — translated
back (:mod:`.translate`, :mod:`.translate_stream`). Embeddings and Responses have no
Anthropic counterpart and are refused with a 400 rather than approximated.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from meterline.adapters.upstreams._http import (
    UNPARSABLE,
    headers_of,
    join_url,
    json_body,
    or_text,
    parse_json,
    read_events,
    transport_error,
)
from meterline.adapters.upstreams.errors import error_for, from_anthropic_body
from meterline.adapters.upstreams.http_client import TransportError, UpstreamHttp
from meterline.adapters.upstreams.translate import (
    TranslationError,
    anthropic_usage,
    chat_to_messages_request,
    message_to_chat_response,
)
from meterline.adapters.upstreams.translate_stream import (
    AnthropicStreamError,
    AnthropicToChatStream,
    AnthropicUsageMeter,
)
from meterline.ports import (
    Operation,
    ProviderTarget,
    StreamChunk,
    UpstreamBroken,
    UpstreamReply,
)

__all__ = ["ANTHROPIC_VERSION", "AnthropicUpstream"]

ANTHROPIC_VERSION = "2023-06-01"
_OVERLOADED = {"overloaded_error": 529, "rate_limit_error": 429, "api_error": 500}


class AnthropicUpstream:
    """``Upstream`` for ``WireProtocol.ANTHROPIC`` targets (one shared pooled client)."""

    def __init__(self, client: UpstreamHttp) -> None:
        self._client = client

    def _prepare(
        self, target: ProviderTarget, operation: Operation, body: dict[str, Any], stream: bool
    ) -> tuple[str, dict[str, Any], dict[str, str]]:
        if operation is Operation.MESSAGES:
            payload = {**body, "model": target.model}
        elif operation is Operation.CHAT:
            try:
                payload = chat_to_messages_request(body, target.model)
            except TranslationError as exc:
                raise error_for(operation, 400, str(exc), "invalid_request_error") from exc
        else:
            raise error_for(
                operation,
                400,
                f"provider {target.provider!r} (Anthropic) does not support {operation.value}",
                "invalid_request_error",
            )
        payload.pop("stream", None)
        if stream:
            payload["stream"] = True
        headers = {"anthropic-version": ANTHROPIC_VERSION, "content-type": "application/json"}
        if target.api_key:
            headers["x-api-key"] = target.api_key
        return join_url(target.base_url, "/v1/messages"), payload, headers

    async def send(
        self, target: ProviderTarget, operation: Operation, body: dict[str, Any]
    ) -> UpstreamReply:
        url, payload, headers = self._prepare(target, operation, body, stream=False)
        try:
            response = await self._client.post(url, json_body(payload), headers)
        except TransportError as exc:
            raise transport_error(operation, exc) from exc
        data = parse_json(response.body)
        if not response.is_success:
            raise from_anthropic_body(operation, response.status, or_text(data, response.body))
        if not isinstance(data, dict) or data is UNPARSABLE:
            raise error_for(operation, 502, "provider sent an invalid JSON answer")
        usage = anthropic_usage(data.get("usage"))
        if operation is Operation.CHAT:
            data = message_to_chat_response(data, int(time.time()))
        return UpstreamReply(response.status, data, usage, headers_of(response))

    async def stream(
        self, target: ProviderTarget, operation: Operation, body: dict[str, Any]
    ) -> AsyncIterator[StreamChunk]:
        url, payload, headers = self._prepare(target, operation, body, stream=True)
        machine = (
            AnthropicToChatStream(int(time.time()), target.model)
            if operation is Operation.CHAT
            else _Passthrough()
        )
        started = False
        try:
            async with self._client.stream(url, json_body(payload), headers) as resp:
                if not resp.is_success:
                    raw = await resp.read()
                    data = parse_json(raw)
                    raise from_anthropic_body(operation, resp.status, or_text(data, raw))
                async for event in read_events(resp):
                    data = parse_json(event.data.encode())
                    if data is UNPARSABLE:
                        raise _broken_or_error(started, operation, "unparsable stream event")
                    try:
                        chunks = machine.feed(event.event, data, event.encode())
                    except AnthropicStreamError as exc:
                        if started:
                            raise UpstreamBroken(f"provider stream error: {exc}") from exc
                        status = _OVERLOADED.get(_error_type(exc.payload), 502)
                        raise from_anthropic_body(operation, status, exc.payload) from exc
                    for chunk in chunks:
                        started = True
                        yield chunk
        except TransportError as exc:
            if started:
                raise UpstreamBroken(f"provider stream broke: {exc!r}") from exc
            raise transport_error(operation, exc) from exc
        if not machine.done:
            raise _broken_or_error(started, operation, "provider stream ended early")


def _error_type(payload: Any) -> str:
    error = payload.get("error") if isinstance(payload, dict) else None
    return str(error.get("type", "")) if isinstance(error, dict) else ""


def _broken_or_error(started: bool, operation: Operation, why: str) -> Exception:
    if started:
        return UpstreamBroken(why)
    return error_for(operation, 502, why)


class _Passthrough:
    """Messages → Messages: forward every event, read usage and text on the way."""

    def __init__(self) -> None:
        self.done = False
        self._meter = AnthropicUsageMeter()

    def feed(self, event: str, data: Any, raw: bytes) -> list[StreamChunk]:
        kind = data.get("type", event) if isinstance(data, dict) else event
        if kind == "error":
            raise AnthropicStreamError(data)
        if kind == "message_start":
            self._meter.take((data.get("message") or {}).get("usage"))
            return [StreamChunk(raw, usage=self._meter.usage)]
        if kind == "message_delta":
            self._meter.take(data.get("usage"))
            return [StreamChunk(raw, usage=self._meter.usage)]
        if kind == "message_stop":
            self.done = True
            return [StreamChunk(raw, usage=self._meter.usage, final=True)]
        if kind == "content_block_delta":
            delta = data.get("delta") or {}
            text = delta.get("text") or delta.get("partial_json") or delta.get("thinking") or ""
            return [StreamChunk(raw, text=text)]
        return [StreamChunk(raw)]
