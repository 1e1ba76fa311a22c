"""Anthropic's stream events → OpenAI ``chat.completion.chunk`` SSE (pure state machine).

OpenAI clients accumulate chunks: a first chunk carrying ``role``, content deltas,
``tool_calls`` deltas keyed by a tool-call *index* (Anthropic keys by content-block
index, which also counts text blocks, hence the mapping), one chunk with
``finish_reason``, then — because the gateway always asks for usage — a usage-only
chunk (``choices: []``), then ``data: [DONE]``.

``StreamChunk.usage`` carries the best usage known so far (cumulative, the last one
seen wins): the role chunk already knows the prompt tokens from ``message_start``, so a
stream cut later can still be billed for its prompt.
"""

from __future__ import annotations

from typing import Any

from meterline.adapters.upstreams.sse import encode_event, encode_json_event
from meterline.adapters.upstreams.translate import FINISH_REASONS, usage_to_openai
from meterline.ports import StreamChunk, UpstreamUsage

__all__ = ["DONE", "AnthropicStreamError", "AnthropicToChatStream", "AnthropicUsageMeter"]

DONE = encode_event("[DONE]")


class AnthropicStreamError(Exception):
    """Anthropic sent an ``error`` event; ``payload`` is its JSON."""

    def __init__(self, payload: Any) -> None:
        error = payload.get("error") if isinstance(payload, dict) else None
        message = error.get("message") if isinstance(error, dict) else None
        super().__init__(message or "provider stream error")
        self.payload = payload


class AnthropicUsageMeter:
    """Usage over an Anthropic stream: prompt side from ``message_start`` (and any later
    cumulative report), output from the last ``message_delta``."""

    __slots__ = ("_input", "_output", "_seen")

    def __init__(self) -> None:
        self._input: dict[str, int] = {}
        self._output = 0
        self._seen = False  # no usage reported at all → None, never a made-up zero

    def take(self, usage: Any) -> None:
        if not isinstance(usage, dict):
            return
        self._seen = True
        for key in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"):
            value = usage.get(key)
            if isinstance(value, int):  # cumulative: keep the largest seen
                self._input[key] = max(self._input.get(key, 0), value)
        if isinstance(usage.get("output_tokens"), int):
            self._output = usage["output_tokens"]

    @property
    def usage(self) -> UpstreamUsage | None:
        if not self._seen:
            return None
        cached = self._input.get("cache_read_input_tokens", 0)
        prompt = self._input.get("input_tokens", 0)
        prompt += self._input.get("cache_creation_input_tokens", 0) + cached
        return UpstreamUsage(prompt, self._output, cached)


class AnthropicToChatStream:
    """Feed each Anthropic event (name, parsed JSON); get the OpenAI chunks to send."""

    def __init__(self, created: int, model: str = "") -> None:
        self.created = created
        self.id = ""
        self.model = model
        self.finish_reason = "stop"
        self.done = False
        self._meter = AnthropicUsageMeter()
        self._tools: dict[int, int] = {}  # content-block index → tool-call index
        self._args_seen: set[int] = set()  # tool-call indexes that got argument text

    # -- helpers

    @property
    def usage(self) -> UpstreamUsage | None:
        return self._meter.usage

    def _chunk(self, choices: list[dict[str, Any]], **extra: Any) -> bytes:
        payload = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": choices,
            **extra,
        }
        return encode_json_event(payload)

    def _delta(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        return self._chunk(
            [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
        )

    # -- the machine

    def feed(self, event: str, data: Any, raw: bytes = b"") -> list[StreamChunk]:
        """``raw`` (the event as received) is unused: every chunk is re-encoded."""
        kind = data.get("type", event) if isinstance(data, dict) else event
        handler = getattr(self, f"_on_{kind}", None)
        return handler(data) if handler is not None else []  # ping, unknown: nothing

    def _on_message_start(self, data: dict[str, Any]) -> list[StreamChunk]:
        message = data.get("message") or {}
        self.id = f"chatcmpl-{message.get('id', '')}"
        self.model = message.get("model") or self.model
        self._meter.take(message.get("usage"))
        role = self._delta({"role": "assistant", "content": ""})
        return [StreamChunk(role, usage=self.usage)]

    def _on_content_block_start(self, data: dict[str, Any]) -> list[StreamChunk]:
        block = data.get("content_block") or {}
        if block.get("type") == "text" and block.get("text"):
            return [StreamChunk(self._delta({"content": block["text"]}), text=block["text"])]
        if block.get("type") != "tool_use":
            return []  # thinking, server tools: nothing an OpenAI client understands
        index = self._tools[data.get("index", 0)] = len(self._tools)
        call = {
            "index": index,
            "id": block.get("id", ""),
            "type": "function",
            "function": {"name": block.get("name", ""), "arguments": ""},
        }
        return [StreamChunk(self._delta({"tool_calls": [call]}), text=block.get("name", ""))]

    def _on_content_block_delta(self, data: dict[str, Any]) -> list[StreamChunk]:
        delta = data.get("delta") or {}
        if delta.get("type") == "text_delta":
            text = delta.get("text", "")
            return [StreamChunk(self._delta({"content": text}), text=text)]
        if delta.get("type") == "input_json_delta":
            index = self._tools.get(data.get("index", 0))
            fragment = delta.get("partial_json", "")
            if index is None or not fragment:
                return []
            self._args_seen.add(index)
            call = {"index": index, "function": {"arguments": fragment}}
            return [StreamChunk(self._delta({"tool_calls": [call]}), text=fragment)]
        return []

    def _on_content_block_stop(self, data: dict[str, Any]) -> list[StreamChunk]:
        index = self._tools.get(data.get("index", 0))
        if index is None or index in self._args_seen:
            return []
        # a tool called with no arguments streams no JSON at all; OpenAI clients parse
        # the accumulated string, so give them an empty object
        self._args_seen.add(index)
        call = {"index": index, "function": {"arguments": "{}"}}
        return [StreamChunk(self._delta({"tool_calls": [call]}), text="{}")]

    def _on_message_delta(self, data: dict[str, Any]) -> list[StreamChunk]:
        reason = (data.get("delta") or {}).get("stop_reason")
        if reason:
            self.finish_reason = FINISH_REASONS.get(reason, "stop")
        self._meter.take(data.get("usage"))
        return [StreamChunk(self._delta({}, self.finish_reason), usage=self.usage)]

    def _on_message_stop(self, data: dict[str, Any]) -> list[StreamChunk]:
        self.done = True
        usage = self.usage
        out = []
        if usage is not None:  # no usage reported: no usage chunk rather than a false zero
            tail = self._chunk([], usage=usage_to_openai(usage))
            out.append(StreamChunk(tail, usage=usage, usage_only=True))
        return [*out, StreamChunk(DONE, usage=usage, final=True)]

    def _on_error(self, data: Any) -> list[StreamChunk]:
        raise AnthropicStreamError(data)
