"""Stripe Connect and invoice sending (DESIGN.md §2.3): parse, call ``StripeSync``, respond.

The callback and the webhook take no API key: the callback is authenticated by the signed
OAuth ``state``, the webhook by Stripe's signature over the raw body (which is why the
body is read as bytes, never parsed before verification).

Sending an invoice (``POST /api/v1/billing/invoices/{id}/send``) lives with the other
invoice routes (``invoice_routes``), which call :meth:`StripeSync.send`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter, Query, Request

from meterline.services.errors import ServiceError
from meterline.web import response_schemas as rs
from meterline.web.body import read_json
from meterline.web.deps import Auth, container_of
from meterline.web.responses import ORJSON
from meterline.web.schemas import ONBOARD_BODY

if TYPE_CHECKING:
    from meterline.services.stripe_sync import StripeSync

__all__ = ["MAX_WEBHOOK_BYTES", "router"]

router = APIRouter(tags=["stripe"])

MAX_WEBHOOK_BYTES = 1024 * 1024


class WebhookTooLarge(ServiceError):
    """413, like an oversized body on every other route."""

    status = 413


class StripeNotConfigured(ServiceError):
    status = 409
    code = "stripe_not_configured"


def _sync(request: Request) -> StripeSync:
    sync: StripeSync | None = getattr(container_of(request), "stripe_sync", None)
    if sync is None:
        raise StripeNotConfigured(
            "Stripe is not configured on this server: set METERLINE_STRIPE_SECRET_KEY "
            "(and METERLINE_STRIPE_CLIENT_ID, METERLINE_STRIPE_WEBHOOK_SECRET)."
        )
    return sync


@router.get(
    "/api/v1/stripe/connect",
    summary="Start Stripe Connect (OAuth): returns the URL",
    responses=rs.STRIPE_CONNECT,
)
async def connect(request: Request, ctx: Auth) -> ORJSON:
    return ORJSON({"url": _sync(request).connect_url(ctx)})


@router.get(
    "/api/v1/stripe/callback",
    summary="Stripe Connect OAuth callback (no key: the signed state authenticates it)",
    responses=rs.STRIPE_CALLBACK,
)
async def callback(
    request: Request,
    code: str | None = Query(None, max_length=500),
    state: str | None = Query(None, max_length=2000),
    error: str | None = Query(None, max_length=200),
    error_description: str | None = Query(None, max_length=2000),
) -> ORJSON:
    sync = _sync(request)
    if error:
        raise ServiceError(
            f"Stripe Connect was not completed: {error_description or error}", code=error[:64]
        )
    if not state:
        raise ServiceError("The callback has no state.", code="invalid_state", param="state")
    connection = await sync.complete(state, code or "")
    return ORJSON(
        {
            "connected": True,
            "account_id": connection.account_id,
            "livemode": connection.livemode,
        }
    )


@router.post(
    "/api/v1/stripe/onboard",
    summary="Express onboarding: returns the account link",
    openapi_extra=ONBOARD_BODY,
    responses=rs.STRIPE_ONBOARD,
)
async def onboard(request: Request, ctx: Auth) -> ORJSON:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise ServiceError("request body must be a JSON object")
    urls = {}
    for name in ("refresh_url", "return_url"):
        value = body.get(name)
        if not isinstance(value, str) or not value.startswith(("https://", "http://")):
            raise ServiceError(f"{name} must be an http(s) URL", code="invalid_value", param=name)
        urls[name] = value
    url = await _sync(request).onboarding_url(ctx, **urls)
    return ORJSON({"url": url})


@router.post(
    "/api/v1/stripe/disconnect",
    summary="Disconnect the organization's Stripe account",
    responses=rs.STRIPE_DISCONNECT,
)
async def disconnect(request: Request, ctx: Auth) -> ORJSON:
    removed = await _sync(request).disconnect(ctx)
    return ORJSON({"connected": False, "disconnected": removed})


@router.get(
    "/api/v1/stripe/status",
    summary="The organization's Stripe connection",
    responses=rs.STRIPE_STATUS,
)
async def status(request: Request, ctx: Auth) -> ORJSON:
    return ORJSON(await _sync(request).status(ctx))


@router.post(
    "/api/v1/stripe/webhook",
    summary="Stripe webhook (no key: the signature is checked)",
    responses=rs.STRIPE_WEBHOOK,
)
async def webhook(request: Request) -> ORJSON:
    sync = _sync(request)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_WEBHOOK_BYTES:
            raise WebhookTooLarge(
                f"webhook body over {MAX_WEBHOOK_BYTES} bytes", code="body_too_large"
            )
        chunks.append(chunk)
    result = await sync.handle_webhook(b"".join(chunks), request.headers.get("stripe-signature"))
    return ORJSON(result)
