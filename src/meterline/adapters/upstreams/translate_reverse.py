"""Anthropic Messages clients on OpenAI-protocol providers (pure, no I/O).

The mirror of :mod:`.translate`: an Anthropic-SDK client pointed at the gateway may ask
for a model that only an OpenAI-compatible provider serves. Its request becomes a chat
completion request, and the answer — complete or streamed — becomes a Messages answer
or Messages stream events (``message_start`` … ``message_stop``).
"""

from __future__ import annotations

from typing import Any

import orjson

from meterline.adapters.upstreams.sse import encode_json_event
from meterline.adapters.upstreams.translate import TranslationError, openai_chat_usage
from meterline.ports import StreamChunk, UpstreamUsage

__all__ = [
    "STOP_REASONS",
    "ChatToAnthropicStream",
    "chat_to_message_response",
    "messages_to_chat_request",
]

# OpenAI finish_reason → Anthropic stop_reason.
STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


# ---------------------------------------------------------------- request


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(b.get("text", "") for b in content if isinstance(b, dict))
    return ""


def _part(block: dict[str, Any]) -> dict[str, Any]:
    kind = block.get("type")
    if kind == "text":
        return {"type": "text", "text": block.get("text", "")}
    if kind == "image":
        source = block.get("source") or {}
        if source.get("type") == "base64":
            url = f"data:{source.get('media_type', '')};base64,{source.get('data', '')}"
        elif source.get("type") == "url":
            url = source.get("url", "")
        else:
            raise TranslationError("unsupported image source for this model")
        return {"type": "image_url", "image_url": {"url": url}}
    raise TranslationError(f"content block type {kind!r} is not supported by this model")


def _user(content: Any) -> list[dict[str, Any]]:
    """One Anthropic user turn → tool messages (first, as OpenAI requires) + user message."""
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    tools: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for block in content or []:
        if block.get("type") == "tool_result":
            text = _text(block.get("content"))
            if block.get("is_error"):
                text = f"Error: {text}"
            tools.append(
                {"role": "tool", "tool_call_id": block.get("tool_use_id", ""), "content": text}
            )
        else:
            parts.append(_part(block))
    return tools + ([{"role": "user", "content": parts}] if parts else [])


def _assistant(content: Any) -> dict[str, Any]:
    if isinstance(content, str):
        return {"role": "assistant", "content": content}
    text: list[str] = []
    calls = []
    for block in content or []:
        if block.get("type") == "text":
            text.append(block.get("text", ""))
        elif block.get("type") == "tool_use":
            arguments = orjson.dumps(block.get("input") or {}).decode()
            calls.append(
                {
                    "id": block.get("id", ""),
                    "type": "function",
                    "function": {"name": block.get("name", ""), "arguments": arguments},
                }
            )
        # thinking blocks are the provider's own: another provider cannot use them
    message: dict[str, Any] = {"role": "assistant", "content": "".join(text) or None}
    if calls:
        message["tool_calls"] = calls
    return message


def _tool(tool: dict[str, Any]) -> dict[str, Any]:
    if tool.get("type") not in (None, "custom"):
        raise TranslationError(f"server tool {tool.get('type')!r} is not supported by this model")
    fn = {"name": tool.get("name", ""), "parameters": tool.get("input_schema") or {}}
    if tool.get("description"):
        fn["description"] = tool["description"]
    return {"type": "function", "function": fn}


def _tool_choice(choice: dict[str, Any]) -> Any:
    kind = choice.get("type")
    if kind == "tool":
        return {"type": "function", "function": {"name": choice.get("name", "")}}
    return {"any": "required", "none": "none"}.get(kind or "", "auto")


