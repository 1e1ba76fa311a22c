"""OpenAI endpoints: chat completions, embeddings, responses, models."""

from __future__ import annotations

import base64
import struct
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
    sse_data,
)

FINGERPRINT = "fp_fake"
EMBEDDING_DIM = 8
MODELS = (
    "gpt-4o-mini",
    "gpt-4o",
    "gpt-4.1-mini",
    "o4-mini",
    "text-embedding-3-small",
    "claude-3-5-haiku-latest",
    "claude-sonnet-4-5",
)
_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "invalid_request"),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "permission_denied"),
    404: ("invalid_request_error", "model_not_found"),
    408: ("timeout", "timeout"),
    409: ("invalid_request_error", "conflict"),
    413: ("invalid_request_error", "request_too_large"),
    422: ("invalid_request_error", "unprocessable_entity"),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", "server_error"),
    502: ("server_error", "bad_gateway"),
    503: ("server_error", "service_unavailable"),
    504: ("server_error", "timeout"),
}


def openai_error(status: int, message: str, retry_after: int | None = None) -> Response:
    kind, code = _ERRORS.get(
        status, ("server_error" if status >= 500 else "invalid_request_error", f"status_{status}")
    )
    headers = {"retry-after": str(retry_after)} if retry_after is not None else None
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return json_response(body, status, headers)


def model_of(body: dict[str, Any], default: str = "gpt-4o-mini") -> str:
    model = body.get("model")
    return model if isinstance(model, str) else default


def chat_usage(u: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": u.prompt,
        "completion_tokens": u.completion,
        "total_tokens": u.total,
        "prompt_tokens_details": {"cached_tokens": u.cached, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": u.reasoning,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _tool_call(call_id: str) -> dict[str, Any]:
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": TOOL_NAME, "arguments": TOOL_ARGUMENTS},
    }


# --- chat completions ---------------------------------------------------------------------


async def chat_completions(request: Request) -> Response:
    body = await read_json(request)
    if body is None:
        return openai_error(400, "The request body is not a JSON object.")
    messages = body.get("messages")
    try:
        d = parse_directives(last_user_text(messages))
    except DirectiveError as e:
        return openai_error(400, str(e))
    stream = body.get("stream") is True
    early = await prelude(d, openai_error, stream)
    if early is not None:
        return early
    if d.malformed and not stream:
        return malformed_response()
    usage = compute_usage(messages_words(messages), reply_tokens(d), d)
    model = model_of(body)
    if stream:
        options = body.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        return SSEResponse(_chat_stream(model, d, usage, include_usage))
    if d.tool:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": None,
            "refusal": None,
            "tool_calls": [_tool_call(next_id("call_"))],
            "annotations": [],
        }
        finish = "tool_calls"
    else:
        message = {
            "role": "assistant",
            "content": reply_text(d.words),
            "refusal": None,
            "annotations": [],
        }
        finish = "stop"
    out: dict[str, Any] = {
        "id": next_id("chatcmpl-"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "service_tier": "default",
        "system_fingerprint": FINGERPRINT,
    }
    if usage is not None:
        out["usage"] = chat_usage(usage)
    return json_response(out)


async def _chat_stream(
    model: str, d: Directives, usage: Usage | None, include_usage: bool
) -> AsyncGenerator[bytes, None]:
    base = {
        "id": next_id("chatcmpl-"),
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "service_tier": "default",
        "system_fingerprint": FINGERPRINT,
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        c = {
            **base,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if include_usage:
            c["usage"] = None
        return sse_data(c)

    if d.tool:
        call = _tool_call(next_id("call_"))
        call["function"]["arguments"] = ""
        first: dict[str, Any] = {
            "role": "assistant",
            "content": None,
            "refusal": None,
            "tool_calls": [{"index": 0, **call}],
        }
        deltas: list[dict[str, Any]] = [
            {"tool_calls": [{"index": 0, "function": {"arguments": p}}]}
            for p in TOOL_ARGUMENT_PIECES
        ]
        finish = "tool_calls"
    else:
        first = {"role": "assistant", "content": "", "refusal": None}
        deltas = [{"content": p} for p in reply_pieces(d.words)]
        finish = "stop"
    yield chunk(first)
    if d.malformed:
        yield MALFORMED_SSE
        yield b"data: [DONE]\n\n"
        return
    for sent, delta in enumerate(deltas):
        if d.cut is not None and sent >= d.cut:
            raise Cut
        await pause(d.slow)
        yield chunk(delta)
    if d.cut is not None:
        raise Cut
    yield chunk({}, finish)
    if include_usage and usage is not None:
        yield sse_data({**base, "choices": [], "usage": chat_usage(usage)})
    yield b"data: [DONE]\n\n"


# --- embeddings ---------------------------------------------------------------------------


def _vector(i: int) -> list[float]:
    return [round(((i + 1) * (k + 1) % 17) / 17 - 0.5, 4) for k in range(EMBEDDING_DIM)]


_VECTORS = [_vector(i) for i in range(64)]


async def embeddings(request: Request) -> Response:
    body = await read_json(request)
    if body is None:
        return openai_error(400, "The request body is not a JSON object.")
    raw = body.get("input")
    inputs: list[Any] = raw if isinstance(raw, list) else [raw]
    if raw is None or not inputs:
        return openai_error(400, "'input' is required.")
    if all(isinstance(x, int) for x in inputs):
        inputs = [inputs]  # one input given as a list of token ids
    prompt = 0
    texts = []
    for item in inputs:
        if isinstance(item, str):
            prompt += len(item.split())
            texts.append(item)
        elif isinstance(item, list):
            prompt += len(item)
    try:
        d = parse_directives(" ".join(texts))
    except DirectiveError as e:
        return openai_error(400, str(e))
    early = await prelude(d, openai_error, False)
    if early is not None:
        return early
    if d.malformed:
        return malformed_response()
    as_base64 = body.get("encoding_format") == "base64"
    data = []
    for i in range(len(inputs)):
        vec = _VECTORS[i % len(_VECTORS)]
        emb: Any = (
            base64.b64encode(struct.pack(f"<{EMBEDDING_DIM}f", *vec)).decode() if as_base64 else vec
        )
        data.append({"object": "embedding", "index": i, "embedding": emb})
    out: dict[str, Any] = {"object": "list", "data": data, "model": model_of(body)}
    usage = compute_usage(prompt, 0, d)
    if usage is not None:
        out["usage"] = {"prompt_tokens": usage.prompt, "total_tokens": usage.prompt}
    return json_response(out)


# --- models -------------------------------------------------------------------------------


async def models(request: Request) -> Response:
    await read_json(request)
    if "anthropic-version" in request.headers:
        data = [
            {
                "type": "model",
                "id": m,
                "display_name": m,
                "created_at": "2025-01-01T00:00:00Z",
            }
            for m in MODELS
        ]
        return json_response(
            {"data": data, "has_more": False, "first_id": MODELS[0], "last_id": MODELS[-1]}
        )
    listing = [
        {"id": m, "object": "model", "created": 1_700_000_000, "owned_by": "fake-upstream"}
        for m in MODELS
    ]
    return json_response({"object": "list", "data": listing})
