"""Rate Plans tab: every limit and price control; the rules are the management API's
(``Management.create_plan/update_plan`` → ``parse_plan``), errors shown beside the field."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from fastapi import APIRouter, Request
from starlette.datastructures import FormData
from starlette.responses import Response

from meterline.domain.plans import RatePlan
from meterline.services.errors import ServiceError
from meterline.services.plan_input import INT_LIMITS, MONEY_LIMITS
from meterline.web.dashboard.common import Admin, AdminDep, redirect, render, verified_form
from meterline.web.serializers import plan_json

__all__ = ["router"]

router = APIRouter()

LIMIT_LABELS = {
    "daily_token_limit": "Tokens per day",
    "monthly_token_limit": "Tokens per month",
    "daily_request_limit": "Requests per day",
    "monthly_request_limit": "Requests per month",
    "requests_per_minute": "Requests per minute (burst)",
    "daily_cost_limit_usd": "Provider cost per day (USD)",
    "monthly_cost_limit_usd": "Provider cost per month (USD)",
}


def _whole(name: str, text: str) -> object:
    """A typed number stays a number for ``parse_plan`` to judge; anything else is passed
    through as text so the API's own message names the field."""
    try:
        value = Decimal(text.replace(",", "").replace("_", ""))
    except InvalidOperation:
        return text
    return int(value) if value == value.to_integral_value() else value


def plan_body(form: FormData) -> dict[str, Any]:
    """The form as the management API's JSON body: blank = no limit / project default."""
    body: dict[str, Any] = {
        "name": str(form.get("name") or ""),
        "overage_action": str(form.get("overage_action") or "block"),
        "is_default": form.get("is_default") == "on",
    }
    slug = str(form.get("slug") or "").strip()
    if slug:
        body["slug"] = slug
    for name in INT_LIMITS:
        text = str(form.get(name) or "").strip()
        body[name] = _whole(name, text) if text else None
    for name in (*MONEY_LIMITS, "markup_percentage", "flat_rate_per_request"):
        text = str(form.get(name) or "").strip()
        body[name] = text or None
    models = str(form.get("allowed_models") or "")
    lines = models.replace(",", "\n").splitlines()
    body["allowed_models"] = [m.strip() for m in lines if m.strip()]
    return body


def _form_values(plan: RatePlan | None) -> dict[str, Any]:
    if plan is None:
        return {"overage_action": "block", "allowed_models": ""}
    data = plan_json(plan)
    data["allowed_models"] = "\n".join(plan.allowed_models)
    return {k: ("" if v is None else v) for k, v in data.items()}


async def _list(request: Request, admin: Admin, status_code: int = 200, **extra: Any) -> Response:
    plans, counts = await admin.container.management.list_plans(admin.ctx)
    return render(
        request,
        "plans.html",
        admin,
        status_code,
        title="Rate plans",
        tab="plans",
        plans=plans,
        counts=counts,
        **extra,
    )


def _form(
    request: Request,
    admin: Admin,
    plan: RatePlan | None,
    values: dict[str, Any],
    error: ServiceError | None = None,
) -> Response:
    return render(
        request,
        "plan_form.html",
        admin,
        422 if error else 200,
        title=f"Edit plan {plan.name}" if plan else "New rate plan",
        tab="plans",
        plan=plan,
        values=values,
        error=error.message if error else None,
        error_param=error.param if error else None,
        int_limits=INT_LIMITS,
        money_limits=MONEY_LIMITS,
        labels=LIMIT_LABELS,
    )


@router.get("/plans")
async def plans(request: Request, admin: AdminDep) -> Response:
    return await _list(request, admin)


@router.get("/plans/new")
async def new_plan(request: Request, admin: AdminDep) -> Response:
    return _form(request, admin, None, _form_values(None))


@router.post("/plans")
async def create_plan(request: Request, admin: AdminDep) -> Response:
    form = await verified_form(request, admin.session)
    try:
        await admin.container.management.create_plan(admin.ctx, plan_body(form))
    except ServiceError as exc:
        return _form(request, admin, None, _echo(form), exc)
    return redirect("/dashboard/plans", request)


@router.get("/plans/{plan_id}")
async def edit_plan(request: Request, admin: AdminDep, plan_id: str) -> Response:
    plan = await admin.container.management.get_plan(admin.ctx, plan_id)
    return _form(request, admin, plan, _form_values(plan))


@router.post("/plans/{plan_id}")
async def update_plan(request: Request, admin: AdminDep, plan_id: str) -> Response:
    form = await verified_form(request, admin.session)
    management = admin.container.management
    plan = await management.get_plan(admin.ctx, plan_id)
    body = plan_body(form)
    if plan.is_default:
        body["is_default"] = True  # the default is moved with "make default" on another plan
    try:
        await management.update_plan(admin.ctx, plan_id, body)
    except ServiceError as exc:
        return _form(request, admin, plan, _echo(form), exc)
    return redirect("/dashboard/plans", request)


@router.post("/plans/{plan_id}/default")
async def make_default(request: Request, admin: AdminDep, plan_id: str) -> Response:
    await verified_form(request, admin.session)
    try:
        await admin.container.management.update_plan(admin.ctx, plan_id, {"is_default": True})
    except ServiceError as exc:
        return await _list(request, admin, exc.status, error=exc.message)
    return redirect("/dashboard/plans", request)


@router.post("/plans/{plan_id}/delete")
async def delete_plan(request: Request, admin: AdminDep, plan_id: str) -> Response:
    await verified_form(request, admin.session)
    try:
        await admin.container.management.delete_plan(admin.ctx, plan_id)
    except ServiceError as exc:
        return await _list(request, admin, exc.status, error=exc.message)
    return redirect("/dashboard/plans", request)


def _echo(form: FormData) -> dict[str, Any]:
    """What the operator typed, to refill the form after an error."""
    return {k: v for k, v in form.items() if k != "csrf_token"} | {
        "is_default": form.get("is_default") == "on"
    }
