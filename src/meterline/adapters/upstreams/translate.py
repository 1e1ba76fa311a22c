"""OpenAI chat ⇄ Anthropic Messages: requests and complete answers (pure, no I/O).

Clients speak OpenAI chat; Anthropic speaks Messages. The gateway translates so the
client never notices which provider answered (DESIGN.md §2.1). The stream state machine
lives in :mod:`.translate_stream`; the opposite direction (Anthropic-format clients on
OpenAI-protocol providers) in :mod:`.translate_reverse`.

Anything that cannot be expressed on the other side (``n > 1``, audio or file parts,
tool-call arguments that are not a JSON object) raises :class:`TranslationError`, which
the adapter turns into a 400 — better than silently answering a different question.
"""

from __future__ import annotations

from typing import Any

import orjson

from meterline.ports import UpstreamUsage

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "FINISH_REASONS",
    "TranslationError",
    "anthropic_usage",
    "chat_to_messages_request",
    "message_to_chat_response",
    "openai_chat_usage",
    "usage_to_openai",
]

DEFAULT_MAX_TOKENS = 4096  # Anthropic requires max_tokens; OpenAI does not

# Anthropic stop_reason → OpenAI finish_reason.
FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


class TranslationError(ValueError):
    """The request cannot be expressed in the provider's protocol (→ HTTP 400)."""


# ---------------------------------------------------------------- usage


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def anthropic_usage(usage: Any) -> UpstreamUsage | None:
    """Anthropic ``usage`` → port usage. Cache writes and reads are prompt tokens too
    (Anthropic's ``input_tokens`` excludes both); reads are reported as cached."""
    if not isinstance(usage, dict):
        return None
    cached = _int(usage.get("cache_read_input_tokens"))
    prompt = _int(usage.get("input_tokens")) + _int(usage.get("cache_creation_input_tokens"))
    return UpstreamUsage(prompt + cached, _int(usage.get("output_tokens")), cached)


def openai_chat_usage(usage: Any) -> UpstreamUsage | None:
    """OpenAI chat/embeddings ``usage`` (explicit zeros stay zero; absent → ``None``)."""
    if not isinstance(usage, dict):
        return None
    details = usage.get("prompt_tokens_details")
    cached = _int(details.get("cached_tokens")) if isinstance(details, dict) else 0
    return UpstreamUsage(
        _int(usage.get("prompt_tokens")), _int(usage.get("completion_tokens")), cached
    )


def usage_to_openai(usage: UpstreamUsage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
    }


# ---------------------------------------------------------------- request


def _text_of(content: Any) -> str:
    """Plain text of an OpenAI content value (string or list of text parts)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    raise TranslationError("message content must be a string or a list of parts")


def _image_block(part: dict[str, Any]) -> dict[str, Any]:
    ref = part.get("image_url")
    url = ref.get("url") if isinstance(ref, dict) else ref
    if not isinstance(url, str) or not url:
        raise TranslationError("image_url part without a url")
    if url.startswith("data:"):
        head, sep, data = url[5:].partition(",")
        media, _, encoding = head.partition(";")
        if not sep or encoding != "base64":
            raise TranslationError("image data URLs must be base64 encoded")
        return {"type": "image", "source": {"type": "base64", "media_type": media, "data": data}}
    return {"type": "image", "source": {"type": "url", "url": url}}


def _blocks(content: Any) -> list[dict[str, Any]]:
    """OpenAI user/assistant content → Anthropic content blocks (empty text dropped)."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if not isinstance(content, list):
        raise TranslationError("message content must be a string or a list of parts")
    blocks: list[dict[str, Any]] = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            if part.get("text"):
                blocks.append({"type": "text", "text": part["text"]})
        elif kind == "image_url":
            blocks.append(_image_block(part))
        elif kind == "refusal":
            if part.get("refusal"):
                blocks.append({"type": "text", "text": part["refusal"]})
        else:
            raise TranslationError(f"content part type {kind!r} is not supported by this model")
    return blocks


def _tool_use(call_id: str, name: str, arguments: Any) -> dict[str, Any]:
    if isinstance(arguments, str):
        try:
            parsed = orjson.loads(arguments) if arguments.strip() else {}
        except orjson.JSONDecodeError as exc:
            raise TranslationError(f"tool call {call_id}: arguments are not valid JSON") from exc
    else:
        parsed = arguments if arguments is not None else {}
    if not isinstance(parsed, dict):
        raise TranslationError(f"tool call {call_id}: arguments must be a JSON object")
    return {"type": "tool_use", "id": call_id, "name": name, "input": parsed}


def _tool_result(call_id: str, content: Any) -> dict[str, Any]:
    blocks = _blocks(content) if isinstance(content, list) else None
    value: Any = blocks if blocks is not None else _text_of(content)
    return {"type": "tool_result", "tool_use_id": call_id, "content": value}


