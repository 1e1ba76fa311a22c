"""Limit evaluation: the one pure rule every admission path follows.

``evaluate`` decides from a usage snapshot; the counter adapters call it (or, in
Redis, a Lua script that mirrors it and is held to it by a shared contract suite) so
that the check and the increment are one atomic step.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from meterline.domain.plans import Limits, OverageAction, RatePlan, model_allowed
from meterline.domain.windows import (
    MINUTE_WINDOW_SECONDS,
    next_day_start,
    next_month_start,
    seconds_until,
)

__all__ = [
    "Allow",
    "Decision",
    "Deny",
    "DenyReason",
    "UsageSnapshot",
    "evaluate",
    "exceeded_limits",
]


class DenyReason(StrEnum):
    """The exact reason strings of the contract (DESIGN.md §2.2), in checking order."""

    USER_BLOCKED = "user_blocked"
    MODEL_NOT_ALLOWED = "model_not_allowed"
    REQUESTS_PER_MINUTE_EXCEEDED = "requests_per_minute_exceeded"
    DAILY_TOKEN_LIMIT_EXCEEDED = "daily_token_limit_exceeded"
    MONTHLY_TOKEN_LIMIT_EXCEEDED = "monthly_token_limit_exceeded"
    DAILY_REQUEST_LIMIT_EXCEEDED = "daily_request_limit_exceeded"
    MONTHLY_REQUEST_LIMIT_EXCEEDED = "monthly_request_limit_exceeded"
    DAILY_COST_LIMIT_EXCEEDED = "daily_cost_limit_exceeded"
    MONTHLY_COST_LIMIT_EXCEEDED = "monthly_cost_limit_exceeded"


@dataclass(frozen=True, slots=True)
class UsageSnapshot:
    """What a user has used in the windows containing ``now``.

    Token and cost figures include amounts reserved by requests still in flight.
    ``minute_requests`` counts admissions in the last 60 seconds and
    ``minute_oldest`` is the earliest of them (it frees the window when it leaves).
    """

    daily_tokens: int = 0
    monthly_tokens: int = 0
    daily_requests: int = 0
    monthly_requests: int = 0
    daily_cost: Decimal = Decimal(0)
    monthly_cost: Decimal = Decimal(0)
    minute_requests: int = 0
    minute_oldest: datetime | None = None
    #: The in-flight part of the token and cost figures above (for reporting).
    reserved_tokens: int = 0
    reserved_cost: Decimal = Decimal(0)


@dataclass(frozen=True, slots=True)
class Allow:
    allowed = True
    #: Limits exceeded on an ``alert_only`` plan: the call goes through, alerts recorded.
    alerts: tuple[DenyReason, ...] = ()


@dataclass(frozen=True, slots=True)
class Deny:
    allowed = False
    reason: DenyReason
    #: Whole seconds until every exceeded window frees up; ``None`` when waiting won't help.
    retry_after_seconds: int | None = None


Decision = Allow | Deny


def exceeded_limits(
    limits: Limits, usage: UsageSnapshot, now: datetime
) -> list[tuple[DenyReason, int]]:
    """Every time-bound limit that one more request would break, with its Retry-After.

    Requests: admitting one more must keep ``used + 1 ≤ limit``. Tokens and cost are not
    known before the call, so they admit while ``used + reserved < cap``.
    """
    out: list[tuple[DenyReason, int]] = []
    rpm = limits.requests_per_minute
    if rpm is not None and usage.minute_requests >= rpm:
        oldest = usage.minute_oldest or now
        wait = seconds_until(now, oldest + timedelta(seconds=MINUTE_WINDOW_SECONDS))
        out.append((DenyReason.REQUESTS_PER_MINUTE_EXCEEDED, wait))
    # For requests "used >= limit" is "used + 1 > limit"; for tokens and cost it is the
    # admit-while-below rule. Both read the same, which is why one loop serves all six.
    # The last item says whether the window is the month (else the day).
    checks: tuple[tuple[DenyReason, int | Decimal | None, int | Decimal, bool], ...] = (
        (
            DenyReason.DAILY_TOKEN_LIMIT_EXCEEDED,
            limits.daily_token_limit,
            usage.daily_tokens,
            False,
        ),
        (
            DenyReason.MONTHLY_TOKEN_LIMIT_EXCEEDED,
            limits.monthly_token_limit,
            usage.monthly_tokens,
            True,
        ),
        (
            DenyReason.DAILY_REQUEST_LIMIT_EXCEEDED,
            limits.daily_request_limit,
            usage.daily_requests,
            False,
        ),
        (
            DenyReason.MONTHLY_REQUEST_LIMIT_EXCEEDED,
            limits.monthly_request_limit,
            usage.monthly_requests,
            True,
        ),
        (
            DenyReason.DAILY_COST_LIMIT_EXCEEDED,
            limits.daily_cost_limit_usd,
            usage.daily_cost,
            False,
        ),
        (
            DenyReason.MONTHLY_COST_LIMIT_EXCEEDED,
            limits.monthly_cost_limit_usd,
            usage.monthly_cost,
            True,
        ),
    )
    hits = [
        (reason, monthly)
        for reason, cap, used, monthly in checks
        if cap is not None and used >= cap
    ]
    if hits:  # the waits only when needed: most calls exceed nothing
        day_wait = seconds_until(now, next_day_start(now))
        month_wait = seconds_until(now, next_month_start(now))
        out.extend((reason, month_wait if monthly else day_wait) for reason, monthly in hits)
    return out


def evaluate(
    plan: RatePlan,
    usage: UsageSnapshot,
    *,
    model: str | None,
    now: datetime,
    blocked: bool = False,
    enforce: bool = True,
) -> Decision:
    """Admit or deny one request.

    Order: blocked, model allow-list, then limits in :class:`DenyReason` order. The
    reason is the first exceeded limit; Retry-After is the longest wait among all
    exceeded limits, since retrying before then would be denied again. ``enforce=False``
    (billing disabled for the project) allows everything.
    """
    if not enforce:
        return Allow()
    if blocked:
        return Deny(DenyReason.USER_BLOCKED)
    if not model_allowed(plan.allowed_models, model):
        return Deny(DenyReason.MODEL_NOT_ALLOWED)
    exceeded = exceeded_limits(plan.limits, usage, now)
    if not exceeded:
        return Allow()
    if plan.overage_action is OverageAction.ALERT_ONLY:
        return Allow(alerts=tuple(reason for reason, _ in exceeded))
    return Deny(exceeded[0][0], max(wait for _, wait in exceeded))
