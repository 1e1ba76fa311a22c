"""Limit evaluation (domain/limits.py) and the model allow-list (domain/plans.py).

Worked examples pin the contract; hypothesis checks :func:`evaluate` against a plain,
independent re-statement of the rule in DESIGN.md §2.1/§3.
"""

from __future__ import annotations

import fnmatch
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meterline.domain.limits import (
    Allow,
    Decision,
    Deny,
    DenyReason,
    UsageSnapshot,
    evaluate,
    exceeded_limits,
)
from meterline.domain.plans import Limits, OverageAction, RatePlan, model_allowed

SETTINGS = settings(max_examples=300, deadline=None)
QUICK = settings(max_examples=150, deadline=None)

NOW = datetime(2024, 3, 15, 12, 0, 0, tzinfo=UTC)
#: From NOW: to the next UTC midnight, and to April 1st.
DAY_WAIT = 12 * 3600
MONTH_WAIT = (16 * 24 + 12) * 3600

LIMIT_REASONS = list(DenyReason)[2:]


def plan(
    limits: Limits | None = None,
    *,
    alert_only: bool = False,
    allowed_models: tuple[str, ...] = (),
) -> RatePlan:
    return RatePlan(
        id="plan_1",
        name="Plan",
        overage_action=OverageAction.ALERT_ONLY if alert_only else OverageAction.BLOCK,
        limits=limits or Limits(),
        allowed_models=allowed_models,
    )


def _kw(name: str, value: Any) -> dict[str, Any]:
    return {name: value}


def _limits(name: str, value: Any) -> Limits:
    return Limits(**_kw(name, value))


def _usage(name: str, value: Any) -> UsageSnapshot:
    return UsageSnapshot(**_kw(name, value))


ALL_LIMITS = Limits(
    daily_token_limit=10,
    monthly_token_limit=10,
    daily_request_limit=10,
    monthly_request_limit=10,
    requests_per_minute=10,
    daily_cost_limit_usd=Decimal(1),
    monthly_cost_limit_usd=Decimal(1),
)
ALL_USED = UsageSnapshot(
    daily_tokens=10,
    monthly_tokens=10,
    daily_requests=10,
    monthly_requests=10,
    daily_cost=Decimal(1),
    monthly_cost=Decimal(1),
    minute_requests=10,
    minute_oldest=NOW - timedelta(seconds=30),
)


# ---------------------------------------------------------------- reason order


