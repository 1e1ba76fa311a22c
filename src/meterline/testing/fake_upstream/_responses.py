"""OpenAI Responses API: ``POST /v1/responses``, stream and non-stream."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ._core import (
    MALFORMED_SSE,
    TOOL_ARGUMENT_PIECES,
    TOOL_ARGUMENTS,
    TOOL_NAME,
    Cut,
    DirectiveError,
    Directives,
    SSEResponse,
    Usage,
    compute_usage,
    content_text,
    content_words,
    json_response,
    malformed_response,
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
from ._openai import model_of, openai_error


def _responses_input(body: dict[str, Any]) -> tuple[int, str]:
    """(prompt words, directive text) of a Responses request."""
    raw = body.get("input")
    instructions = body.get("instructions")
    words = len(instructions.split()) if isinstance(instructions, str) else 0
    if isinstance(raw, str):
        return words + len(raw.split()), raw
    text = ""
    if isinstance(raw, list):
        for item in raw:
            if isinstance(item, dict) and "content" in item:
                words += content_words(item["content"])
                if item.get("role", "user") == "user":
                    text = content_text(item["content"])
    return words, text


def responses_usage(u: Usage) -> dict[str, Any]:
    return {
        "input_tokens": u.prompt,
        "input_tokens_details": {"cached_tokens": u.cached},
        "output_tokens": u.completion,
        "output_tokens_details": {"reasoning_tokens": u.reasoning},
        "total_tokens": u.total,
    }


def _response_object(
    body: dict[str, Any], rid: str, created: int, status: str, output: list[Any]
) -> dict[str, Any]:
    return {
        "id": rid,
        "object": "response",
        "created_at": created,
        "status": status,
        "background": False,
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "model": model_of(body),
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None},
        "store": True,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": body.get("tools") or [],
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": None,
        "user": body.get("user"),
        "metadata": {},
    }


def _text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _output_item(d: Directives, item_id: str, call_id: str, done: bool) -> dict[str, Any]:
    status = "completed" if done else "in_progress"
    if d.tool:
        return {
            "id": item_id,
            "type": "function_call",
            "status": status,
            "arguments": TOOL_ARGUMENTS if done else "",
            "call_id": call_id,
            "name": TOOL_NAME,
        }
    return {
        "id": item_id,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": [_text_part(reply_text(d.words))] if done else [],
    }


async def responses(request: Request) -> Response:
    body = await read_json(request)
    if body is None:
        return openai_error(400, "The request body is not a JSON object.")
    prompt, text = _responses_input(body)
    try:
        d = parse_directives(text)
    except DirectiveError as e:
        return openai_error(400, str(e))
    stream = body.get("stream") is True
    early = await prelude(d, openai_error, stream)
    if early is not None:
        return early
    if d.malformed and not stream:
        return malformed_response()
    usage = compute_usage(prompt, reply_tokens(d), d)
    rid, created = next_id("resp_"), int(time.time())
    item_id = next_id("fc_" if d.tool else "msg_")
    call_id = next_id("call_")
    if stream:
        return SSEResponse(_responses_stream(body, d, usage, rid, created, item_id, call_id))
    out = _response_object(
        body, rid, created, "completed", [_output_item(d, item_id, call_id, True)]
    )
    if usage is None:
        del out["usage"]
    else:
        out["usage"] = responses_usage(usage)
    return json_response(out)


async def _responses_stream(
    body: dict[str, Any],
    d: Directives,
    usage: Usage | None,
    rid: str,
    created: int,
    item_id: str,
    call_id: str,
) -> AsyncGenerator[bytes, None]:
    seq = 0

    def event(kind: str, /, **fields: Any) -> bytes:
        nonlocal seq
        seq += 1
        return sse_event(kind, {"type": kind, "sequence_number": seq - 1, **fields})

    pending = _response_object(body, rid, created, "in_progress", [])
    yield event("response.created", response=pending)
    if d.malformed:
        yield b"event: response.output_text.delta\n" + MALFORMED_SSE
        return
    yield event("response.in_progress", response=pending)
    yield event(
        "response.output_item.added",
        output_index=0,
        item=_output_item(d, item_id, call_id, False),
    )
    where = {"item_id": item_id, "output_index": 0}
    if d.tool:
        pieces: tuple[str, ...] = TOOL_ARGUMENT_PIECES
        delta_name = "response.function_call_arguments.delta"
        extra: dict[str, Any] = {}
    else:
        pieces = reply_pieces(d.words)
        delta_name = "response.output_text.delta"
        extra = {"content_index": 0, "logprobs": []}
        yield event("response.content_part.added", **where, content_index=0, part=_text_part(""))
    for sent, piece in enumerate(pieces):
        if d.cut is not None and sent >= d.cut:
            raise Cut
        await pause(d.slow)
        yield event(delta_name, **where, **extra, delta=piece)
    if d.cut is not None:
        raise Cut
    done_item = _output_item(d, item_id, call_id, True)
    if d.tool:
        yield event(
            "response.function_call_arguments.done",
            **where,
            name=TOOL_NAME,
            arguments=TOOL_ARGUMENTS,
        )
    else:
        text = reply_text(d.words)
        yield event("response.output_text.done", **where, **extra, text=text)
        yield event("response.content_part.done", **where, content_index=0, part=_text_part(text))
    yield event("response.output_item.done", output_index=0, item=done_item)
    final = _response_object(body, rid, created, "completed", [done_item])
    if usage is None:
        del final["usage"]
    else:
        final["usage"] = responses_usage(usage)
    yield event("response.completed", response=final)