def _messages(messages: Any) -> tuple[str, list[dict[str, Any]]]:
    if not isinstance(messages, list) or not messages:
        raise TranslationError("'messages' must be a non-empty list")
    system: list[str] = []
    out: list[dict[str, Any]] = []
    legacy_ids: dict[str, str] = {}  # function name → synthetic id (legacy function calls)

    def add(role: str, blocks: list[dict[str, Any]]) -> None:
        if not blocks:
            return
        if out and out[-1]["role"] == role:  # Anthropic wants alternating turns: merge
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})

    for i, msg in enumerate(messages):
        if not isinstance(msg, dict):
            raise TranslationError("each message must be an object")
        role = msg.get("role")
        if role in ("system", "developer"):
            if text := _text_of(msg.get("content")):
                system.append(text)
        elif role == "user":
            add("user", _blocks(msg.get("content")))
        elif role == "assistant":
            blocks = _blocks(msg.get("content"))
            for call in msg.get("tool_calls") or []:
                fn = call.get("function") or {}
                blocks.append(
                    _tool_use(call.get("id", ""), fn.get("name", ""), fn.get("arguments"))
                )
            if fc := msg.get("function_call"):
                legacy_ids[fc.get("name", "")] = call_id = f"call_legacy_{i}"
                blocks.append(_tool_use(call_id, fc.get("name", ""), fc.get("arguments")))
            add("assistant", blocks)
        elif role == "tool":
            add("user", [_tool_result(msg.get("tool_call_id", ""), msg.get("content"))])
        elif role == "function":
            call_id = legacy_ids.get(msg.get("name", ""), "")
            add("user", [_tool_result(call_id, msg.get("content"))])
        else:
            raise TranslationError(f"unknown message role {role!r}")
    return "\n\n".join(system), out


def _tools(body: dict[str, Any]) -> list[dict[str, Any]]:
    specs = [t.get("function") or {} for t in body.get("tools") or [] if isinstance(t, dict)]
    specs += [f for f in body.get("functions") or [] if isinstance(f, dict)]
    tools = []
    for fn in specs:
        tool = {
            "name": fn.get("name", ""),
            "input_schema": fn.get("parameters") or {"type": "object", "properties": {}},
        }
        if fn.get("description"):
            tool["description"] = fn["description"]
        tools.append(tool)
    return tools


def _tool_choice(choice: Any) -> dict[str, Any] | None:
    if choice in (None, "auto"):
        return {"type": "auto"} if choice else None
    if choice == "none":
        return {"type": "none"}
    if choice == "required":
        return {"type": "any"}
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name") or choice.get("name")
        if name:
            return {"type": "tool", "name": name}
    raise TranslationError("unsupported tool_choice")


def chat_to_messages_request(body: dict[str, Any], model: str) -> dict[str, Any]:
    """An OpenAI chat completion request → an Anthropic Messages request.

    Ignored on purpose (no Anthropic equivalent, harmless to drop): ``response_format``,
    ``seed``, penalties, ``logprobs``, ``stream_options``, ``n == 1``.
    """
    if (body.get("n") or 1) != 1:
        raise TranslationError("n > 1 is not supported by this model")
    system, messages = _messages(body.get("messages"))
    out: dict[str, Any] = {
        "model": model,
        "messages": messages,
        "max_tokens": body.get("max_completion_tokens")
        or body.get("max_tokens")
        or DEFAULT_MAX_TOKENS,
    }
    if system:
        out["system"] = system
    if isinstance(temperature := body.get("temperature"), int | float):
        out["temperature"] = min(temperature, 1)  # OpenAI allows up to 2, Anthropic 1
    if body.get("top_p") is not None:
        out["top_p"] = body["top_p"]
    if stop := body.get("stop"):
        out["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    if tools := _tools(body):
        out["tools"] = tools
    choice = _tool_choice(body.get("tool_choice", body.get("function_call")))
    if body.get("parallel_tool_calls") is False and tools:
        choice = {**(choice or {"type": "auto"}), "disable_parallel_tool_use": True}
    if choice is not None and tools:
        out["tool_choice"] = choice
    if isinstance(body.get("user"), str) and body["user"]:
        out["metadata"] = {"user_id": body["user"]}
    if body.get("stream"):
        out["stream"] = True
    return out


# ---------------------------------------------------------------- response


def message_to_chat_response(message: dict[str, Any], created: int) -> dict[str, Any]:
    """An Anthropic Messages answer → an OpenAI ``chat.completion`` object."""
    text: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in message.get("content") or []:
        if block.get("type") == "text":
            text.append(block.get("text", ""))
        elif block.get("type") == "tool_use":
            calls.append(
                {
                    "id": block.get("id", ""),
                    "type": "function",
                    "function": {
                        "name": block.get("name", ""),
                        "arguments": orjson.dumps(block.get("input") or {}).decode(),
                    },
                }
            )
    content = "".join(text)
    reply: dict[str, Any] = {
        "role": "assistant",
        "content": content if content or not calls else None,
        "refusal": None,
    }
    if calls:
        reply["tool_calls"] = calls
    out: dict[str, Any] = {
        "id": f"chatcmpl-{message.get('id', '')}",
        "object": "chat.completion",
        "created": created,
        "model": message.get("model", ""),
        "choices": [
            {
                "index": 0,
                "message": reply,
                "logprobs": None,
                "finish_reason": FINISH_REASONS.get(message.get("stop_reason") or "", "stop"),
            }
        ],
    }
    if (usage := anthropic_usage(message.get("usage"))) is not None:
        out["usage"] = usage_to_openai(usage)
    return out
