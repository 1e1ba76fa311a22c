"""OpenAPI descriptions of what the billing/management API answers, success and error.

The routes build their JSON by hand (``serializers.py``, ``invoice_export.py``) and
return ORJSON responses directly, so these models only document: FastAPI never runs a
response through them (an endpoint returning a ``Response`` skips response validation),
and the hot paths stay as fast as before. ``tests/web/test_schemathesis.py`` checks every
response against them, so the documentation cannot drift from the code.

Conventions: money is a decimal string (``Money``), never a number; a field that is
always present is required (``| None`` when it may be null); a field that is only
sometimes present is optional and never null (``| Omitted``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

__all__ = [
    "ALERTS",
    "CHECK_QUOTA",
    "CHECK_QUOTA_POST",
    "CONFIG",
    "CONFIG_UPDATE",
    "END_USER",
    "END_USERS",
    "END_USER_UPDATE",
    "END_USER_USAGE",
    "HEALTH",
    "INVOICE",
    "INVOICES",
    "INVOICE_DELETE",
    "INVOICE_EXPORT",
    "INVOICE_EXPORT_ONE",
    "INVOICE_GENERATE",
    "INVOICE_SEND",
    "INVOICE_TRANSITION",
    "PLAN",
    "PLANS",
    "PLAN_CREATE",
    "PLAN_DELETE",
    "PLAN_UPDATE",
    "PRICES",
    "PRICE_SET",
    "PROVIDERS",
    "PROVIDER_DELETE",
    "PROVIDER_SET",
    "READY",
    "REPRICE",
    "REQUEST_ID_HEADER_DOC",
    "REVENUE",
    "STRIPE_CALLBACK",
    "STRIPE_CONNECT",
    "STRIPE_DISCONNECT",
    "STRIPE_ONBOARD",
    "STRIPE_STATUS",
    "STRIPE_WEBHOOK",
    "USAGE_EVENTS",
    "ErrorBody",
    "responses",
]

#: A decimal string in USD (or a percentage): plain digits, no exponent, ≤ 9 places.
Money = Annotated[str, Field(pattern=r"^-?[0-9]+(\.[0-9]{1,9})?$", examples=["0.0125"])]
#: A UTC calendar date.
Day = Annotated[str, Field(json_schema_extra={"format": "date"})]
#: An ISO 8601 timestamp.
Timestamp = Annotated[str, Field(json_schema_extra={"format": "date-time"})]
#: For fields that are sometimes absent but never null.
Omitted = SkipJsonSchema[None]

OverageAction = Literal["block", "alert_only"]
DenyReason = Literal[
    "user_blocked",
    "model_not_allowed",
    "requests_per_minute_exceeded",
    "daily_token_limit_exceeded",
    "monthly_token_limit_exceeded",
    "daily_request_limit_exceeded",
    "monthly_request_limit_exceeded",
    "daily_cost_limit_exceeded",
    "monthly_cost_limit_exceeded",
]
InvoiceStatus = Literal["draft", "open", "paid", "void", "uncollectible"]
Environment = Literal["live", "test"]


class _Out(BaseModel):
    """Every field the API sends is listed: anything else in a response is a bug."""

    model_config = ConfigDict(extra="forbid")


# ------------------------------------------------------------------ errors


class ErrorDetail(_Out):
    type: str = Field(examples=["invalid_request_error"])
    code: str = Field(examples=["invalid_value"])
    message: str
    param: str | Omitted = Field(None, description="the offending field, when there is one")


class ErrorBody(_Out):
    """The contract's error envelope (DESIGN.md §2)."""

    error: ErrorDetail


# ------------------------------------------------------------------ direct integration


class RatePlanRef(_Out):
    id: str | None = Field(description="null for the built-in plan of a project without plans")
    name: str


class CountUsage(_Out):
    used: int
    limit: int | None


class MoneyUsage(_Out):
    used: Money
    limit: Money | None


class QuotaUsage(_Out):
    daily_tokens: CountUsage
    monthly_tokens: CountUsage
    daily_requests: CountUsage
    monthly_requests: CountUsage
    requests_per_minute: CountUsage
    daily_cost_usd: MoneyUsage
    monthly_cost_usd: MoneyUsage


class QuotaBilling(_Out):
    markup_percentage: Money
    flat_rate_per_request: Money
    allowed_models: list[str]


