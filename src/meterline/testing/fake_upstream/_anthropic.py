"""Anthropic endpoint: ``POST /v1/messages``."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ._core import (
    MALFORMED_SSE,
    TOOL_ARGUMENT_PIECES,
    TOOL_NAME,
    Cut,
    DirectiveError,
    Directives,
    SSEResponse,
    Usage,
    compute_usage,
    content_words,
    json_response,
    last_user_text,
    malformed_response,
    messages_words,
    next_id,
    parse_directives,
    pause,
    prelude,
    read_json,
    reply_pieces,
    reply_text,
    reply_tokens,
    sse_event,
)

_ERRORS = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def anthropic_error(status: int, message: str, retry_after: int | None = None) -> Response:
    kind = _ERRORS.get(status, "api_error" if status >= 500 else "invalid_request_error")
    headers = {"retry-after": str(retry_after)} if retry_after is not None else None
    body = {"type": "error", "error": {"type": kind, "message": message}}
    return json_response(body, status, headers)


def anthropic_usage(u: Usage, output_tokens: int | None = None) -> dict[str, Any]:
    """Anthropic's ``input_tokens`` excludes cache reads (``cache_read_input_tokens``)."""
    return {
        "input_tokens": u.prompt - u.cached,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": u.cached,
        "output_tokens": u.completion if output_tokens is None else output_tokens,
    }


def _content_block(d: Directives, tool_id: str, done: bool) -> dict[str, Any]:
    if d.tool:
        return {
            "type": "tool_use",
            "id": tool_id,
            "name": TOOL_NAME,
            "input": {"city": "Paris"} if done else {},
        }
    return {"type": "text", "text": reply_text(d.words) if done else ""}


async def messages(request: Request) -> Response:
    body = await read_json(request)
    if body is None:
        return anthropic_error(400, "The request body is not a JSON object.")
    msgs = body.get("messages")
    try:
        d = parse_directives(last_user_text(msgs))
    except DirectiveError as e:
        return anthropic_error(400, str(e))
    stream = body.get("stream") is True
    early = await prelude(d, anthropic_error, stream)
    if early is not None:
        return early
    if d.malformed and not stream:
        return malformed_response()
    prompt = messages_words(msgs) + content_words(body.get("system"))
    usage = compute_usage(prompt, reply_tokens(d), d)
    model = body.get("model")
    model = model if isinstance(model, str) else "claude-3-5-haiku-latest"
    message: dict[str, Any] = {
        "id": next_id("msg_"),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
    }
    tool_id = next_id("toolu_")
    if stream:
        return SSEResponse(_stream(message, d, usage, tool_id))
    message["content"] = [_content_block(d, tool_id, True)]
    message["stop_reason"] = "tool_use" if d.tool else "end_turn"
    if usage is not None:
        message["usage"] = anthropic_usage(usage)
    return json_response(message)


async def _stream(
    message: dict[str, Any], d: Directives, usage: Usage | None, tool_id: str
) -> AsyncGenerator[bytes, None]:
    start = dict(message)
    if usage is not None:
        start["usage"] = anthropic_usage(usage, output_tokens=0 if d.zero_usage else 1)
    yield sse_event("message_start", {"type": "message_start", "message": start})
    if d.malformed:
        yield b"event: content_block_delta\n" + MALFORMED_SSE
        return
    yield sse_event(
        "content_block_start",
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": _content_block(d, tool_id, False),
        },
    )
    yield sse_event("ping", {"type": "ping"})
    if d.tool:
        deltas = [{"type": "input_json_delta", "partial_json": p} for p in TOOL_ARGUMENT_PIECES]
    else:
        deltas = [{"type": "text_delta", "text": p} for p in reply_pieces(d.words)]
    for sent, delta in enumerate(deltas):
        if d.cut is not None and sent >= d.cut:
            raise Cut
        await pause(d.slow)
        yield sse_event(
            "content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}
        )
    if d.cut is not None:
        raise Cut
    yield sse_event("content_block_stop", {"type": "content_block_stop", "index": 0})
    final: dict[str, Any] = {
        "type": "message_delta",
        "delta": {"stop_reason": "tool_use" if d.tool else "end_turn", "stop_sequence": None},
    }
    if usage is not None:
        final["usage"] = {"output_tokens": usage.completion}
    yield sse_event("message_delta", final)
    yield sse_event("message_stop", {"type": "message_stop"})
