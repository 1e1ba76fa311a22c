"""Validating rate-plan payloads (create = full, update = partial) into a ``RatePlan``."""

from __future__ import annotations

import re
from dataclasses import replace
from decimal import Decimal
from typing import Any

from meterline.domain.money import InvalidMoney, parse_money
from meterline.domain.plans import Limits, OverageAction, RatePlan
from meterline.services.body_fields import known_fields
from meterline.services.errors import Invalid

__all__ = ["INT_LIMITS", "MONEY_LIMITS", "parse_plan"]

INT_LIMITS = (
    "daily_token_limit",
    "monthly_token_limit",
    "daily_request_limit",
    "monthly_request_limit",
    "requests_per_minute",
)
MONEY_LIMITS = ("daily_cost_limit_usd", "monthly_cost_limit_usd")
_FIELDS = {
    "name",
    "slug",
    "is_default",
    "overage_action",
    "markup_percentage",
    "flat_rate_per_request",
    "allowed_models",
    *INT_LIMITS,
    *MONEY_LIMITS,
}
_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
MAX_LIMIT = 10**15
MAX_MARKUP = Decimal(100_000)


def _int_limit(name: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid(f"{name} must be a whole number or null", param=name)
    if value < 0 or value > MAX_LIMIT:
        raise Invalid(f"{name} must be between 0 and {MAX_LIMIT}, or null", param=name)
    return value


def _money(name: str, value: Any) -> Decimal | None:
    if value is None:
        return None
    try:
        return parse_money(value, field=name)
    except InvalidMoney as exc:
        raise Invalid(str(exc), param=name) from None


def _slugify(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:64] or "plan"


def parse_plan(raw: object, existing: RatePlan | None = None) -> RatePlan:
    """Full validation; with ``existing`` only the given fields change (PATCH)."""
    raw = known_fields(raw, _FIELDS)
    plan = existing or RatePlan(id="", name="")
    changes: dict[str, Any] = {}
    if "name" in raw or existing is None:
        name = raw.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 100:
            raise Invalid("name is required: 1 to 100 characters", param="name")
        changes["name"] = name.strip()
    if "slug" in raw and raw["slug"] is not None:
        slug = raw["slug"]
        if not isinstance(slug, str) or not _SLUG.match(slug):
            raise Invalid("slug must be lowercase letters, digits, - or _", param="slug")
        changes["slug"] = slug
    elif existing is None:
        changes["slug"] = _slugify(changes["name"])
    if "is_default" in raw:
        if not isinstance(raw["is_default"], bool):
            raise Invalid("is_default must be true or false", param="is_default")
        changes["is_default"] = raw["is_default"]
    if "overage_action" in raw:
        try:
            changes["overage_action"] = OverageAction(raw["overage_action"])
        except ValueError:
            raise Invalid(
                "overage_action must be 'block' or 'alert_only'", param="overage_action"
            ) from None
    for name in ("markup_percentage", "flat_rate_per_request"):
        if name in raw:
            amount = _money(name, raw[name])
            if name == "markup_percentage" and amount is not None and amount > MAX_MARKUP:
                raise Invalid(f"markup_percentage must be at most {MAX_MARKUP}", param=name)
            changes[name] = amount
    if "allowed_models" in raw:
        models = raw["allowed_models"]
        if models is None:
            models = []
        if not isinstance(models, list) or not all(
            isinstance(m, str) and m.strip() and len(m) <= 200 for m in models
        ):
            raise Invalid(
                "allowed_models must be a list of model names or globs", param="allowed_models"
            )
        if len(models) > 500:
            raise Invalid("allowed_models holds at most 500 entries", param="allowed_models")
        changes["allowed_models"] = tuple(m.strip() for m in models)
    limit_changes: dict[str, Any] = {}
    for name in INT_LIMITS:
        if name in raw:
            limit_changes[name] = _int_limit(name, raw[name])
    for name in MONEY_LIMITS:
        if name in raw:
            limit_changes[name] = _money(name, raw[name])
    if limit_changes:
        changes["limits"] = replace(plan.limits, **limit_changes)
    elif existing is None:
        changes["limits"] = Limits()
    return replace(plan, **changes)
