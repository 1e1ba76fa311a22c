"""Error bodies in the client's wire format.

``UpstreamError.body`` goes to the client unchanged, so it must look like what the
client's SDK expects: OpenAI-style ``{"error": {"message", "type", "code"}}`` for
chat/embeddings/responses clients, Anthropic-style ``{"type": "error", "error":
{"type", "message"}}`` for Messages clients — whichever provider actually answered.
"""

from __future__ import annotations

from typing import Any

from meterline.ports import Operation, UpstreamError

__all__ = [
    "anthropic_error",
    "error_for",
    "from_anthropic_body",
    "from_openai_body",
    "is_anthropic_error",
    "is_openai_error",
    "openai_error",
]

# Anthropic's error types by HTTP status (their documented table), used when an
# OpenAI-protocol provider's error must be shown to an Anthropic-format client.
_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}


def openai_error(
    status: int, message: str, type_: str = "upstream_error", code: str = ""
) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "code": code or f"upstream_{status}"}}


def anthropic_error(status: int, message: str, type_: str = "") -> dict[str, Any]:
    kind = type_ or _ANTHROPIC_TYPES.get(status, "api_error")
    return {"type": "error", "error": {"type": kind, "message": message}}


def error_for(operation: Operation, status: int, message: str, type_: str = "") -> UpstreamError:
    """An ``UpstreamError`` shaped for the client of ``operation``."""
    if operation is Operation.MESSAGES:
        body = anthropic_error(status, message, type_)
    else:
        body = openai_error(status, message, type_ or "upstream_error")
    return UpstreamError(status, body, message)


def _message_of(payload: Any, status: int) -> str:
    """Best human-readable message found in a foreign error payload."""
    if isinstance(payload, dict):
        err = payload.get("error", payload)
        if isinstance(err, str):
            return err
        for source, key in ((err, "message"), (payload, "message"), (payload, "detail")):
            value = source.get(key) if isinstance(source, dict) else None
            if isinstance(value, str):
                return value
    if isinstance(payload, list) and payload:
        return _message_of(payload[0], status)
    if isinstance(payload, str) and payload.strip():
        return payload.strip()[:500]
    return f"provider answered HTTP {status}"


def is_openai_error(payload: Any) -> bool:
    return (
        isinstance(payload, dict)
        and isinstance(payload.get("error"), dict)
        and isinstance(payload["error"].get("message"), str)
    )


def is_anthropic_error(payload: Any) -> bool:
    return (
        isinstance(payload, dict)
        and payload.get("type") == "error"
        and isinstance(payload.get("error"), dict)
        and isinstance(payload["error"].get("message"), str)
    )


def from_openai_body(operation: Operation, status: int, payload: Any) -> UpstreamError:
    """An OpenAI-protocol provider's error (``payload`` = parsed JSON or raw text)."""
    message = _message_of(payload, status)
    if operation is Operation.MESSAGES:
        return UpstreamError(status, anthropic_error(status, message), message)
    if is_openai_error(payload):
        return UpstreamError(status, payload, message)
    return UpstreamError(status, openai_error(status, message), message)


def from_anthropic_body(operation: Operation, status: int, payload: Any) -> UpstreamError:
    """Anthropic's error: passed through for Messages clients, converted for OpenAI ones."""
    message = _message_of(payload, status)
    if operation is Operation.MESSAGES:
        if is_anthropic_error(payload):
            return UpstreamError(status, payload, message)
        return UpstreamError(status, anthropic_error(status, message), message)
    kind = "upstream_error"
    if is_anthropic_error(payload):
        kind = str(payload["error"].get("type") or kind)
    return UpstreamError(status, openai_error(status, message, kind), message)