def messages_to_chat_request(body: dict[str, Any], model: str) -> dict[str, Any]:
    """An Anthropic Messages request → an OpenAI chat completion request."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise TranslationError("'messages' must be a non-empty list")
    out_messages: list[dict[str, Any]] = []
    if system := _text(body.get("system")):
        out_messages.append({"role": "system", "content": system})
    for message in messages:
        if message.get("role") == "user":
            out_messages.extend(_user(message.get("content")))
        elif message.get("role") == "assistant":
            out_messages.append(_assistant(message.get("content")))
        else:
            raise TranslationError(f"unknown message role {message.get('role')!r}")
    out: dict[str, Any] = {"model": model, "messages": out_messages}
    for src, dst in (
        ("max_tokens", "max_tokens"),
        ("temperature", "temperature"),
        ("top_p", "top_p"),
        ("stop_sequences", "stop"),
    ):
        if body.get(src) is not None:
            out[dst] = body[src]
    if body.get("tools"):
        out["tools"] = [_tool(t) for t in body["tools"]]
        choice = body.get("tool_choice") or {}
        if choice:
            out["tool_choice"] = _tool_choice(choice)
        if choice.get("disable_parallel_tool_use"):
            out["parallel_tool_calls"] = False
    user = (body.get("metadata") or {}).get("user_id")
    if isinstance(user, str) and user:
        out["user"] = user
    return out


# ---------------------------------------------------------------- response


def _usage_json(usage: UpstreamUsage | None) -> dict[str, int]:
    if usage is None:
        return {"input_tokens": 0, "output_tokens": 0}
    return {
        "input_tokens": usage.prompt_tokens - usage.cached_tokens,
        "output_tokens": usage.completion_tokens,
        "cache_read_input_tokens": usage.cached_tokens,
    }


def _arguments(raw: Any) -> dict[str, Any]:
    try:
        parsed = orjson.loads(raw) if isinstance(raw, str) and raw.strip() else {}
    except orjson.JSONDecodeError:
        return {}  # the model produced broken JSON; Anthropic clients expect an object
    return parsed if isinstance(parsed, dict) else {}


def chat_to_message_response(data: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI ``chat.completion`` → an Anthropic ``message`` object."""
    choice = (data.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    content: list[dict[str, Any]] = []
    if isinstance(message.get("content"), str) and message["content"]:
        content.append({"type": "text", "text": message["content"]})
    for call in message.get("tool_calls") or []:
        fn = call.get("function") or {}
        content.append(
            {
                "type": "tool_use",
                "id": call.get("id", ""),
                "name": fn.get("name", ""),
                "input": _arguments(fn.get("arguments")),
            }
        )
    return {
        "id": f"msg_{data.get('id', '')}",
        "type": "message",
        "role": "assistant",
        "model": data.get("model", ""),
        "content": content,
        "stop_reason": STOP_REASONS.get(choice.get("finish_reason") or "stop", "end_turn"),
        "stop_sequence": None,
        "usage": _usage_json(openai_chat_usage(data.get("usage"))),
    }


# ---------------------------------------------------------------- stream


class ChatToAnthropicStream:
    """Feed parsed ``chat.completion.chunk`` objects, then :meth:`finish` at ``[DONE]``;
    get Anthropic SSE events (``event: X`` + ``data:``) to send."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.saw_finish = False
        self.usage: UpstreamUsage | None = None
        self._started = False
        self._stop_reason = "end_turn"
        self._block: tuple[str, int] | None = None  # open block: ("text"|"tool", tool idx)
        self._index = -1  # Anthropic content-block index of the open block

    def _event(self, kind: str, payload: dict[str, Any], **meta: Any) -> StreamChunk:
        return StreamChunk(encode_json_event({"type": kind, **payload}, kind), **meta)

    def _start(self, chunk: dict[str, Any]) -> list[StreamChunk]:
        if self._started:
            return []
        self._started = True
        message: dict[str, Any] = {
            "id": f"msg_{chunk.get('id', '')}",
            "type": "message",
            "role": "assistant",
            "model": chunk.get("model") or self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        return [self._event("message_start", {"message": message})]

    def _close(self) -> list[StreamChunk]:
        if self._block is None:
            return []
        self._block = None
        return [self._event("content_block_stop", {"index": self._index})]

    def _open(self, key: tuple[str, int], block: dict[str, Any]) -> list[StreamChunk]:
        out = self._close()
        self._block, self._index = key, self._index + 1
        start = {"index": self._index, "content_block": block}
        return [*out, self._event("content_block_start", start)]

    def feed(self, chunk: dict[str, Any]) -> list[StreamChunk]:
        out = self._start(chunk)
        if (usage := openai_chat_usage(chunk.get("usage"))) is not None:
            self.usage = usage
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            if text := delta.get("content"):
                if self._block != ("text", 0):
                    out += self._open(("text", 0), {"type": "text", "text": ""})
                payload = {"index": self._index, "delta": {"type": "text_delta", "text": text}}
                out.append(self._event("content_block_delta", payload, text=text))
            for call in delta.get("tool_calls") or []:
                key = ("tool", call.get("index", 0))
                fn = call.get("function") or {}
                if self._block != key:
                    block = {
                        "type": "tool_use",
                        "id": call.get("id", ""),
                        "name": fn.get("name", ""),
                        "input": {},
                    }
                    out += self._open(key, block)
                if fragment := fn.get("arguments"):
                    delta_json = {"type": "input_json_delta", "partial_json": fragment}
                    payload = {"index": self._index, "delta": delta_json}
                    out.append(self._event("content_block_delta", payload, text=fragment))
            if reason := choice.get("finish_reason"):
                self.saw_finish = True
                self._stop_reason = STOP_REASONS.get(reason, "end_turn")
        return out

    def finish(self) -> list[StreamChunk]:
        """Close the message: the provider said ``[DONE]`` (or ended after finishing)."""
        out = self._start({}) + self._close()
        delta = {
            "delta": {"stop_reason": self._stop_reason, "stop_sequence": None},
            "usage": _usage_json(self.usage),
        }
        out.append(self._event("message_delta", delta, usage=self.usage))
        out.append(self._event("message_stop", {}, usage=self.usage, final=True))
        return out
