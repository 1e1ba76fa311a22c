"""Transport plumbing shared by both upstream adapters.

One place decides what a transport failure means, so both adapters agree: before any
output it is an :class:`UpstreamError` the gateway can answer with (502 unreachable,
504 timed out); once output has started it is an :class:`UpstreamBroken`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson

from meterline.adapters.upstreams.errors import error_for
from meterline.adapters.upstreams.http_client import Reply, StreamingReply, TransportError
from meterline.adapters.upstreams.sse import SSEDecoder, SSEEvent
from meterline.ports import Operation, UpstreamError

__all__ = [
    "UNPARSABLE",
    "headers_of",
    "join_url",
    "json_body",
    "or_text",
    "parse_json",
    "read_events",
    "transport_error",
]

UNPARSABLE = object()  # parse_json's answer for a body that is not JSON


def join_url(base_url: str, path: str) -> str:
    return base_url.rstrip("/") + path


def transport_error(operation: Operation, exc: TransportError) -> UpstreamError:
    if exc.timed_out:
        return error_for(operation, 504, f"provider timed out ({exc})")
    return error_for(operation, 502, f"provider unreachable: {exc}")


def json_body(payload: Any) -> bytes:
    """The request body as compact UTF-8 JSON, by orjson (bodies came in through orjson,
    so they go back out the same, without the stdlib encoder's cost)."""
    return orjson.dumps(payload)


def parse_json(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return UNPARSABLE


def or_text(data: Any, raw: bytes) -> Any:
    """An error answer as the client should see it: ``data`` (``parse_json(raw)``), or
    the raw body as text where it was not JSON."""
    return raw.decode("utf-8", "replace") if data is UNPARSABLE else data


async def read_events(response: StreamingReply) -> AsyncIterator[SSEEvent]:
    """Decode SSE from the response as bytes arrive (never buffering the body)."""
    decoder = SSEDecoder()
    async for chunk in response.chunks():
        for event in decoder.feed(chunk):
            yield event
    for event in decoder.close():
        yield event


def headers_of(response: Reply | StreamingReply) -> dict[str, str]:
    """Provider headers worth showing the client (request ids help support tickets)."""
    keep = ("x-request-id", "request-id", "openai-processing-ms")
    return {k: response.headers[k] for k in keep if k in response.headers}
