"""The Counters contract, run against the in-process and the Redis adapter alike."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from meterline.domain.entities import Environment, UserKey
from meterline.domain.limits import Allow, Deny, DenyReason, UsageSnapshot
from meterline.domain.plans import Limits
from meterline.ports import Counters, Reservation, SeedNeeded, Settlement, WindowTotals

KEY = UserKey("proj_1", Environment.LIVE, "user_{1}")
T0 = datetime(2024, 3, 15, 12, 0, tzinfo=UTC)


def s(n: float) -> timedelta:
    return timedelta(seconds=n)


async def fresh(c: Counters, now: datetime = T0, key: UserKey = KEY, **totals: int) -> None:
    await c.seed(key, WindowTotals(day=now.date(), **totals), now)


# ---------------------------------------------------------------- seeding


async def test_seed_needed_on_first_use(counters: Counters) -> None:
    with pytest.raises(SeedNeeded):
        await counters.snapshot(KEY, T0)
    with pytest.raises(SeedNeeded):
        await counters.admit(KEY, Limits(), alert_only=False, now=T0)


async def test_seed_then_snapshot_equals_seed(counters: Counters) -> None:
    await fresh(
        counters,
        daily_tokens=10,
        monthly_tokens=100,
        daily_requests=2,
        monthly_requests=20,
        daily_cost_nanos=1_500_000_000,
        monthly_cost_nanos=12_000_000_001,
    )
    assert await counters.snapshot(KEY, T0) == UsageSnapshot(
        daily_tokens=10,
        monthly_tokens=100,
        daily_requests=2,
        monthly_requests=20,
        daily_cost=Decimal("1.5"),
        monthly_cost=Decimal("12.000000001"),
    )


async def test_seed_does_not_overwrite(counters: Counters) -> None:
    await fresh(counters, daily_requests=3, monthly_requests=5)
    await counters.admit(KEY, Limits(), alert_only=False, now=T0)
    await fresh(counters, daily_requests=100, monthly_requests=100)
    snap = await counters.snapshot(KEY, T0)
    assert (snap.daily_requests, snap.monthly_requests) == (4, 6)


async def test_seed_for_another_day_seeds_only_the_matching_month(counters: Counters) -> None:
    stale = WindowTotals(day=date(2024, 3, 14), daily_requests=7, monthly_requests=9)
    await counters.seed(KEY, stale, T0)
    with pytest.raises(SeedNeeded):
        await counters.snapshot(KEY, T0)
    await fresh(counters, daily_requests=1, monthly_requests=50)
    snap = await counters.snapshot(KEY, T0)
    assert (snap.daily_requests, snap.monthly_requests) == (1, 9)


async def test_users_and_environments_are_separate(counters: Counters) -> None:
    other = UserKey(KEY.project_id, Environment.TEST, KEY.end_user_id)
    await fresh(counters, daily_requests=4)
    with pytest.raises(SeedNeeded):
        await counters.snapshot(other, T0)
    await fresh(counters, key=other)
    assert (await counters.snapshot(other, T0)).daily_requests == 0


async def test_forget_then_seed_needed(counters: Counters) -> None:
    await fresh(counters)
    await counters.admit(KEY, Limits(), alert_only=False, now=T0, reservation=Reservation("r1", 5))
    await counters.forget(KEY)
    with pytest.raises(SeedNeeded):
        await counters.snapshot(KEY, T0)
    await fresh(counters)
    assert await counters.snapshot(KEY, T0) == UsageSnapshot()
    await counters.forget(KEY)  # forgetting an unknown user is fine
    await counters.forget(UserKey("nobody", Environment.TEST, "x"))


# ---------------------------------------------------------------- exact request counts


async def test_concurrent_admits_respect_daily_request_limit_exactly(counters: Counters) -> None:
    await fresh(counters)
    limits = Limits(daily_request_limit=50)
    results = await asyncio.gather(
        *(counters.admit(KEY, limits, alert_only=False, now=T0) for _ in range(200))
    )
    allowed = [r for r in results if r.decision.allowed]
    assert len(allowed) == 50
    denied = {r.decision.reason for r in results if isinstance(r.decision, Deny)}
    assert denied == {DenyReason.DAILY_REQUEST_LIMIT_EXCEEDED}
    snap = await counters.snapshot(KEY, T0)
    assert (snap.daily_requests, snap.monthly_requests, snap.minute_requests) == (50, 50, 50)


async def test_concurrent_admits_respect_requests_per_minute_exactly(counters: Counters) -> None:
    await fresh(counters)
    limits = Limits(requests_per_minute=30)
    results = await asyncio.gather(
        *(counters.admit(KEY, limits, alert_only=False, now=T0) for _ in range(200))
    )
    assert sum(r.decision.allowed for r in results) == 30


async def test_requests_per_minute_is_a_sliding_window(counters: Counters) -> None:
    await fresh(counters)
    limits = Limits(requests_per_minute=3)
    for offset in (0, 10, 20):
        r = await counters.admit(KEY, limits, alert_only=False, now=T0 + s(offset))
        assert r.decision == Allow()
    r = await counters.admit(KEY, limits, alert_only=False, now=T0 + s(30.5))
    assert r.decision == Deny(DenyReason.REQUESTS_PER_MINUTE_EXCEEDED, 30)
    assert r.usage.minute_requests == 3
    assert r.usage.minute_oldest == T0
    assert (await counters.admit(KEY, limits, alert_only=False, now=T0 + s(59.999))).decision == (
        Deny(DenyReason.REQUESTS_PER_MINUTE_EXCEEDED, 1)
    )
    # Exactly 60 s after the oldest admission it has left the window.
    r = await counters.admit(KEY, limits, alert_only=False, now=T0 + s(60))
    assert r.decision == Allow()
    assert r.usage.minute_oldest == T0 + s(10)
    r = await counters.admit(KEY, limits, alert_only=False, now=T0 + s(61))
    assert r.decision == Deny(DenyReason.REQUESTS_PER_MINUTE_EXCEEDED, 9)
    assert (await counters.snapshot(KEY, T0 + s(200))).minute_requests == 0
    assert (await counters.snapshot(KEY, T0 + s(200))).daily_requests == 4


# ---------------------------------------------------------------- tokens and cost


async def test_token_cap_admits_while_used_plus_reserved_below_cap(counters: Counters) -> None:
    await fresh(counters, daily_tokens=0)
    limits = Limits(daily_token_limit=100)
    r1 = await counters.admit(
        KEY, limits, alert_only=False, now=T0, reservation=Reservation("a", tokens=60)
    )
    assert r1.decision.allowed
    assert (r1.usage.daily_tokens, r1.usage.reserved_tokens) == (60, 60)
    r2 = await counters.admit(
        KEY, limits, alert_only=False, now=T0, reservation=Reservation("b", tokens=60)
    )
    assert r2.decision.allowed  # 60 < 100: admitted, the overshoot is bounded by in-flight
    r3 = await counters.admit(KEY, limits, alert_only=False, now=T0)
    assert r3.decision == Deny(DenyReason.DAILY_TOKEN_LIMIT_EXCEEDED, 12 * 3600)
    assert r3.usage.daily_tokens == 120
    assert await counters.settle(KEY, now=T0, at=T0, tokens=10, cost_nanos=0, reservation_id="a")
    snap = await counters.snapshot(KEY, T0)
    assert (snap.daily_tokens, snap.reserved_tokens, snap.daily_requests) == (70, 60, 2)
    assert (await counters.admit(KEY, limits, alert_only=False, now=T0)).decision.allowed


async def test_monthly_token_cap(counters: Counters) -> None:
    await fresh(counters, monthly_tokens=1000)
    r = await counters.admit(KEY, Limits(monthly_token_limit=1000), alert_only=False, now=T0)
    assert r.decision == Deny(DenyReason.MONTHLY_TOKEN_LIMIT_EXCEEDED, 17 * 86400 - 12 * 3600)


async def test_cost_caps(counters: Counters) -> None:
    await fresh(counters, daily_cost_nanos=9_999_999, monthly_cost_nanos=9_999_999)
    daily = Limits(daily_cost_limit_usd=Decimal("0.01"))
    assert (await counters.admit(KEY, daily, alert_only=False, now=T0)).decision.allowed
    await counters.settle(KEY, now=T0, at=T0, tokens=0, cost_nanos=1)
    r = await counters.admit(KEY, daily, alert_only=False, now=T0)
    assert r.decision == Deny(DenyReason.DAILY_COST_LIMIT_EXCEEDED, 12 * 3600)
    assert r.usage.daily_cost == Decimal("0.01")
    monthly = Limits(monthly_cost_limit_usd=Decimal("0.02"))
    reserve = Reservation("c", cost_nanos=10_000_000)
    r = await counters.admit(KEY, monthly, alert_only=False, now=T0, reservation=reserve)
    assert r.decision.allowed
    assert r.usage.reserved_cost == Decimal("0.01")
    r = await counters.admit(KEY, monthly, alert_only=False, now=T0)
    assert isinstance(r.decision, Deny)
    assert r.decision.reason is DenyReason.MONTHLY_COST_LIMIT_EXCEEDED


@pytest.mark.parametrize(
    ("limits", "reason"),
    [
        (Limits(daily_token_limit=10), DenyReason.DAILY_TOKEN_LIMIT_EXCEEDED),
        (Limits(monthly_token_limit=10), DenyReason.MONTHLY_TOKEN_LIMIT_EXCEEDED),
        (Limits(daily_cost_limit_usd=Decimal("0.00001")), DenyReason.DAILY_COST_LIMIT_EXCEEDED),
        (Limits(monthly_cost_limit_usd=Decimal("0.00001")), DenyReason.MONTHLY_COST_LIMIT_EXCEEDED),
    ],
)
async def test_reservations_count_against_every_cap(
    counters: Counters, limits: Limits, reason: DenyReason
) -> None:
    await fresh(
        counters, daily_tokens=9, monthly_tokens=9, daily_cost_nanos=9_999, monthly_cost_nanos=9_999
    )
    hold = Reservation("h", tokens=1, cost_nanos=1)
    assert (
        await counters.admit(KEY, limits, alert_only=False, now=T0, reservation=hold)
    ).decision.allowed
    r = await counters.admit(KEY, limits, alert_only=False, now=T0)
    assert isinstance(r.decision, Deny)
    assert r.decision.reason is reason
    await counters.release(KEY, "h", now=T0)
    assert (await counters.admit(KEY, limits, alert_only=False, now=T0)).decision.allowed


async def test_cost_cap_finer_than_a_nano(counters: Counters) -> None:
    await fresh(counters, daily_cost_nanos=1)
    limits = Limits(daily_cost_limit_usd=Decimal("0.0000000015"))
    assert (await counters.admit(KEY, limits, alert_only=False, now=T0)).decision.allowed
    await counters.settle(KEY, now=T0, at=T0, tokens=0, cost_nanos=1)
    assert not (await counters.admit(KEY, limits, alert_only=False, now=T0)).decision.allowed


# ---------------------------------------------------------------- Retry-After


@pytest.mark.parametrize(
    ("now", "limits", "expected"),
    [
        # Until the next UTC midnight, rounded up.
        (
            datetime(2024, 3, 15, 23, 59, 30, 200_000, tzinfo=UTC),
            Limits(daily_request_limit=0),
            Deny(DenyReason.DAILY_REQUEST_LIMIT_EXCEEDED, 30),
        ),
        (
            datetime(2024, 3, 15, 23, 59, 59, 999_999, tzinfo=UTC),
            Limits(daily_request_limit=0),
            Deny(DenyReason.DAILY_REQUEST_LIMIT_EXCEEDED, 1),
        ),
        # December → January.
        (
            datetime(2024, 12, 31, 12, 0, tzinfo=UTC),
            Limits(monthly_request_limit=0),
            Deny(DenyReason.MONTHLY_REQUEST_LIMIT_EXCEEDED, 12 * 3600),
        ),
        # Leap February has 29 days; 2023's had 28.
        (
            datetime(2024, 2, 28, tzinfo=UTC),
            Limits(monthly_request_limit=0),
            Deny(DenyReason.MONTHLY_REQUEST_LIMIT_EXCEEDED, 2 * 86400),
        ),
        (
            datetime(2023, 2, 28, tzinfo=UTC),
            Limits(monthly_request_limit=0),
            Deny(DenyReason.MONTHLY_REQUEST_LIMIT_EXCEEDED, 86400),
        ),
        # First reason in order, longest wait among all exceeded limits.
        (
            datetime(2024, 3, 15, 23, 0, tzinfo=UTC),
            Limits(requests_per_minute=0, daily_request_limit=0),
            Deny(DenyReason.REQUESTS_PER_MINUTE_EXCEEDED, 3600),
        ),
        (
            datetime(2024, 3, 15, 23, 0, tzinfo=UTC),
            Limits(requests_per_minute=0),
            Deny(DenyReason.REQUESTS_PER_MINUTE_EXCEEDED, 60),
        ),
    ],
)
async def test_retry_after(
    counters: Counters, now: datetime, limits: Limits, expected: Deny
) -> None:
    await fresh(counters, now=now)
    r = await counters.admit(KEY, limits, alert_only=False, now=now)
    assert r.decision == expected
    assert r.usage == UsageSnapshot()  # a denial changes nothing


# ---------------------------------------------------------------- alert-only


async def test_alert_only_admits_reports_and_counts(counters: Counters) -> None:
    await fresh(counters, daily_requests=1, daily_tokens=500)
    limits = Limits(daily_request_limit=1, daily_token_limit=100, monthly_request_limit=99)
    r = await counters.admit(KEY, limits, alert_only=True, now=T0)
    assert r.decision == Allow(
        alerts=(DenyReason.DAILY_TOKEN_LIMIT_EXCEEDED, DenyReason.DAILY_REQUEST_LIMIT_EXCEEDED)
    )
    assert (r.usage.daily_requests, r.usage.monthly_requests, r.usage.minute_requests) == (2, 1, 1)


# ---------------------------------------------------------------- reservations


async def test_settle_with_reservation_does_not_count_a_second_request(
    counters: Counters,
) -> None:
    await fresh(counters)
    res = Reservation("r", tokens=500, cost_nanos=7_000)
    await counters.admit(KEY, Limits(), alert_only=False, now=T0, reservation=res)
    settled = await counters.settle(
        KEY, now=T0 + s(2), at=T0 + s(2), tokens=120, cost_nanos=3_000, reservation_id="r"
    )
    assert settled
    snap = await counters.snapshot(KEY, T0 + s(2))
    assert snap.daily_requests == snap.monthly_requests == 1
    assert (snap.daily_tokens, snap.reserved_tokens) == (120, 0)
    assert (snap.daily_cost, snap.reserved_cost) == (Decimal("0.000003"), Decimal(0))
    # Settling the same reservation again is a plain report: one more request.
    assert not await counters.settle(KEY, now=T0, at=T0, tokens=1, cost_nanos=0, reservation_id="r")
    assert (await counters.snapshot(KEY, T0)).daily_requests == 2


async def test_settle_without_reservation_counts_one_request(counters: Counters) -> None:
    await fresh(counters, daily_requests=4, monthly_requests=40)
    assert not await counters.settle(KEY, now=T0, at=T0, tokens=30, cost_nanos=5)
    snap = await counters.snapshot(KEY, T0)
    assert (snap.daily_requests, snap.monthly_requests, snap.daily_tokens) == (5, 41, 30)
    assert snap.minute_requests == 1


async def test_settle_at_an_earlier_day_changes_only_the_month(counters: Counters) -> None:
    await fresh(counters)
    await counters.settle(KEY, now=T0, at=T0 - timedelta(days=1), tokens=30, cost_nanos=5)
    await counters.settle(KEY, now=T0, at=T0 - timedelta(days=40), tokens=30, cost_nanos=5)
    snap = await counters.snapshot(KEY, T0)
    assert (snap.daily_requests, snap.daily_tokens) == (0, 0)
    assert (snap.monthly_requests, snap.monthly_tokens, snap.minute_requests) == (1, 30, 0)


async def test_release_uncounts(counters: Counters) -> None:
    await fresh(counters)
    res = Reservation("r", tokens=50, cost_nanos=10)
    await counters.admit(KEY, Limits(), alert_only=False, now=T0, reservation=res)
    assert await counters.release(KEY, "r", now=T0)
    assert not await counters.release(KEY, "r", now=T0)
    assert not await counters.release(KEY, "never-held", now=T0)
    snap = await counters.snapshot(KEY, T0)
    assert (snap.daily_requests, snap.monthly_requests, snap.daily_tokens) == (0, 0, 0)
    assert snap.reserved_cost == 0
    # The burst window keeps the attempt: it guards the upstream, not the bill.
    assert snap.minute_requests == 1


async def test_an_expired_reservation_makes_the_ledger_decide(counters: Counters) -> None:
    """A reservation that falls due was never settled or released: its process may have
    died after writing the ledger row (the call happened) or before (it did not). Only
    the ledger knows, so the current windows are dropped and reseeded from it."""
    await fresh(counters, daily_requests=4, monthly_requests=9, daily_tokens=40)
    short = Reservation("short", tokens=10, expires_at=T0 + s(30))
    long = Reservation("long", tokens=20, expires_at=T0 + s(300))
    await counters.admit(KEY, Limits(), alert_only=False, now=T0, reservation=short)
    await counters.admit(KEY, Limits(), alert_only=False, now=T0, reservation=long)
    assert (await counters.snapshot(KEY, T0 + s(29))).reserved_tokens == 30
    with pytest.raises(SeedNeeded):
        await counters.snapshot(KEY, T0 + s(30))
    with pytest.raises(SeedNeeded):  # still absent until seeded
        await counters.admit(KEY, Limits(), alert_only=False, now=T0 + s(30))
    # "short"'s process died after its ledger commit: the ledger has 5 calls now. The
    # live "long" reservation was counted at admission and is not in the ledger yet.
    await fresh(counters, T0 + s(30), daily_requests=5, monthly_requests=10, daily_tokens=47)
    snap = await counters.snapshot(KEY, T0 + s(30))
    assert (snap.daily_requests, snap.monthly_requests) == (6, 11)
    assert (snap.daily_tokens, snap.reserved_tokens) == (47 + 20, 20)
    # A late settle of the expired reservation counts as a new request (its hold is gone).
    assert not await counters.settle(
        KEY, now=T0 + s(31), at=T0 + s(31), tokens=5, cost_nanos=0, reservation_id="short"
    )
    # "long" settles in time: no second request, its hold becomes its real usage.
    assert await counters.settle(
        KEY, now=T0 + s(32), at=T0 + s(32), tokens=8, cost_nanos=0, reservation_id="long"
    )
    snap = await counters.snapshot(KEY, T0 + s(400))
    assert (snap.daily_requests, snap.daily_tokens, snap.reserved_tokens) == (7, 47 + 5 + 8, 0)


async def test_an_expired_reservation_whose_call_never_happened_is_uncounted(
    counters: Counters,
) -> None:
    await fresh(counters, daily_requests=2, monthly_requests=2)
    await counters.admit(
        KEY, Limits(), alert_only=False, now=T0, reservation=Reservation("r", 9, 0, T0 + s(60))
    )
    assert (await counters.snapshot(KEY, T0)).daily_requests == 3
    assert not await counters.release(KEY, "r", now=T0 + s(61))  # too late: already due
    with pytest.raises(SeedNeeded):
        await counters.snapshot(KEY, T0 + s(61))
    await fresh(counters, T0 + s(61), daily_requests=2, monthly_requests=2)  # no row
    snap = await counters.snapshot(KEY, T0 + s(61))
    assert (snap.daily_requests, snap.monthly_requests, snap.reserved_tokens) == (2, 2, 0)


async def test_a_seed_racing_an_expiry_is_refused(counters: Counters) -> None:
    await fresh(counters)
    await counters.admit(
        KEY, Limits(), alert_only=False, now=T0, reservation=Reservation("r", 1, 0, T0 + s(10))
    )
    # A seeder read its version and the ledger; meanwhile the reservation fell due, which
    # drops windows that may hold usage settled after that read.
    version = await counters.seed_version(KEY)
    stale = WindowTotals(day=T0.date(), daily_requests=1, monthly_requests=1)
    assert not await counters.seed(KEY, stale, T0 + s(10), version=version)
    version = await counters.seed_version(KEY)
    assert await counters.seed(KEY, stale, T0 + s(10), version=version)
    assert (await counters.snapshot(KEY, T0 + s(10))).daily_requests == 1


async def test_a_seed_racing_a_settle_is_refused(counters: Counters) -> None:
    # A seeder read its version, then the ledger; meanwhile an event committed and was
    # settled while the windows were still absent, so the seeder's totals miss it.
    version = await counters.seed_version(KEY)
    await counters.settle(KEY, now=T0, at=T0, tokens=5, cost_nanos=7)
    stale = WindowTotals(day=T0.date())
    assert not await counters.seed(KEY, stale, T0, version=version)
    with pytest.raises(SeedNeeded):  # the settle created no window of its own
        await counters.snapshot(KEY, T0)
    version = await counters.seed_version(KEY)  # the retry reads the event
    seen = WindowTotals(
        day=T0.date(),
        daily_tokens=5,
        monthly_tokens=5,
        daily_requests=1,
        monthly_requests=1,
        daily_cost_nanos=7,
        monthly_cost_nanos=7,
    )
    assert await counters.seed(KEY, seen, T0, version=version)
    snap = await counters.snapshot(KEY, T0)
    assert (snap.daily_tokens, snap.monthly_requests) == (5, 1)


async def test_a_settle_with_no_seed_under_way_creates_nothing(counters: Counters) -> None:
    await counters.settle(KEY, now=T0, at=T0, tokens=5, cost_nanos=7)
    with pytest.raises(SeedNeeded):
        await counters.snapshot(KEY, T0)
    await fresh(counters, daily_tokens=5)  # no version asked: accepted as it is
    assert (await counters.snapshot(KEY, T0)).daily_tokens == 5


async def test_duplicate_reservation_id_is_refused(counters: Counters) -> None:
    await fresh(counters)
    await counters.admit(KEY, Limits(), alert_only=False, now=T0, reservation=Reservation("r"))
    with pytest.raises(ValueError, match="already held"):
        await counters.admit(KEY, Limits(), alert_only=False, now=T0, reservation=Reservation("r"))
    assert (await counters.snapshot(KEY, T0)).daily_requests == 1


async def test_settle_and_release_on_absent_windows(counters: Counters) -> None:
    # Never seeded: nothing raises, nothing is created.
    assert not await counters.settle(KEY, now=T0, at=T0, tokens=5, cost_nanos=5)
    assert not await counters.release(KEY, "r", now=T0)
    with pytest.raises(SeedNeeded):
        await counters.snapshot(KEY, T0)
    # Admitted yesterday, settled after midnight: the reservation is still dropped.
    await fresh(counters)
    await counters.admit(KEY, Limits(), alert_only=False, now=T0, reservation=Reservation("a", 9))
    await counters.admit(KEY, Limits(), alert_only=False, now=T0, reservation=Reservation("b", 9))
    later = T0 + timedelta(days=1)
    assert await counters.settle(
        KEY, now=later, at=later, tokens=5, cost_nanos=5, reservation_id="a"
    )
    assert await counters.release(KEY, "b", now=later)
    with pytest.raises(SeedNeeded):
        await counters.snapshot(KEY, later)
    await fresh(counters, now=later)
    snap = await counters.snapshot(KEY, later)
    assert (snap.daily_requests, snap.daily_tokens, snap.reserved_tokens) == (0, 0, 0)
    # The month is still current: the settle added its usage, the release uncounted.
    assert (snap.monthly_requests, snap.monthly_tokens) == (1, 5)


# ---------------------------------------------------------------- rollover


async def test_windows_roll_over_at_utc_midnight(counters: Counters) -> None:
    last = datetime(2024, 3, 15, 23, 59, 59, 900_000, tzinfo=UTC)
    await fresh(counters, now=last, daily_requests=7, monthly_requests=70)
    await counters.admit(KEY, Limits(), alert_only=False, now=last)
    midnight = datetime(2024, 3, 16, tzinfo=UTC)
    with pytest.raises(SeedNeeded):
        await counters.admit(KEY, Limits(), alert_only=False, now=midnight)
    # The ledger seeds the new day; the month already present is kept as it is.
    await fresh(counters, now=midnight, daily_requests=0, monthly_requests=999)
    snap = await counters.snapshot(KEY, midnight)
    assert (snap.daily_requests, snap.monthly_requests, snap.minute_requests) == (0, 71, 1)


async def test_month_rolls_over(counters: Counters) -> None:
    last = datetime(2024, 12, 31, 23, 59, tzinfo=UTC)
    await fresh(counters, now=last, monthly_requests=70)
    new_year = datetime(2025, 1, 1, tzinfo=UTC)
    await counters.seed(KEY, WindowTotals(day=new_year.date(), daily_requests=3), new_year)
    snap = await counters.snapshot(KEY, new_year)
    assert (snap.daily_requests, snap.monthly_requests) == (3, 0)


async def test_release_after_the_windows_were_dropped_creates_none(counters: Counters) -> None:
    # Same day: another reservation fell due, which dropped the windows; releasing a live
    # one must uncount nothing (there is nothing to uncount) and create no window.
    await fresh(counters, daily_requests=4, monthly_requests=4)
    live = Reservation("live", 9, 0, T0 + s(600))
    await counters.admit(KEY, Limits(), alert_only=False, now=T0, reservation=live)
    due = Reservation("due", 9, 0, T0 + s(10))
    await counters.admit(KEY, Limits(), alert_only=False, now=T0, reservation=due)
    assert await counters.release(KEY, "live", now=T0 + s(20))  # "due" expires first
    with pytest.raises(SeedNeeded):
        await counters.snapshot(KEY, T0 + s(20))
    await fresh(counters, T0 + s(20), daily_requests=4, monthly_requests=4)
    snap = await counters.snapshot(KEY, T0 + s(20))
    assert (snap.daily_requests, snap.monthly_requests, snap.reserved_tokens) == (4, 4, 0)


async def test_release_after_rollover_leaves_the_new_windows_alone(counters: Counters) -> None:
    last = datetime(2024, 3, 31, 23, 59, tzinfo=UTC)
    await fresh(counters, now=last)
    expiring = Reservation("e", tokens=3, expires_at=last + s(120))
    await counters.admit(KEY, Limits(), alert_only=False, now=last, reservation=expiring)
    await counters.admit(KEY, Limits(), alert_only=False, now=last, reservation=Reservation("r"))
    april = datetime(2024, 4, 1, 0, 0, 30, tzinfo=UTC)
    await fresh(counters, now=april, daily_requests=2, monthly_requests=2)
    assert await counters.release(KEY, "r", now=april)
    snap = await counters.snapshot(KEY, april)
    assert (snap.daily_requests, snap.monthly_requests, snap.reserved_tokens) == (2, 2, 3)
    with pytest.raises(SeedNeeded):  # "e" falls due: the ledger decides
        await counters.snapshot(KEY, april + s(120))
    await fresh(counters, now=april + s(120), daily_requests=2, monthly_requests=2)
    snap = await counters.snapshot(KEY, april + s(120))
    assert (snap.daily_requests, snap.monthly_requests, snap.reserved_tokens) == (2, 2, 0)


# ---------------------------------------------------------------- batches


async def test_settle_many_equals_settling_one_by_one(counters: Counters) -> None:
    one, other = KEY, UserKey("proj_1", Environment.TEST, "user_{1}")
    for key in (one, other):
        await fresh(counters, key=key, daily_requests=1, monthly_requests=4, daily_tokens=9)
        await counters.admit(
            key, Limits(), alert_only=False, now=T0, reservation=Reservation("r", 50, 7)
        )
    items = [
        Settlement(one, T0, 10, 100, "r"),  # settles the reservation: no second request
        Settlement(one, T0, 5, 1),  # a plain event
        Settlement(one, T0 - timedelta(days=40), 3, 3),  # an old month: ledger only
        Settlement(one, T0, 2, 2, "gone"),  # an unknown reservation counts as an event
        Settlement(UserKey("proj_1", Environment.LIVE, "never seeded"), T0, 1, 1),
    ]
    assert await counters.settle_many(items, now=T0) == [True, False, False, False, False]
    for item in items:  # the same settles on the other user, one by one
        if item.key == one:
            await counters.settle(
                other,
                now=T0,
                at=item.at,
                tokens=item.tokens,
                cost_nanos=item.cost_nanos,
                reservation_id=item.reservation_id,
            )
    a, b = await counters.snapshot(one, T0), await counters.snapshot(other, T0)
    assert a == b
    assert (a.daily_requests, a.daily_tokens, a.reserved_tokens) == (4, 9 + 17, 0)
    with pytest.raises(SeedNeeded):  # nothing created for a user never seeded
        await counters.snapshot(UserKey("proj_1", Environment.LIVE, "never seeded"), T0)
    assert await counters.settle_many([], now=T0) == []
