"""JSON responses (orjson) and the contract's error body.

orjson refuses ``Decimal`` on purpose: money must be turned into decimal strings by the
serializers, so a forgotten conversion fails loudly instead of leaking a float.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse

__all__ = ["ORJSON", "error_response"]


class ORJSON(JSONResponse):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    type_: str = "invalid_request_error",
    param: str | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> ORJSON:
    body: dict[str, Any] = {"type": type_, "code": code, "message": message}
    if param is not None:
        body["param"] = param
    if extra:
        body.update(extra)
    return ORJSON({"error": body}, status_code=status, headers=headers)
