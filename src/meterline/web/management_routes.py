"""Management API (DESIGN.md §2.3): rate plans, end users, config, revenue, alerts."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Path, Query, Request, Response

from meterline.web import response_schemas as rs
from meterline.web.body import read_json
from meterline.web.deps import Auth, container_of
from meterline.web.responses import ORJSON
from meterline.web.schemas import (
    CONFIG_BODY,
    END_USER_BODY,
    PLAN_BODY,
    PLAN_PATCH_BODY,
    IsoDate,
)
from meterline.web.serializers import (
    alert_json,
    config_json,
    end_user_json,
    plan_json,
    revenue_json,
    usage_row_json,
)

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/billing", tags=["management"])

PlanId = Path(..., min_length=1, max_length=100)
EndUserId = Path(..., min_length=1, max_length=256)


def _range(request: Request, start: date | None, end: date | None) -> tuple[date, date]:
    """Default: the current UTC month up to today."""
    today = container_of(request).clock.now().date()
    end = end or today
    start = start or end.replace(day=1)
    return start, end


# ------------------------------------------------------------------ rate plans


@router.get("/rate-plans", summary="List rate plans", responses=rs.PLANS)
async def list_plans(request: Request, ctx: Auth) -> ORJSON:
    plans, counts = await container_of(request).management.list_plans(ctx)
    return ORJSON({"data": [plan_json(p, counts.get(p.id, 0)) for p in plans]})


@router.post(
    "/rate-plans",
    summary="Create a rate plan",
    status_code=201,
    openapi_extra=PLAN_BODY,
    responses=rs.PLAN_CREATE,
)
async def create_plan(request: Request, ctx: Auth) -> ORJSON:
    plan = await container_of(request).management.create_plan(ctx, await read_json(request))
    return ORJSON(plan_json(plan, 0), status_code=201)


@router.get("/rate-plans/{plan_id}", summary="Get a rate plan", responses=rs.PLAN)
async def get_plan(request: Request, ctx: Auth, plan_id: str = PlanId) -> ORJSON:
    return ORJSON(plan_json(await container_of(request).management.get_plan(ctx, plan_id)))


@router.patch(
    "/rate-plans/{plan_id}",
    summary="Update a rate plan",
    openapi_extra=PLAN_PATCH_BODY,
    responses=rs.PLAN_UPDATE,
)
async def update_plan(request: Request, ctx: Auth, plan_id: str = PlanId) -> ORJSON:
    body = await read_json(request)
    return ORJSON(plan_json(await container_of(request).management.update_plan(ctx, plan_id, body)))


@router.put(
    "/rate-plans/{plan_id}",
    summary="Update a rate plan (same as PATCH)",
    openapi_extra=PLAN_PATCH_BODY,
    responses=rs.PLAN_UPDATE,
)
async def put_plan(request: Request, ctx: Auth, plan_id: str = PlanId) -> ORJSON:
    return await update_plan(request, ctx, plan_id)


@router.delete(
    "/rate-plans/{plan_id}",
    summary="Delete a rate plan (409 while in use)",
    status_code=204,
    responses=rs.PLAN_DELETE,
)
async def delete_plan(request: Request, ctx: Auth, plan_id: str = PlanId) -> Response:
    await container_of(request).management.delete_plan(ctx, plan_id)
    return Response(status_code=204)


# ------------------------------------------------------------------ end users


@router.get("/end-users", summary="Search and filter end users", responses=rs.END_USERS)
async def list_end_users(
    request: Request,
    ctx: Auth,
    search: str | None = Query(None, max_length=256),
    rate_plan_id: str | None = Query(None, max_length=100),
    blocked: bool | None = Query(None),
    cursor: str | None = Query(None, max_length=512),
    limit: int = Query(50, ge=1, le=500),
) -> ORJSON:
    page = await container_of(request).management.list_end_users(
        ctx, search=search, rate_plan_id=rate_plan_id, blocked=blocked, cursor=cursor, limit=limit
    )
    return ORJSON({"data": [end_user_json(u) for u in page.items], "next_cursor": page.next_cursor})


@router.get("/end-users/{end_user_id}", summary="Get an end user", responses=rs.END_USER)
async def get_end_user(request: Request, ctx: Auth, end_user_id: str = EndUserId) -> ORJSON:
    user = await container_of(request).management.get_end_user(ctx, end_user_id)
    return ORJSON(end_user_json(user))


@router.patch(
    "/end-users/{end_user_id}",
    summary="Block/unblock, change plan, contact details",
    openapi_extra=END_USER_BODY,
    responses=rs.END_USER_UPDATE,
)
async def update_end_user(request: Request, ctx: Auth, end_user_id: str = EndUserId) -> ORJSON:
    body = await read_json(request)
    user = await container_of(request).management.update_end_user(ctx, end_user_id, body)
    return ORJSON(end_user_json(user))


@router.get(
    "/end-users/{end_user_id}/usage",
    summary="An end user's usage by day or month",
    responses=rs.END_USER_USAGE,
)
async def end_user_usage(
    request: Request,
    ctx: Auth,
    end_user_id: str = EndUserId,
    granularity: str = Query("day", pattern="^(day|month)$"),
    from_: IsoDate | None = Query(None, alias="from"),
    to: IsoDate | None = Query(None),
) -> ORJSON:
    start, end = _range(request, from_, to)
    rows = await container_of(request).management.usage(ctx, end_user_id, granularity, start, end)
    return ORJSON(
        {
            "end_user_id": end_user_id,
            "granularity": granularity,
            "from": start.isoformat(),
            "to": end.isoformat(),
            "data": [usage_row_json(r) for r in rows],
        }
    )


# ------------------------------------------------------------------ config, revenue, alerts


@router.get("/config", summary="Billing settings of this project", responses=rs.CONFIG)
async def get_config(ctx: Auth) -> ORJSON:
    return ORJSON(config_json(ctx.project))


@router.patch(
    "/config",
    summary="Change billing settings",
    openapi_extra=CONFIG_BODY,
    responses=rs.CONFIG_UPDATE,
)
async def update_config(request: Request, ctx: Auth) -> ORJSON:
    body = await read_json(request)
    project = await container_of(request).management.update_config(ctx, body)
    return ORJSON(config_json(project))


@router.get(
    "/revenue",
    summary="Revenue, provider cost, margin, daily series, top users",
    responses=rs.REVENUE,
)
async def revenue(
    request: Request,
    ctx: Auth,
    from_: IsoDate | None = Query(None, alias="from"),
    to: IsoDate | None = Query(None),
    top: int = Query(10, ge=1, le=100),
) -> ORJSON:
    start, end = _range(request, from_, to)
    report = await container_of(request).management.revenue(ctx, start, end, top)
    body: dict[str, Any] = {"from": start.isoformat(), "to": end.isoformat()}
    body.update(revenue_json(report))
    return ORJSON(body)


@router.get(
    "/alerts",
    summary="Recent alerts: alert-only overages, unpriced models",
    responses=rs.ALERTS,
)
async def alerts(request: Request, ctx: Auth, limit: int = Query(100, ge=1, le=1000)) -> ORJSON:
    items = await container_of(request).management.alerts(ctx, limit)
    return ORJSON({"data": [alert_json(a) for a in items]})
