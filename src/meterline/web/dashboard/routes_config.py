"""Configuration tab: billing settings, API keys, provider credentials, Stripe."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from meterline.domain.entities import Environment
from meterline.services.errors import ServiceError
from meterline.web.dashboard.common import Admin, AdminDep, redirect, render, verified_form

__all__ = ["router"]

router = APIRouter()


async def _page(request: Request, admin: Admin, status_code: int = 200, **extra: Any) -> Response:
    c = admin.container
    keys = await c.dashboard.api_keys(admin.ctx)
    stripe: dict[str, Any] | None = None
    if getattr(c, "stripe_sync", None) is not None:
        try:
            stripe = await c.stripe_sync.status(admin.ctx)
        except ServiceError as exc:
            stripe = {"connected": False, "error": exc.message}
    env_keys = [k for k in keys if k.environment == admin.ctx.environment and not k.revoked]
    return render(
        request,
        "configuration.html",
        admin,
        status_code,
        title="Configuration",
        tab="configuration",
        keys=keys,
        key_prefix=env_keys[0].prefix if env_keys else None,
        credentials=await c.credentials.listing(admin.ctx),
        providers=sorted(c.credentials.known_providers),
        stripe=stripe,
        base_url=str(request.base_url).rstrip("/"),
        **extra,
    )


@router.get("/configuration")
async def configuration(request: Request, admin: AdminDep) -> Response:
    return await _page(request, admin)


@router.post("/configuration/billing")
async def update_billing(request: Request, admin: AdminDep) -> Response:
    form = await verified_form(request, admin.session)
    body = {
        "enabled": form.get("enabled") == "on",
        "default_markup_percentage": str(form.get("default_markup_percentage") or "0").strip(),
        "default_flat_rate_per_request": str(
            form.get("default_flat_rate_per_request") or "0"
        ).strip(),
        "currency": str(form.get("currency") or "USD").strip(),
    }
    try:
        project = await admin.container.management.update_config(admin.ctx, body)
    except ServiceError as exc:
        return await _page(request, admin, 422, billing_error=exc.message, billing_param=exc.param)
    admin.ctx = type(admin.ctx)(key=admin.ctx.key, project=project)
    return await _page(request, admin, notice="Billing settings saved.")


@router.post("/keys")
async def create_key(request: Request, admin: AdminDep) -> Response:
    form = await verified_form(request, admin.session)
    chosen = form.get("environment")
    env = Environment(chosen if chosen in ("live", "test") else admin.environment)
    key = await admin.container.dashboard.create_api_key(admin.ctx, env)
    return await _page(request, admin, new_key=key.plaintext)


@router.post("/keys/{key_id}/revoke")
async def revoke_key(request: Request, admin: AdminDep, key_id: str) -> Response:
    await verified_form(request, admin.session)
    await admin.container.dashboard.revoke_api_key(admin.ctx, key_id)
    return await _page(request, admin, notice="Key revoked: calls with it are refused now.")


@router.post("/providers")
async def set_provider(request: Request, admin: AdminDep) -> Response:
    form = await verified_form(request, admin.session)
    body: dict[str, Any] = {"api_key": str(form.get("api_key") or "")}
    if form.get("base_url"):
        body["base_url"] = str(form.get("base_url"))
    try:
        await admin.container.credentials.set(admin.ctx, str(form.get("provider") or ""), body)
    except ServiceError as exc:
        return await _page(request, admin, 422, provider_error=exc.message)
    return await _page(request, admin, notice="Provider key saved (stored encrypted).")


@router.post("/providers/{provider}/delete")
async def delete_provider(request: Request, admin: AdminDep, provider: str) -> Response:
    await verified_form(request, admin.session)
    await admin.container.credentials.delete(admin.ctx, provider)
    return await _page(request, admin, notice=f"Key for {provider} removed.")


@router.post("/stripe/connect")
async def stripe_connect(request: Request, admin: AdminDep) -> Response:
    await verified_form(request, admin.session)
    try:
        url = admin.container.stripe_sync.connect_url(admin.ctx)
    except ServiceError as exc:
        return await _page(request, admin, 422, stripe_error=exc.message)
    return redirect(url, request)


@router.post("/stripe/disconnect")
async def stripe_disconnect(request: Request, admin: AdminDep) -> Response:
    await verified_form(request, admin.session)
    try:
        await admin.container.stripe_sync.disconnect(admin.ctx)
    except ServiceError as exc:
        return await _page(request, admin, 422, stripe_error=exc.message)
    return await _page(request, admin, notice="Stripe disconnected.")