def test_deny_reason_strings_and_order_are_the_contract() -> None:
    assert [r.value for r in DenyReason] == [
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


def test_all_exceeded_reports_in_deny_reason_order() -> None:
    exceeded = exceeded_limits(ALL_LIMITS, ALL_USED, NOW)
    assert [reason for reason, _ in exceeded] == LIMIT_REASONS
    decision = evaluate(plan(ALL_LIMITS), ALL_USED, model="m", now=NOW)
    assert decision == Deny(DenyReason.REQUESTS_PER_MINUTE_EXCEEDED, MONTH_WAIT)


@pytest.mark.parametrize("index", range(len(LIMIT_REASONS)))
def test_first_exceeded_limit_is_the_reason(index: int) -> None:
    """Exceed every limit from ``index`` on: the reason is the one at ``index``."""
    fields = [
        ("requests_per_minute", "minute_requests", 10),
        ("daily_token_limit", "daily_tokens", 10),
        ("monthly_token_limit", "monthly_tokens", 10),
        ("daily_request_limit", "daily_requests", 10),
        ("monthly_request_limit", "monthly_requests", 10),
        ("daily_cost_limit_usd", "daily_cost", Decimal(1)),
        ("monthly_cost_limit_usd", "monthly_cost", Decimal(1)),
    ]
    usage = UsageSnapshot(minute_oldest=NOW)
    for _limit_name, used_name, cap in fields[index:]:
        usage = replace(usage, **_kw(used_name, cap))
    decision = evaluate(plan(ALL_LIMITS), usage, model="m", now=NOW)
    assert isinstance(decision, Deny)
    assert decision.reason is LIMIT_REASONS[index]


# ---------------------------------------------------------------- blocked / models


def test_blocked_beats_everything() -> None:
    decision = evaluate(
        plan(ALL_LIMITS, allowed_models=("gpt-4o",)),
        ALL_USED,
        model="claude-3",
        now=NOW,
        blocked=True,
    )
    assert decision == Deny(DenyReason.USER_BLOCKED, None)
    assert decision.allowed is False


def test_blocked_beats_alert_only() -> None:
    decision = evaluate(plan(alert_only=True), UsageSnapshot(), model="m", now=NOW, blocked=True)
    assert decision == Deny(DenyReason.USER_BLOCKED)


def test_model_not_allowed_beats_limits() -> None:
    decision = evaluate(
        plan(ALL_LIMITS, allowed_models=("gpt-4o",)), ALL_USED, model="claude-3", now=NOW
    )
    assert decision == Deny(DenyReason.MODEL_NOT_ALLOWED, None)


def test_alert_only_still_denies_models() -> None:
    decision = evaluate(
        plan(alert_only=True, allowed_models=("gpt-4o",)), UsageSnapshot(), model="x", now=NOW
    )
    assert decision == Deny(DenyReason.MODEL_NOT_ALLOWED)


@pytest.mark.parametrize(
    ("allowed", "model", "ok"),
    [
        ((), "anything", True),
        ((), None, True),
        (("gpt-4o",), None, True),  # no model named: nothing to check
        (("gpt-4o",), "gpt-4o", True),
        (("gpt-4o",), "gpt-4o-mini", False),
        (("gpt-4o",), "GPT-4O", False),  # case-sensitive
        (("gpt-4o*",), "gpt-4o-mini", True),
        (("gpt-4o*",), "gpt-4o", True),
        (("gpt-4o*",), "gpt-4", False),
        (("anthropic/*",), "anthropic/claude-3-5-sonnet", True),
        (("anthropic/*",), "openai/gpt-4o", False),
        (("*",), "x", True),
        (("claude-3-?-sonnet",), "claude-3-5-sonnet", True),
        (("claude-3-?-sonnet",), "claude-3-55-sonnet", False),
        (("gpt-[45]o",), "gpt-4o", True),
        (("gpt-[45]o",), "gpt-[45]o", True),  # exact name wins even if it looks like a glob
        (("gpt-[45]o",), "gpt-6o", False),
        (("a", "b*", "c"), "bee", True),
        (("a", "b*", "c"), "", False),
    ],
)
def test_model_allow_list(allowed: tuple[str, ...], model: str | None, ok: bool) -> None:
    assert model_allowed(allowed, model) is ok
    decision = evaluate(plan(allowed_models=allowed), UsageSnapshot(), model=model, now=NOW)
    assert decision.allowed is ok


# ---------------------------------------------------------------- enforcement modes


def test_enforce_false_allows_everything() -> None:
    decision = evaluate(
        plan(ALL_LIMITS, allowed_models=("none",)),
        ALL_USED,
        model="m",
        now=NOW,
        blocked=True,
        enforce=False,
    )
    assert decision == Allow()
    assert decision.alerts == ()


def test_alert_only_allows_with_alerts_in_order() -> None:
    decision = evaluate(plan(ALL_LIMITS, alert_only=True), ALL_USED, model="m", now=NOW)
    assert decision == Allow(alerts=tuple(LIMIT_REASONS))
    assert decision.allowed is True


def test_alert_only_under_limits_has_no_alerts() -> None:
    assert evaluate(plan(ALL_LIMITS, alert_only=True), UsageSnapshot(), model="m", now=NOW) == (
        Allow()
    )


def test_no_limits_allows() -> None:
    big = UsageSnapshot(daily_tokens=10**12, monthly_requests=10**9, daily_cost=Decimal(10**6))
    assert evaluate(plan(), big, model=None, now=NOW) == Allow()
    assert not Limits().any()
    assert Limits(monthly_cost_limit_usd=Decimal(0)).any()


# ---------------------------------------------------------------- boundaries


@pytest.mark.parametrize("n", [0, 1, 2, 5, 100])
@pytest.mark.parametrize(
    ("limit_name", "used_name", "reason", "wait"),
    [
        (
            "daily_request_limit",
            "daily_requests",
            DenyReason.DAILY_REQUEST_LIMIT_EXCEEDED,
            DAY_WAIT,
        ),
        (
            "monthly_request_limit",
            "monthly_requests",
            DenyReason.MONTHLY_REQUEST_LIMIT_EXCEEDED,
            MONTH_WAIT,
        ),
        ("daily_token_limit", "daily_tokens", DenyReason.DAILY_TOKEN_LIMIT_EXCEEDED, DAY_WAIT),
        (
            "monthly_token_limit",
            "monthly_tokens",
            DenyReason.MONTHLY_TOKEN_LIMIT_EXCEEDED,
            MONTH_WAIT,
        ),
        ("requests_per_minute", "minute_requests", DenyReason.REQUESTS_PER_MINUTE_EXCEEDED, 60),
    ],
)
def test_count_limit_admits_below_and_denies_at_cap(
    n: int, limit_name: str, used_name: str, reason: DenyReason, wait: int
) -> None:
    """A limit N admits used ∈ [0, N-1] (the request would be the N-th at most) and denies
    at N and above. For tokens, ``used`` includes in-flight reservations."""
    p = plan(_limits(limit_name, n))
    for used in range(n):
        assert evaluate(p, _usage(used_name, used), model="m", now=NOW) == Allow()
    for used in (n, n + 1, n + 1000):
        assert evaluate(p, _usage(used_name, used), model="m", now=NOW) == Deny(reason, wait)


@pytest.mark.parametrize(
    ("limit_name", "used_name", "reason", "wait"),
    [
        ("daily_cost_limit_usd", "daily_cost", DenyReason.DAILY_COST_LIMIT_EXCEEDED, DAY_WAIT),
        (
            "monthly_cost_limit_usd",
            "monthly_cost",
            DenyReason.MONTHLY_COST_LIMIT_EXCEEDED,
            MONTH_WAIT,
        ),
    ],
)
def test_cost_cap_admits_strictly_below(
    limit_name: str, used_name: str, reason: DenyReason, wait: int
) -> None:
    p = plan(_limits(limit_name, Decimal("5.00")))
    for used in ("0", "4.999999999", "4.9999999999999"):
        assert evaluate(p, _usage(used_name, Decimal(used)), model="m", now=NOW) == (Allow())
    for used in ("5", "5.000000000", "5.000000001", "1000"):
        assert evaluate(p, _usage(used_name, Decimal(used)), model="m", now=NOW) == (
            Deny(reason, wait)
        )
    zero = plan(_limits(limit_name, Decimal(0)))
    assert evaluate(zero, UsageSnapshot(), model="m", now=NOW) == Deny(reason, wait)


def test_reserved_tokens_count_against_the_cap() -> None:
    # The snapshot's token figure includes reservations: 90 settled + 10 reserved = cap.
    usage = UsageSnapshot(daily_tokens=100, reserved_tokens=10)
    decision = evaluate(plan(Limits(daily_token_limit=100)), usage, model="m", now=NOW)
    assert decision == Deny(DenyReason.DAILY_TOKEN_LIMIT_EXCEEDED, DAY_WAIT)


# ---------------------------------------------------------------- Retry-After


@pytest.mark.parametrize(
    ("now", "day", "month"),
    [
        (datetime(2024, 3, 15, 23, 59, 30, tzinfo=UTC), 30, 16 * 86400 + 30),
        (datetime(2024, 3, 31, 23, 59, 59, 500000, tzinfo=UTC), 1, 1),
        (datetime(2024, 3, 31, 0, 0, 0, tzinfo=UTC), 86400, 86400),
        (datetime(2024, 12, 31, 12, 0, 0, tzinfo=UTC), 43200, 43200),  # Dec → Jan
        (datetime(2024, 2, 28, 0, 0, 0, tzinfo=UTC), 86400, 2 * 86400),  # leap year
        (datetime(2100, 2, 28, 0, 0, 0, tzinfo=UTC), 86400, 86400),  # not a leap year
        (datetime(2024, 3, 15, 12, 0, 0), DAY_WAIT, MONTH_WAIT),  # naive = UTC
    ],
)
def test_retry_after_windows(now: datetime, day: int, month: int) -> None:
    daily = plan(Limits(daily_request_limit=1))
    monthly = plan(Limits(monthly_token_limit=1))
    used = UsageSnapshot(daily_requests=1, monthly_tokens=1)
    assert evaluate(daily, used, model="m", now=now) == Deny(
        DenyReason.DAILY_REQUEST_LIMIT_EXCEEDED, day
    )
    assert evaluate(monthly, used, model="m", now=now) == Deny(
        DenyReason.MONTHLY_TOKEN_LIMIT_EXCEEDED, month
    )


def test_retry_after_uses_the_utc_day_for_non_utc_now() -> None:
    # 20:00 at -05:00 on the 15th is 01:00 UTC on the 16th: 23 h to the UTC midnight.
    now = datetime(2024, 3, 15, 20, 0, tzinfo=timezone(timedelta(hours=-5)))
    used = UsageSnapshot(daily_requests=1, monthly_requests=1)
    daily = plan(Limits(daily_request_limit=1))
    monthly = plan(Limits(monthly_request_limit=1))
    assert evaluate(daily, used, model="m", now=now) == Deny(
        DenyReason.DAILY_REQUEST_LIMIT_EXCEEDED, 23 * 3600
    )
    assert evaluate(monthly, used, model="m", now=now) == Deny(
        DenyReason.MONTHLY_REQUEST_LIMIT_EXCEEDED, (15 * 24 + 23) * 3600
    )
    # 19:00 at -05:00 on March 31 is midnight UTC on April 1: a whole new month.
    edge = datetime(2024, 3, 31, 19, 0, tzinfo=timezone(timedelta(hours=-5)))
    assert evaluate(monthly, used, model="m", now=edge) == Deny(
        DenyReason.MONTHLY_REQUEST_LIMIT_EXCEEDED, 30 * 86400
    )


@pytest.mark.parametrize(
    ("oldest", "wait"),
    [
        (NOW - timedelta(seconds=50), 10),
        (NOW - timedelta(seconds=59, microseconds=500000), 1),  # 0.5 s → 1
        (NOW - timedelta(seconds=10, microseconds=1), 50),  # 49.999999 s → 50
        (NOW, 60),
        (None, 60),  # unknown: a full minute
        (NOW - timedelta(seconds=61), 1),  # stale: never below 1
    ],
)
def test_retry_after_minute(oldest: datetime | None, wait: int) -> None:
    usage = UsageSnapshot(minute_requests=3, minute_oldest=oldest)
    decision = evaluate(plan(Limits(requests_per_minute=3)), usage, model="m", now=NOW)
    assert decision == Deny(DenyReason.REQUESTS_PER_MINUTE_EXCEEDED, wait)


def test_retry_after_is_the_longest_wait_among_exceeded() -> None:
    usage = UsageSnapshot(
        minute_requests=3, minute_oldest=NOW - timedelta(seconds=20), daily_requests=5
    )
    limits = Limits(requests_per_minute=3, daily_request_limit=5, monthly_request_limit=100)
    decision = evaluate(plan(limits), usage, model="m", now=NOW)
    # The reason is the first in order (per minute), the wait the day's.
    assert decision == Deny(DenyReason.REQUESTS_PER_MINUTE_EXCEEDED, DAY_WAIT)
    late = datetime(2024, 3, 31, 23, 59, 50, tzinfo=UTC)
    usage = UsageSnapshot(minute_requests=3, minute_oldest=late, daily_requests=5)
    assert evaluate(plan(limits), usage, model="m", now=late) == Deny(
        DenyReason.REQUESTS_PER_MINUTE_EXCEEDED, 60
    )


# ---------------------------------------------------------------- the rule, restated


def _ceil_seconds(delta: timedelta) -> int:
    micros = delta // timedelta(microseconds=1)
    return max(1, -(-micros // 1_000_000))


def _reference(
    p: RatePlan,
    usage: UsageSnapshot,
    model: str | None,
    now: datetime,
    blocked: bool,
    enforce: bool,
) -> Decision:
    """DESIGN.md §2.1/§3 in the plainest terms, sharing no code with the domain."""
    if not enforce:
        return Allow()
    if blocked:
        return Deny(DenyReason.USER_BLOCKED)
    if p.allowed_models and model is not None:
        if not any(model == pat or fnmatch.fnmatchcase(model, pat) for pat in p.allowed_models):
            return Deny(DenyReason.MODEL_NOT_ALLOWED)
    n = now if now.tzinfo else now.replace(tzinfo=UTC)
    n = n.astimezone(UTC)
    midnight = datetime.combine(n.date() + timedelta(days=1), time(), UTC)
    months = n.year * 12 + n.month  # month index of the next month (0-based months + 1)
    first = datetime(months // 12, months % 12 + 1, 1, tzinfo=UTC)
    day_wait, month_wait = _ceil_seconds(midnight - n), _ceil_seconds(first - n)
    lim = p.limits
    oldest = usage.minute_oldest or n
    rows: list[tuple[DenyReason, int | Decimal | None, int | Decimal, int]] = [
        (
            DenyReason.REQUESTS_PER_MINUTE_EXCEEDED,
            lim.requests_per_minute,
            usage.minute_requests,
            _ceil_seconds(oldest + timedelta(seconds=60) - n),
        ),
        (
            DenyReason.DAILY_TOKEN_LIMIT_EXCEEDED,
            lim.daily_token_limit,
            usage.daily_tokens,
            day_wait,
        ),
        (
            DenyReason.MONTHLY_TOKEN_LIMIT_EXCEEDED,
            lim.monthly_token_limit,
            usage.monthly_tokens,
            month_wait,
        ),
        (
            DenyReason.DAILY_REQUEST_LIMIT_EXCEEDED,
            lim.daily_request_limit,
            usage.daily_requests,
            day_wait,
        ),
        (
            DenyReason.MONTHLY_REQUEST_LIMIT_EXCEEDED,
            lim.monthly_request_limit,
            usage.monthly_requests,
            month_wait,
        ),
        (
            DenyReason.DAILY_COST_LIMIT_EXCEEDED,
            lim.daily_cost_limit_usd,
            usage.daily_cost,
            day_wait,
        ),
        (
            DenyReason.MONTHLY_COST_LIMIT_EXCEEDED,
            lim.monthly_cost_limit_usd,
            usage.monthly_cost,
            month_wait,
        ),
    ]
    # Requests: admitting one more must keep used + 1 ≤ limit. Tokens and cost: admit
    # while used (+ reserved, already in the figure) < cap.
    over = [
        (reason, wait)
        for reason, cap, used, wait in rows
        if cap is not None and (used + 1 > cap if "request" in reason.value else not used < cap)
    ]
    if not over:
        return Allow()
    if p.overage_action == OverageAction.ALERT_ONLY:
        return Allow(alerts=tuple(reason for reason, _ in over))
    return Deny(over[0][0], max(wait for _, wait in over))


small = st.integers(min_value=0, max_value=12)
cap_or_none = st.none() | small
nano_cost = st.integers(min_value=0, max_value=12).map(lambda n: Decimal(n).scaleb(-1))
cost_cap = st.none() | nano_cost

limits_strategy = st.builds(
    Limits,
    daily_token_limit=cap_or_none,
    monthly_token_limit=cap_or_none,
    daily_request_limit=cap_or_none,
    monthly_request_limit=cap_or_none,
    requests_per_minute=cap_or_none,
    daily_cost_limit_usd=cost_cap,
    monthly_cost_limit_usd=cost_cap,
)
moments = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2200, 12, 31), timezones=st.just(UTC)
) | st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2200, 12, 31))


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[RatePlan, UsageSnapshot, str | None, datetime, bool, bool]:
    now = draw(moments)
    aware_now = now if now.tzinfo else now.replace(tzinfo=UTC)
    usage = UsageSnapshot(
        daily_tokens=draw(small),
        monthly_tokens=draw(small),
        daily_requests=draw(small),
        monthly_requests=draw(small),
        daily_cost=draw(nano_cost),
        monthly_cost=draw(nano_cost),
        minute_requests=draw(small),
        minute_oldest=draw(
            st.none()
            | st.timedeltas(min_value=timedelta(0), max_value=timedelta(seconds=90)).map(
                lambda d: aware_now - d
            )
        ),
    )
    p = RatePlan(
        id="p",
        name="p",
        overage_action=draw(st.sampled_from(OverageAction)),
        limits=draw(limits_strategy),
        allowed_models=draw(
            st.lists(
                st.sampled_from(["gpt-4o", "gpt-4o*", "claude-*", "a/b", "x?"]), max_size=3
            ).map(tuple)
        ),
    )
    model = draw(st.none() | st.sampled_from(["gpt-4o", "gpt-4o-mini", "claude-3", "a/b", "xy"]))
    blocked = draw(st.sampled_from([False, False, False, False, True]))
    enforce = draw(st.sampled_from([True, True, True, True, False]))
    return p, usage, model, now, blocked, enforce


