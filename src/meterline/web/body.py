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

__all__ = ["MAX_BODY_BYTES", "BodyError", "read_body", "read_json", "require_json_type"]

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


_CONTAINERS = (dict, list)


def _depth(value: Any) -> int:
    """How deep containers nest in ``value`` (a scalar 0, ``[]`` 1, ``[{}]`` 2), counted
    no further than ``MAX_DEPTH + 1``.

    One level at a time, without recursion: a batch of a thousand events is a thousand
    small objects, and a generator per object cost more than parsing the body did."""
    if not isinstance(value, _CONTAINERS):
        return 0
    depth = 0
    level: list[Any] = [value]
    while level and depth <= MAX_DEPTH:
        depth += 1
        below: list[Any] = []
        for container in level:
            for item in container.values() if isinstance(container, dict) else container:
                if isinstance(item, _CONTAINERS):
                    below.append(item)
        level = below
    return depth


def require_json_type(request: Request) -> None:
    """415 when a Content-Type is given and is not JSON (none at all is let through)."""
    ctype = request.headers.get("content-type", "")
    if ctype and "json" not in ctype.lower():
        raise _WrongType("Content-Type must be application/json")


async def read_body(request: Request, limit: int, *, json_only: bool = False) -> bytearray:
    """The raw body, refused with 413 once it is over ``limit`` bytes: before a byte is
    read when the declared Content-Length says so, otherwise (chunked, or a Content-Length
    that lies) as soon as the chunks received pass it, so no more than ``limit`` bytes are
    ever held. ``json_only`` also refuses a non-JSON Content-Type (415) before reading."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise _TooLarge(f"request body exceeds {limit} bytes")
    if json_only:
        require_json_type(request)
    raw = bytearray()
    async for chunk in request.stream():
        if len(raw) + len(chunk) > limit:
            raise _TooLarge(f"request body exceeds {limit} bytes")
        raw += chunk
    return raw


async def read_json(request: Request, *, empty_ok: bool = False) -> Any:
    raw = await read_body(request, MAX_BODY_BYTES)
    if not raw.strip():
        if empty_ok:
            return {}
        raise BodyError("request body must be a JSON object", code="missing_body")
    require_json_type(request)
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
