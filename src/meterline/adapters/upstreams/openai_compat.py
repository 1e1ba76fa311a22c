"""Any OpenAI-compatible provider behind ``ports.Upstream``.

OpenAI, Groq, Together, Mistral, DeepSeek, vLLM, Ollama, OpenRouter and Gemini's
OpenAI endpoint all take ``base_url + /chat/completions`` (``/embeddings``,
``/responses``), so chat, embeddings and Responses clients get a passthrough with only
``model`` replaced. Anthropic-format (Messages) clients are translated to chat and back
(:mod:`.translate_reverse`).

Streams: the gateway always needs usage, so chat streams force
``stream_options.include_usage``; the extra usage-only chunk is marked ``usage_only`` and
the gateway drops it if the client did not ask. ``data: [DONE]`` is ``final``. Responses
streams have no ``[DONE]``: their ``response.completed`` event carries usage and is
emitted as an ordinary chunk, and the gateway treats the end of the iterator as final.
``StreamChunk.usage`` is cumulative; the last one seen is the best known.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from meterline.adapters.upstreams._http import (
    headers_of,
    join_url,
    json_body,
    or_text,
    parse_json,
    read_events,
    transport_error,
)
from meterline.adapters.upstreams.errors import error_for, from_openai_body
from meterline.adapters.upstreams.http_client import TransportError, UpstreamHttp
from meterline.adapters.upstreams.translate import TranslationError, openai_chat_usage
from meterline.adapters.upstreams.translate_reverse import (
    ChatToAnthropicStream,
    chat_to_message_response,
    messages_to_chat_request,
)
from meterline.adapters.upstreams.translate_stream import DONE
from meterline.ports import (
    Operation,
    ProviderTarget,
    StreamChunk,
    UpstreamBroken,
    UpstreamReply,
    UpstreamUsage,
)

__all__ = ["OpenAICompatible", "responses_usage"]

_PATHS = {
    Operation.CHAT: "/chat/completions",
    Operation.EMBEDDINGS: "/embeddings",
    Operation.RESPONSES: "/responses",
    Operation.MESSAGES: "/chat/completions",  # translated
}


def responses_usage(usage: Any) -> UpstreamUsage | None:
    """Responses API ``usage`` (``input_tokens``/``output_tokens``) → port usage."""
    if not isinstance(usage, dict):
        return None
    details = usage.get("input_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else 0
    return UpstreamUsage(
        _int(usage.get("input_tokens")), _int(usage.get("output_tokens")), _int(cached)
    )


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _usage_of(operation: Operation, body: Any) -> UpstreamUsage | None:
    if not isinstance(body, dict):
        return None
    if operation is Operation.RESPONSES:
        return responses_usage(body.get("usage"))
    return openai_chat_usage(body.get("usage"))


class OpenAICompatible:
    """``Upstream`` for ``WireProtocol.OPENAI`` targets (one shared pooled client)."""

    def __init__(self, client: UpstreamHttp) -> None:
        self._client = client

    def _prepare(
        self, target: ProviderTarget, operation: Operation, body: dict[str, Any], stream: bool
    ) -> tuple[str, dict[str, Any], dict[str, str]]:
        if operation is Operation.MESSAGES:
            try:
                payload = messages_to_chat_request(body, target.model)
            except TranslationError as exc:
                raise error_for(operation, 400, str(exc), "invalid_request_error") from exc
        else:
            payload = {**body, "model": target.model}
        payload.pop("stream", None)
        if not stream:  # OpenAI rejects stream_options without stream
            payload.pop("stream_options", None)
        else:
            payload["stream"] = True
            if operation in (Operation.CHAT, Operation.MESSAGES):
                options = payload.get("stream_options")
                options = dict(options) if isinstance(options, dict) else {}
                payload["stream_options"] = {**options, "include_usage": True}
        headers = {"content-type": "application/json"}
        if target.api_key:
            headers["authorization"] = f"Bearer {target.api_key}"
        return join_url(target.base_url, _PATHS[operation]), payload, headers

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
            raise from_openai_body(operation, response.status, or_text(data, response.body))
        if not isinstance(data, dict):
            raise error_for(operation, 502, "provider sent an invalid JSON answer")
        if isinstance(data.get("error"), dict):  # some providers answer errors with 200
            raise from_openai_body(operation, 502, data)
        usage = _usage_of(operation, data)
        if operation is Operation.MESSAGES:
            data = chat_to_message_response(data)
        return UpstreamReply(response.status, data, usage, headers_of(response))

    async def stream(
        self, target: ProviderTarget, operation: Operation, body: dict[str, Any]
    ) -> AsyncIterator[StreamChunk]:
        if operation is Operation.EMBEDDINGS:
            raise error_for(
                operation, 400, "embeddings cannot be streamed", "invalid_request_error"
            )
        url, payload, headers = self._prepare(target, operation, body, stream=True)
        mode = _Reverse(target.model) if operation is Operation.MESSAGES else _Plain(operation)
        started = False
        try:
            async with self._client.stream(url, json_body(payload), headers) as resp:
                if not resp.is_success:
                    answer = await resp.read()
                    raise from_openai_body(
                        operation, resp.status, or_text(parse_json(answer), answer)
                    )
                async for event in read_events(resp):
                    if event.data == "[DONE]":
                        for chunk in mode.done():
                            started = True
                            yield chunk
                        return
                    data = parse_json(event.data.encode())
                    if not isinstance(data, dict):
                        raise _broken_or_error(started, operation, "unparsable stream event")
                    if isinstance(data.get("error"), dict) or data.get("type") == "error":
                        if started:
                            raise UpstreamBroken(f"provider stream error: {event.data[:500]}")
                        raise from_openai_body(operation, 502, data)
                    for chunk in mode.feed(event.encode(), data):
                        started = True
                        yield chunk
        except TransportError as exc:
            if started:
                raise UpstreamBroken(f"provider stream broke: {exc!r}") from exc
            raise transport_error(operation, exc) from exc
        # the provider closed the stream without [DONE]
        if not mode.finished:
            raise _broken_or_error(started, operation, "provider stream ended early")
        for chunk in mode.done():
            yield chunk


class _Plain:
    """Chat and Responses passthrough. ``finished``: the answer is complete (a
    ``finish_reason`` or a terminal Responses event) even if ``[DONE]`` never comes."""

    _TERMINAL = ("response.completed", "response.incomplete", "response.failed")

    def __init__(self, operation: Operation) -> None:
        self.operation = operation
        self.finished = False

    def feed(self, raw: bytes, data: dict[str, Any]) -> list[StreamChunk]:
        if self.operation is Operation.RESPONSES:
            self.finished = self.finished or data.get("type") in self._TERMINAL
        else:
            choices = data.get("choices") or []
            self.finished = self.finished or any(
                isinstance(c, dict) and c.get("finish_reason") for c in choices
            )
        return [_passthrough(self.operation, raw, data)]

    def done(self) -> list[StreamChunk]:
        if self.operation is Operation.RESPONSES:
            return []  # Responses streams have no terminator; end of stream is final
        return [StreamChunk(DONE, final=True)]


class _Reverse:
    """Chat chunks → Anthropic events for a Messages client."""

    def __init__(self, model: str) -> None:
        self.machine = ChatToAnthropicStream(model)

    @property
    def finished(self) -> bool:
        return self.machine.saw_finish

    def feed(self, raw: bytes, data: dict[str, Any]) -> list[StreamChunk]:
        return self.machine.feed(data)

    def done(self) -> list[StreamChunk]:
        return self.machine.finish()


def _passthrough(operation: Operation, raw: bytes, data: dict[str, Any]) -> StreamChunk:
    if operation is Operation.RESPONSES:
        text = data.get("delta", "") if data.get("type") == "response.output_text.delta" else ""
        usage = None
        if data.get("type") in ("response.completed", "response.incomplete"):
            usage = responses_usage((data.get("response") or {}).get("usage"))
        return StreamChunk(raw, usage=usage, text=text if isinstance(text, str) else "")
    choices = data.get("choices")
    usage = openai_chat_usage(data.get("usage"))
    text = ""
    if isinstance(choices, list):
        for choice in choices:
            delta = choice.get("delta") if isinstance(choice, dict) else None
            if isinstance(delta, dict):
                text += _delta_text(delta)
    usage_only = choices == [] and usage is not None
    return StreamChunk(raw, usage=usage, text=text, usage_only=usage_only)


def _delta_text(delta: dict[str, Any]) -> str:
    """Generated text in a chat delta (content, reasoning, tool-call arguments)."""
    text = ""
    for key in ("content", "reasoning_content", "reasoning"):
        if isinstance(delta.get(key), str):
            text += delta[key]
    for call in delta.get("tool_calls") or []:
        fn = call.get("function") if isinstance(call, dict) else None
        if isinstance(fn, dict) and isinstance(fn.get("arguments"), str):
            text += fn["arguments"]
    return text


def _broken_or_error(started: bool, operation: Operation, why: str) -> Exception:
    if started:
        return UpstreamBroken(why)
    return error_for(operation, 502, why)
