"""Direct integration: check quota before a call, report usage after (DESIGN.md §2.2)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request

from meterline.domain.limits import Allow, Deny
from meterline.domain.money import InvalidMoney, parse_money, to_nanos
from meterline.services.admission import QuotaCheck
from meterline.services.auth import AuthContext
from meterline.services.errors import Invalid, ServiceError
from meterline.services.usage_input import parse_event
from meterline.web.body import read_json
from meterline.web.deps import SECURED, authenticate, container_of
from meterline.web.direct_route import DirectRoute
from meterline.web.response_schemas import CHECK_QUOTA, CHECK_QUOTA_POST, USAGE_EVENTS
from meterline.web.responses import ORJSON, error_response
from meterline.web.schemas import (
    CHECK_QUOTA_BODY,
    CHECK_QUOTA_PARAMS,
    CHECK_QUOTA_QUERY,
    USAGE_EVENTS_BODY,
)
from meterline.web.serializers import money, usage_json

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/billing", tags=["direct integration"], route_class=DirectRoute)

MAX_BATCH = 1000


def _quota_json(check: QuotaCheck) -> dict[str, Any]:
    decision = check.decision
    out: dict[str, Any] = {
        "allowed": decision.allowed,
        "reason": decision.reason.value if isinstance(decision, Deny) else None,
        "end_user_id": check.end_user.end_user_id,
        "is_new_user": check.is_new_user,
        "rate_plan": {"id": check.plan.id or None, "name": check.plan.name},
        "overage_action": check.plan.overage_action.value,
        "retry_after_seconds": (
            decision.retry_after_seconds if isinstance(decision, Deny) else None
        ),
        "usage": usage_json(check.plan, check.usage),
        "billing": {
            "markup_percentage": money(check.pricing.markup_percentage),
            "flat_rate_per_request": money(check.pricing.flat_rate_per_request),
            "allowed_models": list(check.plan.allowed_models),
        },
    }
    if isinstance(decision, Allow) and decision.alerts:
        out["alerts"] = [a.value for a in decision.alerts]
    if check.reservation_id:
        out["reservation_id"] = check.reservation_id
    if check.degraded:
        out["degraded"] = True
    return out


#: A C0 control character (what ``ord(c) < 32`` finds), searched in C.
_CONTROL = re.compile("[\x00-\x1f]")

#: The strings a boolean query parameter accepts (pydantic's, as FastAPI would parse it).
_TRUE = frozenset({"1", "on", "t", "true", "y", "yes"})
_FALSE = frozenset({"0", "off", "f", "false", "n", "no", ""})


def _truthy(value: Any, name: str) -> bool:
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
        return value.lower() in _TRUE
    raise Invalid(f"{name} must be true or false", param=name)


async def _check(request: Request, ctx: AuthContext, params: Mapping[str, Any]) -> ORJSON:
    end_user_id = params.get("end_user_id")
    if not isinstance(end_user_id, str) or not end_user_id.strip() or len(end_user_id) > 256:
        raise Invalid("end_user_id is required: 1 to 256 characters", param="end_user_id")
    if _CONTROL.search(end_user_id):
        raise Invalid("end_user_id must not contain control characters", param="end_user_id")
    model = params.get("model")
    if model is not None and (not isinstance(model, str) or not model or len(model) > 200):
        raise Invalid("model must be a model name", param="model")
    tokens = params.get("estimated_tokens") or 0
    if isinstance(tokens, str) and tokens.isdigit():
        tokens = int(tokens)
    if isinstance(tokens, bool) or not isinstance(tokens, int) or not 0 <= tokens <= 10**12:
        raise Invalid("estimated_tokens must be a whole number ≥ 0", param="estimated_tokens")
    cost_nanos = 0
    if params.get("estimated_cost_usd") is not None:
        try:
            cost_nanos = to_nanos(parse_money(params["estimated_cost_usd"]))
        except InvalidMoney as exc:
            raise Invalid(str(exc), param="estimated_cost_usd") from None
    check = await container_of(request).admission.check(
        ctx,
        end_user_id,
        model=model,
        reserve=_truthy(params.get("reserve"), "reserve"),
        estimated_tokens=tokens,
        estimated_cost_nanos=cost_nanos,
    )
    return ORJSON(_quota_json(check))


@router.get(
    "/check-quota",
    summary="May this end user make a call now?",
    responses=CHECK_QUOTA,
    openapi_extra={**SECURED, "parameters": CHECK_QUOTA_QUERY},
)
async def check_quota_get(request: Request) -> ORJSON:
    # Parsed by hand (declared in CHECK_QUOTA_QUERY): the hottest read of the API, and
    # _check validates every field anyway.
    ctx = await authenticate(request)
    query = request.query_params
    return await _check(request, ctx, {name: query.get(name) for name in CHECK_QUOTA_PARAMS})


@router.post(
    "/check-quota",
    summary="May this end user make a call now? (JSON body)",
    openapi_extra={**SECURED, **CHECK_QUOTA_BODY},
    responses=CHECK_QUOTA_POST,
)
async def check_quota_post(request: Request) -> ORJSON:
    ctx = await authenticate(request)
    body = await read_json(request)
    if not isinstance(body, dict):
        raise Invalid("the body must be a JSON object")
    return await _check(request, ctx, body)


@router.post(
    "/usage-events",
    summary="Report usage: one event or {events: [...]} (≤ 1,000)",
    openapi_extra={**SECURED, **USAGE_EVENTS_BODY},
    responses=USAGE_EVENTS,
)
async def usage_events(request: Request) -> ORJSON:
    ctx = await authenticate(request)
    body = await read_json(request)
    container = container_of(request)
    now = container.clock.now()
    batch = isinstance(body, dict) and "events" in body
    if batch:
        raw_events = body["events"]
        if not isinstance(raw_events, list) or not raw_events:
            raise Invalid("events must be a non-empty list", param="events")
        if len(raw_events) > MAX_BATCH:
            raise Invalid(f"at most {MAX_BATCH} events per request", param="events")
        header_id = None
    elif isinstance(body, dict):
        raw_events = [body]
        header_id = request.headers.get("idempotency-key") or None
        if header_id is not None and len(header_id) > 256:
            raise Invalid("Idempotency-Key must be at most 256 characters")
    else:
        raise Invalid('the body must be an event object or {"events": [...]}')
    items: list[Any] = []
    for raw in raw_events:
        try:
            items.append(parse_event(raw, now=now, default_event_id=header_id))
        except ServiceError as exc:
            items.append(exc)
    results = await container.metering.record(ctx, items, now=now)
    events = [
        {
            "index": r.index,
            "event_id": r.event_id,
            "status": r.status,
            "priced": r.priced,
            "provider_cost_usd": money(r.provider_cost),
            "markup_usd": money(r.markup),
            "charge_usd": money(r.charge),
            "error": r.error,
            **({"error_code": r.error_code} if r.error_code else {}),
        }
        for r in results
    ]
    payload = {
        "recorded": sum(r.status == "recorded" for r in results),
        "duplicates": sum(r.status == "duplicate" for r in results),
        "failed": sum(r.status == "failed" for r in results),
        "total": len(results),
        "events": events,
    }
    failures = [r for r in results if r.status == "failed"]
    if failures and len(failures) == len(results):
        # Nothing was recorded: say so with a 4xx, carrying the per-event detail.
        conflict = all(r.error_code == "conflict" for r in failures)
        return error_response(
            409 if conflict else 422,
            "event_conflict" if conflict else "invalid_event",
            failures[0].error or "invalid event",
            extra={"result": payload},
        )
    return ORJSON(payload)