class QuotaCheck(_Out):
    allowed: bool
    reason: DenyReason | None
    end_user_id: str
    is_new_user: bool
    rate_plan: RatePlanRef
    overage_action: OverageAction
    retry_after_seconds: int | None
    usage: QuotaUsage
    billing: QuotaBilling
    alerts: list[DenyReason] | Omitted = Field(
        None, description="limits an alert-only plan let this call exceed"
    )
    reservation_id: str | Omitted = Field(None, description="with reserve=true, when allowed")
    degraded: Literal[True] | Omitted = Field(
        None, description="counters unreachable and the deployment fails open"
    )


class EventResult(_Out):
    index: int
    event_id: str | None
    status: Literal["recorded", "duplicate", "failed"]
    priced: bool | None
    provider_cost_usd: Money | None
    markup_usd: Money | None
    charge_usd: Money | None
    error: str | None
    error_code: str | Omitted = Field(None, description="on failed events: invalid | conflict")


class UsageEventsResult(_Out):
    recorded: int
    duplicates: int
    failed: int
    total: int
    events: list[EventResult]


class UsageEventsErrorDetail(ErrorDetail):
    result: UsageEventsResult | Omitted = Field(
        None, description="per-event detail, when every event of the request failed"
    )


class UsageEventsError(_Out):
    error: UsageEventsErrorDetail


# ------------------------------------------------------------------ management


class Plan(_Out):
    id: str
    name: str
    slug: str
    is_default: bool
    overage_action: OverageAction
    daily_token_limit: int | None
    monthly_token_limit: int | None
    daily_request_limit: int | None
    monthly_request_limit: int | None
    requests_per_minute: int | None
    daily_cost_limit_usd: Money | None
    monthly_cost_limit_usd: Money | None
    markup_percentage: Money | None = Field(description="null: the project's default")
    flat_rate_per_request: Money | None = Field(description="null: the project's default")
    allowed_models: list[str]
    end_user_count: int | Omitted = Field(None, description="in listings and on creation")


class PlanList(_Out):
    data: list[Plan]


class EndUser(_Out):
    end_user_id: str
    environment: Environment
    rate_plan_id: str | None
    blocked: bool
    email: str | None
    name: str | None
    stripe_customer_id: str | None
    created_at: Timestamp | None


class EndUserPage(_Out):
    data: list[EndUser]
    next_cursor: str | None


class UsageRow(_Out):
    period: str = Field(description="YYYY-MM-DD (day) or YYYY-MM (month)")
    requests: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    provider_cost_usd: Money
    markup_usd: Money
    charge_usd: Money
    unpriced_requests: int


class EndUserUsage(_Out):
    end_user_id: str
    granularity: Literal["day", "month"]
    from_: Day = Field(alias="from")
    to: Day
    data: list[UsageRow]


class Config(_Out):
    project_id: str
    enabled: bool
    default_markup_percentage: Money
    default_flat_rate_per_request: Money
    currency: str


class RevenueDay(_Out):
    date: Day
    revenue_usd: Money
    provider_cost_usd: Money
    margin_usd: Money
    requests: int
    total_tokens: int


class TopUser(_Out):
    end_user_id: str
    revenue_usd: Money
    provider_cost_usd: Money
    requests: int
    total_tokens: int


class Revenue(_Out):
    from_: Day = Field(alias="from")
    to: Day
    revenue_usd: Money
    provider_cost_usd: Money
    margin_usd: Money
    requests: int
    total_tokens: int
    unpriced_requests: int
    daily: list[RevenueDay]
    top_users: list[TopUser]


class Alert(_Out):
    id: str | None
    kind: str
    end_user_id: str | None
    window: str
    message: str
    created_at: Timestamp | None


class AlertList(_Out):
    data: list[Alert]


class ProviderCredential(_Out):
    provider: str
    api_key: str = Field(description="masked: enough to recognise, never to use")
    base_url: str | None


class ProviderList(_Out):
    data: list[ProviderCredential]


# ------------------------------------------------------------------ invoices, prices


class InvoiceLine(_Out):
    provider: str
    model: str
    late: bool
    requests: int
    prompt_tokens: int
    completion_tokens: int
    provider_cost_usd: Money
    markup_usd: Money
    flat_fees_usd: Money
    charge_usd: Money
    amount_cents: int = Field(description="the line's charge rounded once to minor units")
    unpriced_requests: int
    description: str


