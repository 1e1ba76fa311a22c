"""Records → JSON-ready dicts. Money leaves as decimal strings, never numbers."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from meterline.domain.entities import AlertRecord, EndUser, Project, UsageTotals
from meterline.domain.limits import UsageSnapshot
from meterline.domain.money import money_str
from meterline.domain.plans import RatePlan
from meterline.ports import RevenueReport, UsageRow

__all__ = [
    "alert_json",
    "config_json",
    "end_user_json",
    "money",
    "plan_json",
    "revenue_json",
    "totals_json",
    "usage_json",
    "usage_row_json",
]


def money(amount: Decimal | None) -> str | None:
    return None if amount is None else money_str(amount)


def plan_json(plan: RatePlan, users: int | None = None) -> dict[str, Any]:
    lim = plan.limits
    out: dict[str, Any] = {
        "id": plan.id,
        "name": plan.name,
        "slug": plan.slug,
        "is_default": plan.is_default,
        "overage_action": plan.overage_action.value,
        "daily_token_limit": lim.daily_token_limit,
        "monthly_token_limit": lim.monthly_token_limit,
        "daily_request_limit": lim.daily_request_limit,
        "monthly_request_limit": lim.monthly_request_limit,
        "requests_per_minute": lim.requests_per_minute,
        "daily_cost_limit_usd": money(lim.daily_cost_limit_usd),
        "monthly_cost_limit_usd": money(lim.monthly_cost_limit_usd),
        "markup_percentage": money(plan.markup_percentage),
        "flat_rate_per_request": money(plan.flat_rate_per_request),
        "allowed_models": list(plan.allowed_models),
    }
    if users is not None:
        out["end_user_count"] = users
    return out


def end_user_json(user: EndUser) -> dict[str, Any]:
    return {
        "end_user_id": user.end_user_id,
        "environment": user.environment.value,
        "rate_plan_id": user.rate_plan_id,
        "blocked": user.blocked,
        "email": user.email,
        "name": user.name,
        "stripe_customer_id": user.stripe_customer_id,
        "created_at": user.created_at.isoformat() if user.created_at else None,
    }


def usage_json(plan: RatePlan, usage: UsageSnapshot) -> dict[str, Any]:
    """check-quota's ``usage`` block: consumed (without in-flight holds) against the limit."""
    lim = plan.limits
    return {
        "daily_tokens": {
            "used": usage.daily_tokens - usage.reserved_tokens,
            "limit": lim.daily_token_limit,
        },
        "monthly_tokens": {
            "used": usage.monthly_tokens - usage.reserved_tokens,
            "limit": lim.monthly_token_limit,
        },
        "daily_requests": {"used": usage.daily_requests, "limit": lim.daily_request_limit},
        "monthly_requests": {"used": usage.monthly_requests, "limit": lim.monthly_request_limit},
        "requests_per_minute": {"used": usage.minute_requests, "limit": lim.requests_per_minute},
        "daily_cost_usd": {
            "used": money(usage.daily_cost - usage.reserved_cost),
            "limit": money(lim.daily_cost_limit_usd),
        },
        "monthly_cost_usd": {
            "used": money(usage.monthly_cost - usage.reserved_cost),
            "limit": money(lim.monthly_cost_limit_usd),
        },
    }


def totals_json(t: UsageTotals) -> dict[str, Any]:
    return {
        "requests": t.requests,
        "prompt_tokens": t.prompt_tokens,
        "completion_tokens": t.completion_tokens,
        "total_tokens": t.total_tokens,
        "provider_cost_usd": money(t.provider_cost),
        "markup_usd": money(t.markup),
        "charge_usd": money(t.charge),
        "unpriced_requests": t.unpriced_requests,
    }


def usage_row_json(row: UsageRow) -> dict[str, Any]:
    return {"period": row.period, **totals_json(row.totals)}


def revenue_json(report: RevenueReport) -> dict[str, Any]:
    t = report.totals
    return {
        "revenue_usd": money(t.charge),
        "provider_cost_usd": money(t.provider_cost),
        "margin_usd": money(t.charge - t.provider_cost),
        "requests": t.requests,
        "total_tokens": t.total_tokens,
        "unpriced_requests": t.unpriced_requests,
        "daily": [
            {
                "date": d.day.isoformat(),
                "revenue_usd": money(d.totals.charge),
                "provider_cost_usd": money(d.totals.provider_cost),
                "margin_usd": money(d.totals.charge - d.totals.provider_cost),
                "requests": d.totals.requests,
                "total_tokens": d.totals.total_tokens,
            }
            for d in report.daily
        ],
        "top_users": [
            {
                "end_user_id": u.end_user_id,
                "revenue_usd": money(u.totals.charge),
                "provider_cost_usd": money(u.totals.provider_cost),
                "requests": u.totals.requests,
                "total_tokens": u.totals.total_tokens,
            }
            for u in report.top_users
        ],
    }


def config_json(project: Project) -> dict[str, Any]:
    return {
        "project_id": project.id,
        "enabled": project.billing_enabled,
        "default_markup_percentage": money(project.default_markup_percentage),
        "default_flat_rate_per_request": money(project.default_flat_rate_per_request),
        "currency": project.currency,
    }


def alert_json(alert: AlertRecord) -> dict[str, Any]:
    return {
        "id": alert.id,
        "kind": alert.kind,
        "end_user_id": alert.end_user_id,
        "window": alert.window,
        "message": alert.message,
        "created_at": alert.created_at.isoformat() if alert.created_at else None,
    }
