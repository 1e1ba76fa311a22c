"""Revenue tab: totals, margin, daily trend, top users and models, alerts, invoices."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from meterline.services.errors import Invalid, ServiceError
from meterline.web.dashboard.common import Admin, AdminDep, redirect, render, verified_form
from meterline.web.dashboard.render import bar_chart

__all__ = ["router"]

router = APIRouter()

PRESETS = {"7d": 7, "30d": 30, "90d": 90}


def _range(admin: Admin, preset: str, start: date | None, end: date | None) -> tuple[date, date]:
    """Default as the API: this UTC month up to today. Presets: the last N days."""
    today = admin.container.dashboard.today()
    if preset in PRESETS:
        return today - timedelta(days=PRESETS[preset] - 1), today
    end = end or today
    return start or end.replace(day=1), end


async def _invoices(admin: Admin) -> list[Any] | None:
    invoicing = getattr(admin.container, "invoicing", None)
    if invoicing is None:
        return None
    try:
        return list(await invoicing.list_invoices(admin.ctx, limit=50))
    except ServiceError:
        return []


@router.get("/revenue")
async def revenue(
    request: Request,
    admin: AdminDep,
    preset: str = Query("", max_length=8),
    from_: date | None = Query(None, alias="from"),
    to: date | None = Query(None),
    notice: str = Query("", max_length=200),
) -> Response:
    start, end = _range(admin, preset, from_, to)
    try:
        view = await admin.container.dashboard.revenue(admin.ctx, start, end)
    except Invalid as exc:
        return render(request, "error.html", admin, 422, title="Revenue", message=exc.message)
    t = view.report.totals
    chart = bar_chart(
        [(d.day, d.totals.charge, d.totals.provider_cost) for d in view.report.daily],
        label="Daily revenue (light) and provider cost (dark)",
        first=start,
        last=end,
    )
    return render(
        request,
        "revenue.html",
        admin,
        title="Revenue",
        tab="revenue",
        view=view,
        totals=t,
        margin=t.charge - t.provider_cost,
        chart=chart,
        preset=preset,
        invoices=await _invoices(admin),
        this_month=admin.container.dashboard.today().strftime("%Y-%m"),
        notice=notice,
        query=request.url.query,
    )


@router.post("/invoices/generate")
async def generate(request: Request, admin: AdminDep) -> Response:
    from meterline.services.invoicing import month_period

    form = await verified_form(request, admin.session)
    try:
        start, end = month_period(str(form.get("period") or ""))
        result = await admin.container.invoicing.generate(admin.ctx, start, end)
    except ServiceError as exc:
        return render(
            request, "error.html", admin, exc.status, title="Invoices", message=exc.message
        )
    note = f"{len(result.generated)} draft invoice(s) generated, {len(result.skipped)} skipped."
    return redirect("/dashboard/revenue?" + urlencode({"notice": note}), request)


@router.post("/invoices/{invoice_id}/{action}")
async def invoice_action(
    request: Request, admin: AdminDep, invoice_id: str, action: str
) -> Response:
    await verified_form(request, admin.session)
    c = admin.container
    try:
        if action == "finalize":
            await c.invoicing.finalize(admin.ctx, invoice_id)
        elif action == "send" and getattr(c, "stripe_sync", None) is not None:
            await c.stripe_sync.send(admin.ctx, invoice_id)
        else:
            raise Invalid(f"unknown invoice action {action!r}")
    except ServiceError as exc:
        return render(
            request, "error.html", admin, exc.status, title="Invoices", message=exc.message
        )
    return redirect(
        "/dashboard/revenue?" + urlencode({"notice": f"Invoice {action}: done."}), request
    )


@router.get("/invoices.csv")
async def export(request: Request, admin: AdminDep) -> Response:
    from meterline.services.invoice_export import invoices_csv

    invoices = await admin.container.invoicing.list_invoices(admin.ctx, limit=1000)
    return Response(
        invoices_csv(invoices),
        media_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="invoices.csv"'},
    )
