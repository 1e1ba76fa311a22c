"""Invoices, prices and repricing (DESIGN.md §2.3). Project keys; the key's environment.

Exports: ``format=csv`` is one spreadsheet-ready table (see
``services/invoice_export.py``: a row per line plus a ``total`` row per invoice);
``format=json`` is ``{"invoices": [...]}``. ``include=events`` adds the usage events:
JSON gains ``"events": [...]``, CSV returns the events table instead of the lines table
(two tables in one CSV would not open cleanly anywhere).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Path, Query, Request, Response

from meterline.domain.invoices import Invoice, InvoiceStatus
from meterline.ports import PriceOverride
from meterline.services.auth import AuthContext
from meterline.services.body_fields import known_fields
from meterline.services.errors import Conflict, Invalid, ServiceError
from meterline.services.invoice_export import event_dict, events_csv, invoice_dict, invoices_csv
from meterline.services.invoicing import parse_period
from meterline.web import response_schemas as rs
from meterline.web.body import read_json
from meterline.web.deps import Auth, container_of
from meterline.web.invoice_schemas import GENERATE_BODY, PRICE_BODY, REPRICE_BODY
from meterline.web.responses import ORJSON
from meterline.web.schemas import IsoDate
from meterline.web.serializers import money

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/billing", tags=["invoices"])

InvoiceId = Path(..., min_length=1, max_length=64)
Format = Query("json", pattern="^(csv|json)$")
MAX_EXPORT = 10_000
_GENERATE_FIELDS = {"period_start", "period_end", "end_user_ids", "send_via_stripe"}


def _parse_generate(raw: object) -> tuple[date, date, list[str] | None, bool]:
    raw = known_fields(raw, _GENERATE_FIELDS)
    for name in ("period_start", "period_end"):
        if name not in raw:
            raise Invalid(f"{name} is required", param=name, code="missing_field")
    start, end = parse_period(raw["period_start"], raw["period_end"])
    users = raw.get("end_user_ids")
    if users is not None:
        if not isinstance(users, list) or not all(
            isinstance(u, str) and 0 < len(u) <= 256 for u in users
        ):
            raise Invalid("end_user_ids must be a list of end user ids", param="end_user_ids")
        if len(users) > MAX_EXPORT:
            raise Invalid(f"at most {MAX_EXPORT} end user ids", param="end_user_ids")
    send = raw.get("send_via_stripe", False)
    if not isinstance(send, bool):
        raise Invalid("send_via_stripe must be true or false", param="send_via_stripe")
    return start, end, users, send


async def _send(request: Request, ctx: AuthContext, invoice: Invoice) -> Invoice:
    """Through the Stripe sync service when the deployment has one."""
    sync = getattr(container_of(request), "stripe_sync", None)
    if sync is None:
        raise Conflict("stripe sending not available", code="stripe_unavailable")
    sent: Invoice = await sync.send(ctx, invoice.id)
    return sent


@router.post(
    "/invoices",
    summary="Generate draft invoices for a period",
    openapi_extra=GENERATE_BODY,
    responses=rs.INVOICE_GENERATE,
)
async def generate(request: Request, ctx: Auth) -> ORJSON:
    start, end, users, send = _parse_generate(await read_json(request))
    result = await container_of(request).invoicing.generate(ctx, start, end, users)
    invoices, errors = list(result.generated), list(result.errors)
    if send:
        for i, inv in enumerate(invoices):
            try:
                invoices[i] = await _send(request, ctx, inv)
            except ServiceError as exc:
                errors.append(
                    {
                        "invoice_id": inv.id,
                        "end_user_id": inv.end_user_id,
                        "code": exc.code,
                        "error": exc.message,
                    }
                )
    return ORJSON(
        {
            "period_start": start.isoformat(),
            "period_end": end.isoformat(),
            "generated": len(invoices),
            "skipped": result.skipped,
            "errors": errors,
            "invoices": [invoice_dict(inv) for inv in invoices],
        }
    )


@router.get("/invoices", summary="List invoices", responses=rs.INVOICES)
async def list_invoices(
    request: Request,
    ctx: Auth,
    status: str | None = Query(None, max_length=20),
    end_user_id: str | None = Query(None, max_length=256),
    period_start: IsoDate | None = Query(None),
    period_end: IsoDate | None = Query(None),
    limit: int = Query(100, ge=1, le=1000),
) -> ORJSON:
    items = await container_of(request).invoicing.list_invoices(
        ctx,
        status=status,
        end_user_id=end_user_id,
        period_start=period_start,
        period_end=period_end,
        limit=limit,
    )
    return ORJSON({"data": [invoice_dict(inv) for inv in items]})


async def _export(
    request: Request, ctx: Auth, invoices: list[Invoice], fmt: str, include: str | None
) -> Response:
    if include not in (None, "", "events"):
        raise Invalid("include may only be 'events'", param="include")
    invoicing = container_of(request).invoicing
    with_events = include == "events"
    if fmt == "csv":
        if with_events:
            body = events_csv(await invoicing.events_by_invoice(ctx, invoices))
            name = "invoice-events.csv"
        else:
            body, name = invoices_csv(invoices), "invoices.csv"
        return Response(
            body.encode("utf-8"),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    out: dict[str, Any] = {"invoices": [invoice_dict(inv) for inv in invoices]}
    if with_events:
        pairs = await invoicing.events_by_invoice(ctx, invoices)
        out["events"] = [event_dict(ev, inv) for inv, evs in pairs for ev in evs]
    return ORJSON(out)


@router.get(
    "/invoices/export",
    summary="Export a period's invoices as CSV or JSON",
    response_model=None,
    responses=rs.INVOICE_EXPORT,
)
async def export(
    request: Request,
    ctx: Auth,
    period_start: str = Query(..., max_length=10),
    period_end: str = Query(..., max_length=10),
    format: str = Format,
    include: str | None = Query(None, max_length=20),
    status: str | None = Query(None, max_length=20),
) -> Response:
    start, end = parse_period(period_start, period_end)
    invoices = await container_of(request).invoicing.list_invoices(
        ctx, status=status, period_start=start, period_end=end, limit=MAX_EXPORT
    )
    invoices.sort(key=lambda inv: (inv.period_start, inv.end_user_id, inv.id))
    return await _export(request, ctx, invoices, format, include)


@router.get("/invoices/{invoice_id}", summary="Get an invoice", responses=rs.INVOICE)
async def get_invoice(request: Request, ctx: Auth, invoice_id: str = InvoiceId) -> ORJSON:
    return ORJSON(invoice_dict(await container_of(request).invoicing.get(ctx, invoice_id)))


@router.delete(
    "/invoices/{invoice_id}",
    summary="Delete a draft",
    status_code=204,
    responses=rs.INVOICE_DELETE,
)
async def delete_draft(request: Request, ctx: Auth, invoice_id: str = InvoiceId) -> Response:
    await container_of(request).invoicing.delete_draft(ctx, invoice_id)
    return Response(status_code=204)


@router.get(
    "/invoices/{invoice_id}/export",
    summary="Export one invoice as CSV or JSON",
    response_model=None,
    responses=rs.INVOICE_EXPORT_ONE,
)
async def export_one(
    request: Request,
    ctx: Auth,
    invoice_id: str = InvoiceId,
    format: str = Format,
    include: str | None = Query(None, max_length=20),
) -> Response:
    invoice = await container_of(request).invoicing.get(ctx, invoice_id)
    return await _export(request, ctx, [invoice], format, include)


@router.post(
    "/invoices/{invoice_id}/finalize",
    summary="Finalize: link usage, number, open",
    responses=rs.INVOICE_TRANSITION,
)
async def finalize(request: Request, ctx: Auth, invoice_id: str = InvoiceId) -> ORJSON:
    return ORJSON(invoice_dict(await container_of(request).invoicing.finalize(ctx, invoice_id)))


@router.post(
    "/invoices/{invoice_id}/void",
    summary="Void an open or uncollectible invoice",
    responses=rs.INVOICE_SEND,
)
async def void(request: Request, ctx: Auth, invoice_id: str = InvoiceId) -> ORJSON:
    """A sent invoice is voided at Stripe first, so the customer can no longer pay it."""
    container = container_of(request)
    invoice = await container.invoicing.get(ctx, invoice_id)
    if invoice.stripe_invoice_id and invoice.status in (
        InvoiceStatus.OPEN,
        InvoiceStatus.UNCOLLECTIBLE,
    ):
        if container.stripe_sync is None:
            raise Conflict(
                "This invoice was sent through Stripe; configure Stripe to void it there.",
                code="stripe_unavailable",
            )
        await container.stripe_sync.void_remote(ctx, invoice)
    return ORJSON(invoice_dict(await container.invoicing.void(ctx, invoice_id)))


@router.post(
    "/invoices/{invoice_id}/mark-uncollectible",
    summary="Write an invoice off",
    responses=rs.INVOICE_TRANSITION,
)
async def mark_uncollectible(request: Request, ctx: Auth, invoice_id: str = InvoiceId) -> ORJSON:
    invoice = await container_of(request).invoicing.mark_uncollectible(ctx, invoice_id)
    return ORJSON(invoice_dict(invoice))


@router.post(
    "/invoices/{invoice_id}/send",
    summary="Send an invoice through Stripe",
    responses=rs.INVOICE_SEND,
)
async def send(request: Request, ctx: Auth, invoice_id: str = InvoiceId) -> ORJSON:
    invoice = await container_of(request).invoicing.get(ctx, invoice_id)
    return ORJSON(invoice_dict(await _send(request, ctx, invoice)))


# ------------------------------------------------------------------ prices, repricing


def _price_json(p: PriceOverride) -> dict[str, Any]:
    return {
        "model": p.model,
        "provider": p.provider or None,
        "input_per_mtok": money(p.input_per_mtok),
        "output_per_mtok": money(p.output_per_mtok),
        "cached_input_per_mtok": money(p.cached_input_per_mtok),
    }


@router.get("/prices", summary="This project's price overrides", responses=rs.PRICES)
async def list_prices(request: Request, ctx: Auth) -> ORJSON:
    items = await container_of(request).repricing.list_prices(ctx)
    return ORJSON({"data": [_price_json(p) for p in items]})


@router.put(
    "/prices/{model:path}",
    summary="Set a model's price",
    openapi_extra=PRICE_BODY,
    responses=rs.PRICE_SET,
)
async def set_price(request: Request, ctx: Auth, model: str) -> ORJSON:
    body = await read_json(request)
    return ORJSON(_price_json(await container_of(request).repricing.set_price(ctx, model, body)))


@router.post(
    "/usage/reprice",
    summary="Price usage recorded without a price",
    openapi_extra=REPRICE_BODY,
    responses=rs.REPRICE,
)
async def reprice(request: Request, ctx: Auth) -> ORJSON:
    body = await read_json(request, empty_ok=True)
    result = await container_of(request).repricing.reprice(ctx, body)
    return ORJSON({"repriced": result.repriced, "still_unpriced": result.still_unpriced})