@SETTINGS
@given(scenarios())
def test_evaluate_matches_reference(
    scenario: tuple[RatePlan, UsageSnapshot, str | None, datetime, bool, bool],
) -> None:
    p, usage, model, now, blocked, enforce = scenario
    expected = _reference(p, usage, model, now, blocked, enforce)
    actual = evaluate(p, usage, model=model, now=now, blocked=blocked, enforce=enforce)
    assert actual == expected
    if isinstance(actual, Deny) and actual.retry_after_seconds is not None:
        assert actual.retry_after_seconds >= 1


@QUICK
@given(scenarios())
def test_more_usage_never_turns_a_deny_into_an_allow(
    scenario: tuple[RatePlan, UsageSnapshot, str | None, datetime, bool, bool],
) -> None:
    p, usage, model, now, blocked, enforce = scenario
    before = evaluate(p, usage, model=model, now=now, blocked=blocked, enforce=enforce)
    more = replace(
        usage,
        daily_tokens=usage.daily_tokens + 1,
        monthly_tokens=usage.monthly_tokens + 1,
        daily_requests=usage.daily_requests + 1,
        monthly_requests=usage.monthly_requests + 1,
        minute_requests=usage.minute_requests + 1,
        daily_cost=usage.daily_cost + Decimal("0.000000001"),
        monthly_cost=usage.monthly_cost + Decimal("0.000000001"),
    )
    after = evaluate(p, more, model=model, now=now, blocked=blocked, enforce=enforce)
    if not before.allowed:
        assert not after.allowed
    if isinstance(before, Allow) and isinstance(after, Allow):
        assert set(before.alerts) <= set(after.alerts)


@QUICK
@given(scenarios())
def test_alert_only_denies_only_blocked_or_model(
    scenario: tuple[RatePlan, UsageSnapshot, str | None, datetime, bool, bool],
) -> None:
    p, usage, model, now, blocked, enforce = scenario
    p = replace(p, overage_action=OverageAction.ALERT_ONLY)
    decision = evaluate(p, usage, model=model, now=now, blocked=blocked, enforce=enforce)
    if isinstance(decision, Deny):
        assert decision.reason in (DenyReason.USER_BLOCKED, DenyReason.MODEL_NOT_ALLOWED)
        assert decision.retry_after_seconds is None