class Invoice(_Out):
    id: str
    number: str | None
    status: InvoiceStatus
    end_user_id: str
    environment: Environment
    period_start: Day
    period_end: Day
    currency: str
    total_cents: int
    total: Annotated[str, Field(pattern=r"^-?[0-9]+(\.[0-9]+)?$")] = Field(
        description="total_cents in major units, as a decimal string"
    )
    provider_cost_usd: Money
    margin_usd: Money
    unpriced_models: list[str]
    lines: list[InvoiceLine]
    created_at: Timestamp | None
    finalized_at: Timestamp | None
    stripe_invoice_id: str | None
    hosted_invoice_url: str | None


class InvoiceList(_Out):
    data: list[Invoice]


class GenerateSkip(_Out):
    end_user_id: str
    reason: Literal["finalized", "no_usage"]
    invoice_id: str | Omitted = None


class GenerateError(_Out):
    end_user_id: str
    error: str
    invoice_id: str | Omitted = None
    code: str | Omitted = None


class Generated(_Out):
    period_start: Day
    period_end: Day
    generated: int
    skipped: list[GenerateSkip]
    errors: list[GenerateError]
    invoices: list[Invoice]


class InvoiceEvent(_Out):
    invoice_id: str
    number: str | None
    event_id: str
    end_user_id: str
    timestamp: Timestamp
    provider: str | None
    model: str | None
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    priced: bool
    provider_cost_usd: Money | None
    markup_usd: Money | None
    charge_usd: Money | None
    late: bool


class InvoiceExport(_Out):
    invoices: list[Invoice]
    events: list[InvoiceEvent] | Omitted = Field(None, description="with include=events")


class Price(_Out):
    model: str
    provider: str | None
    input_per_mtok: Money
    output_per_mtok: Money
    cached_input_per_mtok: Money | None


class PriceList(_Out):
    data: list[Price]


class Repriced(_Out):
    repriced: int
    still_unpriced: int


# ------------------------------------------------------------------ Stripe, ops


class StripeUrl(_Out):
    url: str


class StripeConnected(_Out):
    connected: Literal[True]
    account_id: str
    livemode: bool


class StripeDisconnected(_Out):
    connected: Literal[False]
    disconnected: bool


class StripeStatus(_Out):
    connected: bool
    account_id: str | None
    livemode: bool | None
    connected_at: Timestamp | None
    platform_mode: Environment
    test_invoices_sendable: bool


class StripeWebhookResult(_Out):
    received: Literal[True]
    duplicate: bool
    type: str
    outcome: str | None


class Health(_Out):
    status: Literal["ok"]


class Ready(_Out):
    status: Literal["ok", "unavailable"]
    checks: dict[str, str]


# ------------------------------------------------------------------ building `responses=`

REQUEST_ID_HEADER_DOC: dict[str, Any] = {
    "x-meterline-request-id": {
        "description": "this request's id, also in the logs and on the ledger row",
        "required": True,
        "schema": {"type": "string", "pattern": "^req_[0-9a-f]{24}$"},
    }
}
_RETRY_AFTER: dict[str, Any] = {
    "Retry-After": {
        "description": "whole seconds to wait before retrying",
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    }
}

_ERROR_TEXT = {
    400: "Malformed request: not JSON, not UTF-8, nested too deep, or no body",
    401: "Missing, malformed or revoked API key",
    403: "This key may not do this (e.g. Stripe Connect needs a live key)",
    404: "No such resource in this project and environment",
    409: "Conflicts with the current state",
    413: "Request body too large",
    415: "Content-Type is not JSON",
    422: "A parameter or body field is invalid",
    502: "Stripe refused the request or could not be reached",
    503: "The database or the quota counters are unreachable; nothing was recorded",
}

#: Statuses every route that reads a JSON body may answer.
BODY = (400, 413, 415, 422)
#: Statuses every route behind a project key may answer.
KEY = (401, 503)


