"""End Users tab: search, filter, sort, paginate; block/unblock and change plan inline;
one user's detail page."""

from __future__ import annotations

from datetime import date
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from meterline.services.dashboard import PAGE_SIZE
from meterline.services.errors import ServiceError
from meterline.web.dashboard.common import AdminDep, flag, redirect, render, verified_form
from meterline.web.dashboard.render import bar_chart
from meterline.web.dashboard.routes_auth import safe_next

__all__ = ["router"]

router = APIRouter()


@router.get("/end-users")
async def end_users(
    request: Request,
    admin: AdminDep,
    q: str = Query("", max_length=256),
    plan: str = Query("", max_length=100),
    blocked: str = Query("", max_length=8),
    over_limit: str = Query("", max_length=8),
    sort: str = Query("id", pattern="^(id|tokens|revenue|requests)$"),
    page: int = Query(1, ge=1, le=100_000),
) -> Response:
    c = admin.container
    table = await c.dashboard.end_users(
        admin.ctx,
        search=q,
        rate_plan_id=plan,
        blocked=flag(blocked),
        over_limit=flag(over_limit),
        sort=sort,
        page=page,
    )
    plans, _ = await c.management.list_plans(admin.ctx)
    keys = await c.dashboard.api_keys(admin.ctx)
    env_keys = [k for k in keys if k.environment == admin.ctx.environment and not k.revoked]
    params = {"q": q, "plan": plan, "blocked": blocked, "over_limit": over_limit, "sort": sort}
    pages = max(1, (table.total + PAGE_SIZE - 1) // PAGE_SIZE)

    def page_url(n: int) -> str:
        return "/dashboard/end-users?" + urlencode({**params, "page": n})

    return render(
        request,
        "end_users.html",
        admin,
        title="End users",
        tab="end-users",
        table=table,
        plans=plans,
        plan_names={p.id: p.name for p in plans},
        over_limits=await c.dashboard.limits_reached(admin.ctx, table),
        filters=params,
        page=page,
        pages=pages,
        page_url=page_url,
        here=str(request.url.path) + ("?" + request.url.query if request.url.query else ""),
        key_prefix=env_keys[0].prefix if env_keys else None,
        base_url=str(request.base_url).rstrip("/"),
        any_users=table.total > 0 or bool(q or plan or blocked or over_limit),
    )


@router.post("/end-users/{end_user_id}")
async def update_end_user(request: Request, admin: AdminDep, end_user_id: str) -> Response:
    form = await verified_form(request, admin.session)
    body: dict[str, object] = {}
    if "blocked" in form:
        body["blocked"] = form.get("blocked") == "true"
    if "rate_plan_id" in form:
        body["rate_plan_id"] = str(form.get("rate_plan_id") or "") or None
    try:
        await admin.container.management.update_end_user(admin.ctx, end_user_id, body)
    except ServiceError as exc:
        return render(
            request, "error.html", admin, exc.status, title="Not saved", message=exc.message
        )
    return redirect(safe_next(form.get("next"), "/dashboard/end-users"), request)


@router.get("/end-users/{end_user_id}")
async def end_user_detail(request: Request, admin: AdminDep, end_user_id: str) -> Response:
    c = admin.container
    detail = await c.dashboard.end_user_detail(admin.ctx, end_user_id)
    plans, _ = await c.management.list_plans(admin.ctx)
    points = [
        (date.fromisoformat(r.period), r.totals.charge, r.totals.provider_cost)
        for r in detail.daily
    ]
    return render(
        request,
        "end_user.html",
        admin,
        title=f"End user {end_user_id}",
        tab="end-users",
        detail=detail,
        plans=plans,
        plan_names={p.id: p.name for p in plans},
        chart=bar_chart(
            points, label="Daily charges, last 30 days", first=detail.start, last=detail.end
        ),
        invoices=await _invoices(admin, end_user_id),
        here=str(request.url.path),
    )


async def _invoices(admin: AdminDep, end_user_id: str) -> list[object]:
    invoicing = getattr(admin.container, "invoicing", None)
    if invoicing is None:
        return []
    try:
        return list(await invoicing.list_invoices(admin.ctx, end_user_id=end_user_id, limit=24))
    except ServiceError:
        return []
