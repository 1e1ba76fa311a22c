"""The OpenAI- and Anthropic-compatible gateway routes (DESIGN.md §2.1).

Bodies are passed through: parsed with orjson to read the few fields the gateway needs
(model, user, stream, max_tokens), never validated against a model of their own, so
whatever the provider accepts (tools, images, JSON mode…) goes through unchanged.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response, StreamingResponse

from meterline.ports import Operation, UpstreamError
from meterline.services.errors import Invalid, ServiceError
from meterline.services.gateway import Denied, GatewayRequest, estimate_tokens
from meterline.web.body import read_body
from meterline.web.deps import SECURED, Auth, authenticate, container_of
from meterline.web.direct_route import DirectRoute
from meterline.web.responses import ORJSON, error_response

__all__ = ["router"]

router = APIRouter(tags=["gateway"], route_class=DirectRoute)

MAX_GATEWAY_BODY = 32 * 1024 * 1024
_SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


async def _body(request: Request) -> dict[str, Any]:
    # 413 before reading when Content-Length is over the limit, 415 for a non-JSON
    # Content-Type, and a chunked body is cut off as soon as it passes the limit.
    raw = await read_body(request, MAX_GATEWAY_BODY, json_only=True)
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise Invalid("request body is not valid JSON", code="invalid_json") from None
    if not isinstance(body, dict):
        raise Invalid("request body must be a JSON object", code="invalid_json")
    return body


def _end_user(request: Request, body: dict[str, Any], operation: Operation) -> str | None:
    candidates: list[Any] = [request.headers.get("x-end-user-id")]
    if operation is Operation.MESSAGES:
        metadata = body.get("metadata")
        candidates.append(metadata.get("user_id") if isinstance(metadata, dict) else None)
    else:
        candidates.append(body.get("user"))
        if operation is Operation.RESPONSES:
            candidates.append(body.get("safety_identifier"))
    for value in candidates:
        if value is None or value == "":
            continue
        if not isinstance(value, str) or len(value) > 256 or any(ord(c) < 32 for c in value):
            raise Invalid(
                "the end user id must be a string of at most 256 characters", param="user"
            )
        return value
    return None


def _text_of(value: Any) -> str:
    """Prompt text for the reservation estimate: strings anywhere in messages/input."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return " ".join(_text_of(v) for v in value)
    if isinstance(value, dict):
        return " ".join(_text_of(v) for k, v in value.items() if k in ("content", "text", "input"))
    return ""


def _gateway_request(
    request: Request, ctx: Any, operation: Operation, body: dict[str, Any]
) -> GatewayRequest:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise Invalid("model is required", param="model")
    stream = body.get("stream") is True
    options = body.get("stream_options")
    wants_usage = isinstance(options, dict) and options.get("include_usage") is True
    max_tokens = (
        body.get("max_tokens") or body.get("max_completion_tokens") or body.get("max_output_tokens")
    )
    if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 0):
        raise Invalid("max_tokens must be a positive whole number", param="max_tokens")
    prompt = _text_of(body.get("messages") or body.get("input") or "") + _text_of(
        body.get("system") or body.get("instructions") or ""
    )
    # The request id of the web middleware: header, log lines and ledger event id agree.
    request_id = getattr(request.state, "request_id", None)
    return GatewayRequest(
        **({"request_id": request_id} if request_id else {}),
        ctx=ctx,
        operation=operation,
        body=body,
        model=model,
        end_user_id=_end_user(request, body, operation),
        stream=stream and operation is not Operation.EMBEDDINGS,
        client_wants_usage=wants_usage,
        estimated_prompt_tokens=estimate_tokens(prompt),
        max_tokens=max_tokens,
    )


def _anthropic_error(
    status: int, kind: str, message: str, headers: dict[str, str] | None = None
) -> ORJSON:
    return ORJSON(
        {"type": "error", "error": {"type": kind, "message": message}},
        status_code=status,
        headers=headers,
    )


async def _serve(request: Request, ctx: Any, operation: Operation) -> Response:
    gateway = container_of(request).gateway
    anthropic = operation is Operation.MESSAGES
    try:
        req = _gateway_request(request, ctx, operation, await _body(request))
        adm = await gateway.admit(req)
        headers = {"x-meterline-request-id": req.request_id, **gateway.rate_limit_headers(adm)}
        if req.stream:
            relay = await gateway.open_stream(req, adm)
            return StreamingResponse(
                relay, media_type="text/event-stream", headers={**_SSE_HEADERS, **headers}
            )
        reply = await gateway.complete(req, adm)
        return ORJSON(reply.body, status_code=reply.status, headers=headers)
    except UpstreamError as exc:
        return ORJSON(exc.body, status_code=exc.status)
    except ServiceError as exc:
        retry = (
            {"Retry-After": str(exc.retry_after)}
            if isinstance(exc, Denied) and exc.retry_after
            else None
        )
        if anthropic:
            kind = {
                401: "authentication_error",
                403: "permission_error",
                429: "rate_limit_error",
                404: "not_found_error",
                413: "request_too_large",
            }.get(exc.status, "invalid_request_error")
            return _anthropic_error(exc.status, kind, exc.message, retry)
        return error_response(
            exc.status, exc.code, exc.message, type_=exc.type, param=exc.param, headers=retry
        )


@router.post(
    "/v1/chat/completions", summary="OpenAI chat completions (stream or not)", openapi_extra=SECURED
)
async def chat_completions(request: Request) -> Response:
    return await _serve(request, await authenticate(request), Operation.CHAT)


@router.post("/v1/embeddings", summary="OpenAI embeddings", openapi_extra=SECURED)
async def embeddings(request: Request) -> Response:
    return await _serve(request, await authenticate(request), Operation.EMBEDDINGS)


@router.post("/v1/responses", summary="OpenAI Responses API (stream or not)", openapi_extra=SECURED)
async def responses(request: Request) -> Response:
    return await _serve(request, await authenticate(request), Operation.RESPONSES)


@router.post(
    "/v1/messages", summary="Anthropic Messages API (stream or not)", openapi_extra=SECURED
)
async def messages(request: Request) -> Response:
    return await _serve(request, await authenticate(request), Operation.MESSAGES)


@router.get("/v1/models", summary="The models this key may use")
async def models(request: Request, ctx: Auth) -> ORJSON:
    container = container_of(request)
    plan = await container.plans.default_plan(ctx.project_id)
    names: dict[str, str] = {}
    for name, route in ctx.project.model_map.items():
        names[name] = route.partition("/")[0] or "meterline"
    for pattern in plan.allowed_models if plan else ():
        if not any(ch in pattern for ch in "*?["):
            names.setdefault(pattern, "meterline")
    return ORJSON(
        {
            "object": "list",
            "data": [
                {"id": name, "object": "model", "created": 0, "owned_by": owner}
                for name, owner in sorted(names.items())
            ],
        }
    )
