"""Reading JSON request bodies with money intact.

FastAPI's own body parsing goes through ``json.loads`` with floats; billing routes read
the raw body here instead, with every JSON number that has a fraction or exponent parsed
straight to ``Decimal`` and NaN/Infinity refused.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from starlette.requests import Request

from meterline.services.errors import ServiceError

__all__ = ["MAX_BODY_BYTES", "BodyError", "read_json"]

MAX_BODY_BYTES = 8 * 1024 * 1024
MAX_DEPTH = 32


class BodyError(ServiceError):
    status = 400
    code = "invalid_json"


class _TooLarge(BodyError):
    status = 413
    code = "body_too_large"


class _WrongType(BodyError):
    status = 415
    code = "unsupported_media_type"


def _reject_constant(name: str) -> Any:
    raise BodyError(f"{name} is not a valid JSON number")


def _depth(value: Any, level: int = 0) -> int:
    if level > MAX_DEPTH:
        return level
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level + 1)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level + 1)
    return level


async def read_json(request: Request, *, empty_ok: bool = False) -> Any:
    ctype = request.headers.get("content-type", "")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _TooLarge(f"request body exceeds {MAX_BODY_BYTES} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _TooLarge(f"request body exceeds {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        if empty_ok:
            return {}
        raise BodyError("request body must be a JSON object", code="missing_body")
    if ctype and "json" not in ctype.lower():
        raise _WrongType("Content-Type must be application/json")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BodyError("request body is not valid UTF-8") from None
    try:
        value = json.loads(text, parse_float=Decimal, parse_constant=_reject_constant)
    except RecursionError:
        raise BodyError(f"JSON nested deeper than {MAX_DEPTH} levels") from None
    except json.JSONDecodeError as exc:
        raise BodyError(f"request body is not valid JSON: {exc.msg} at {exc.pos}") from None
    if _depth(value) > MAX_DEPTH:
        raise BodyError(f"JSON nested deeper than {MAX_DEPTH} levels")
    return value
