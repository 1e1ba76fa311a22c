"""OpenAPI descriptions of the bodies that billing routes parse by hand (to keep money out
of float). Pydantic models here document; they never parse a request."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

__all__ = [
    "CHECK_QUOTA_BODY",
    "CHECK_QUOTA_PARAMS",
    "CHECK_QUOTA_QUERY",
    "CONFIG_BODY",
    "END_USER_BODY",
    "ONBOARD_BODY",
    "PLAN_BODY",
    "PLAN_PATCH_BODY",
    "PROVIDER_BODY",
    "USAGE_EVENTS_BODY",
    "IsoDate",
]

Money = str | int | None
_MONEY = "a decimal string (preferred) or number, in USD; parsed exactly, never via float"
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _iso_date_only(value: Any) -> Any:
    # pydantic also reads a number ("0") as a Unix timestamp; the API promises YYYY-MM-DD.
    if isinstance(value, str) and not _ISO_DATE.fullmatch(value):
        raise ValueError("must be a date as YYYY-MM-DD")
    return value


#: A query parameter that is a calendar date written YYYY-MM-DD, and nothing else.
IsoDate = Annotated[date, BeforeValidator(_iso_date_only)]


class _Strict(BaseModel):
    """Unknown fields are refused by the API, so the documented schemas say so too."""

    model_config = ConfigDict(extra="forbid")


class CheckQuotaBody(BaseModel):
    end_user_id: str = Field(min_length=1, max_length=256)
    model: str | None = Field(None, max_length=200)
    reserve: bool = False
    estimated_tokens: int = Field(0, ge=0, le=10**12)
    estimated_cost_usd: Money = Field(None, description=_MONEY)


class UsageEvent(BaseModel):
    end_user_id: str = Field(min_length=1, max_length=256)
    model: str | None = Field(None, max_length=200)
    provider: str | None = Field(None, max_length=100)
    prompt_tokens: int = Field(0, ge=0, le=10**12)
    completion_tokens: int = Field(0, ge=0, le=10**12)
    total_tokens: int | None = Field(None, ge=0, le=10**12)
    cost_usd: Money = Field(None, description=_MONEY)
    event_id: str | None = Field(None, max_length=256, description="idempotency key")
    timestamp: str | None = Field(None, description="ISO 8601; at most 5 minutes ahead")
    latency_ms: int | None = Field(None, ge=0)
    status: str | None = Field(None, max_length=50)
    metadata: dict[str, Any] | None = None
    reservation_id: str | None = Field(None, max_length=256)


class UsageEventBatch(BaseModel):
    events: list[UsageEvent] = Field(min_length=1, max_length=1000)


class PlanBody(_Strict):
    name: str = Field(min_length=1, max_length=100)
    slug: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    is_default: bool = False
    overage_action: str = Field("block", pattern="^(block|alert_only)$")
    daily_token_limit: int | None = Field(None, ge=0)
    monthly_token_limit: int | None = Field(None, ge=0)
    daily_request_limit: int | None = Field(None, ge=0)
    monthly_request_limit: int | None = Field(None, ge=0)
    requests_per_minute: int | None = Field(None, ge=0)
    daily_cost_limit_usd: Money = Field(None, description=_MONEY)
    monthly_cost_limit_usd: Money = Field(None, description=_MONEY)
    markup_percentage: Money = Field(None, description="percent, decimal string or number")
    flat_rate_per_request: Money = Field(None, description=_MONEY)
    allowed_models: list[str] | None = Field(
        default_factory=list, description="names or globs; empty or null: every model"
    )


class PlanPatchBody(PlanBody):
    """PATCH/PUT change only the fields given."""

    name: str | SkipJsonSchema[None] = Field(None, min_length=1, max_length=100)  # type: ignore[assignment]


class EndUserBody(_Strict):
    rate_plan_id: str | None = None
    blocked: bool | None = None
    email: str | None = None
    name: str | None = None


class ProviderBody(_Strict):
    api_key: str = Field(
        min_length=1, max_length=4096, description="the provider's secret key; stored encrypted"
    )
    base_url: str | None = Field(None, description="an http(s) URL; omit for the default")


class OnboardBody(BaseModel):
    refresh_url: str = Field(pattern="^https?://", description="where Stripe sends a stale link")
    return_url: str = Field(pattern="^https?://", description="where Stripe returns the user")


class ConfigBody(_Strict):
    enabled: bool | None = None
    default_markup_percentage: Money = None
    default_flat_rate_per_request: Money = None
    currency: str | None = Field(None, min_length=3, max_length=3)


def _inline(schema: dict[str, Any]) -> dict[str, Any]:
    """Resolve ``$defs`` so the schema can sit inline in ``openapi_extra``."""
    defs = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return walk(defs[ref.removeprefix("#/$defs/")])
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(schema)  # type: ignore[no-any-return]


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _inline(schema)}},
        }
    }


CHECK_QUOTA_BODY = _body(CheckQuotaBody.model_json_schema())
USAGE_EVENTS_BODY = _body(
    {
        "anyOf": [
            _inline(UsageEvent.model_json_schema()),
            _inline(UsageEventBatch.model_json_schema()),
        ]
    }
)
PLAN_BODY = _body(PlanBody.model_json_schema())
PLAN_PATCH_BODY = _body(PlanPatchBody.model_json_schema())
END_USER_BODY = _body(EndUserBody.model_json_schema())
CONFIG_BODY = _body(ConfigBody.model_json_schema())
PROVIDER_BODY = _body(ProviderBody.model_json_schema())
ONBOARD_BODY = _body(OnboardBody.model_json_schema())


#: check-quota's query parameters (GET), parsed by the route itself.
CHECK_QUOTA_QUERY: list[dict[str, Any]] = [
    {
        "name": "end_user_id",
        "in": "query",
        "required": True,
        "schema": {"type": "string", "minLength": 1, "maxLength": 256, "title": "End User Id"},
    },
    {
        "name": "model",
        "in": "query",
        "required": False,
        "schema": {"type": "string", "minLength": 1, "maxLength": 200, "title": "Model"},
    },
    {
        "name": "reserve",
        "in": "query",
        "required": False,
        "schema": {"type": "boolean", "default": False, "title": "Reserve"},
    },
    {
        "name": "estimated_tokens",
        "in": "query",
        "required": False,
        "schema": {
            "type": "integer",
            "minimum": 0,
            "maximum": 10**12,
            "default": 0,
            "title": "Estimated Tokens",
        },
    },
]
CHECK_QUOTA_PARAMS = tuple(str(p["name"]) for p in CHECK_QUOTA_QUERY)