def responses(
    success: type[BaseModel] | None,
    *errors: int,
    status: int = 200,
    description: str | None = None,
    error_models: dict[int, type[BaseModel]] | None = None,
    success_content: dict[str, Any] | None = None,
) -> dict[int | str, dict[str, Any]]:
    """A route's ``responses=``: the success body (``None`` for an empty 204) and the
    error statuses, all carrying the request-id header."""
    out: dict[int | str, dict[str, Any]] = {}
    ok: dict[str, Any] = {"headers": REQUEST_ID_HEADER_DOC}
    if success is not None:
        ok["model"] = success
    if description:
        ok["description"] = description
    if success_content:
        ok["content"] = success_content
    out[status] = ok
    for code in sorted(set(errors)):
        headers = REQUEST_ID_HEADER_DOC | (_RETRY_AFTER if code in (429, 503) else {})
        out[code] = {
            "model": (error_models or {}).get(code, ErrorBody),
            "description": _ERROR_TEXT.get(code, "Error"),
            "headers": headers,
        }
    return out


_ID = (404, 422)  # a path id: unknown, or out of its documented bounds

# Direct integration
CHECK_QUOTA = responses(QuotaCheck, *KEY, 422)
CHECK_QUOTA_POST = responses(QuotaCheck, *KEY, *BODY)
USAGE_EVENTS = responses(
    UsageEventsResult,
    *KEY,
    *BODY,
    409,
    description="At least one event recorded or duplicate; failures are listed per event",
    error_models={409: UsageEventsError, 422: UsageEventsError},
)

# Management
PLANS = responses(PlanList, *KEY)
PLAN_CREATE = responses(Plan, *KEY, *BODY, 409, status=201)
PLAN = responses(Plan, *KEY, *_ID)
PLAN_UPDATE = responses(Plan, *KEY, *BODY, *_ID, 409)
PLAN_DELETE = responses(None, *KEY, *_ID, 409, status=204, description="Deleted")
END_USERS = responses(EndUserPage, *KEY, 422)
END_USER = responses(EndUser, *KEY, *_ID)
END_USER_UPDATE = responses(EndUser, *KEY, *BODY, *_ID)
END_USER_USAGE = responses(EndUserUsage, *KEY, *_ID)
CONFIG = responses(Config, *KEY)
CONFIG_UPDATE = responses(Config, *KEY, *BODY)
REVENUE = responses(Revenue, *KEY, 422)
ALERTS = responses(AlertList, *KEY, 422)
PROVIDERS = responses(ProviderList, *KEY)
PROVIDER_SET = responses(ProviderCredential, *KEY, *BODY)
PROVIDER_DELETE = responses(None, *KEY, *_ID, status=204, description="Removed")

# Invoices, prices
_CSV = {"text/csv": {"schema": {"type": "string"}}}
_EXPORT_TEXT = "JSON (format=json) or a CSV attachment (format=csv)"
INVOICE_GENERATE = responses(Generated, *KEY, *BODY)
INVOICES = responses(InvoiceList, *KEY, 422)
INVOICE_EXPORT = responses(InvoiceExport, *KEY, 422, description=_EXPORT_TEXT, success_content=_CSV)
INVOICE_EXPORT_ONE = responses(
    InvoiceExport, *KEY, *_ID, description=_EXPORT_TEXT, success_content=_CSV
)
INVOICE = responses(Invoice, *KEY, *_ID)
INVOICE_DELETE = responses(None, *KEY, *_ID, 409, status=204, description="Deleted")
INVOICE_TRANSITION = responses(Invoice, *KEY, *_ID, 409)
INVOICE_SEND = responses(Invoice, *KEY, *_ID, 409, 502)
PRICES = responses(PriceList, *KEY)
PRICE_SET = responses(Price, *KEY, *BODY)
REPRICE = responses(Repriced, *KEY, *BODY)

# Stripe: every route answers 409 while the server has no Stripe keys configured.
STRIPE_CONNECT = responses(StripeUrl, *KEY, 403, 409)
STRIPE_CALLBACK = responses(StripeConnected, 400, 403, 409, 422, 502, 503)
STRIPE_ONBOARD = responses(StripeUrl, *KEY, *BODY, 403, 409, 502)
STRIPE_DISCONNECT = responses(StripeDisconnected, *KEY, 403, 409, 502)
STRIPE_STATUS = responses(StripeStatus, *KEY, 409)
STRIPE_WEBHOOK = responses(StripeWebhookResult, 400, 409, 413, 502, 503)

# Ops
HEALTH = responses(Health)
READY = responses(Ready, description="Database and counters reachable")
READY[503] = {
    "model": Ready,
    "description": "A backend is unreachable",
    "headers": REQUEST_ID_HEADER_DOC,
}
