"""A reservation that is never settled or released — its process died — falls due after
the reservation TTL, and the ledger then decides what the counters hold: a call whose
row was committed before the crash stays counted, one that never reached the ledger is
uncounted. Both deployment shapes (in-process counters, Redis)."""

from __future__ import annotations

from datetime import UTC, datetime

from meterline.domain.entities import Environment, UsageEvent

QUOTA = "/api/v1/billing/check-quota"
PLANS = "/api/v1/billing/rate-plans"
T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


async def reserve(gw, user: str) -> str:
    r = await gw.get(QUOTA, params={"end_user_id": user, "reserve": "true"})
    assert r.status_code == 200, r.text
    assert r.json()["allowed"] is True
    return r.json()["reservation_id"]


async def usage(gw, user: str) -> dict:
    r = await gw.get(QUOTA, params={"end_user_id": user})
    assert r.status_code == 200, r.text
    return r.json()["usage"]


async def commit_without_settle(gw, user: str, reservation_id: str, tokens: int) -> None:
    """What a gateway process leaves when it dies between its ledger commit and its
    counter settle: the row, and nothing else."""
    event = UsageEvent(
        project_id=gw.project_id,
        environment=Environment.LIVE,
        event_id="evt_" + reservation_id,
        end_user_id=user,
        timestamp=gw.container.clock.now(),
        model="unpriced-model",
        prompt_tokens=tokens,
        total_tokens=tokens,
        priced=False,
        reservation_id=reservation_id,
        source="gateway",
        recorded_at=gw.container.clock.now(),
    )
    (outcome,) = await gw.container.ledger.record_events([event])
    assert outcome.status.value == "recorded"


async def test_a_call_recorded_before_its_process_died_stays_counted(gw, clock):
    clock.current = T0
    ttl = gw.container.settings.reservation_ttl_seconds
    rid = await reserve(gw, "crashed")
    await commit_without_settle(gw, "crashed", rid, tokens=123)
    before = await usage(gw, "crashed")
    assert before["daily_requests"]["used"] == 1  # counted at admission
    assert before["daily_tokens"]["used"] == 0  # the settle never came

    clock.advance(seconds=ttl + 1)  # the reservation falls due: the ledger decides
    after = await usage(gw, "crashed")
    assert after["daily_requests"]["used"] == 1
    assert after["monthly_requests"]["used"] == 1
    assert after["daily_tokens"]["used"] == 123
    assert after["monthly_tokens"]["used"] == 123


async def test_a_call_that_never_reached_the_ledger_is_uncounted(gw, clock):
    clock.current = T0
    ttl = gw.container.settings.reservation_ttl_seconds
    await reserve(gw, "vanished")
    assert (await usage(gw, "vanished"))["daily_requests"]["used"] == 1
    clock.advance(seconds=ttl + 1)
    after = await usage(gw, "vanished")
    assert (after["daily_requests"]["used"], after["daily_tokens"]["used"]) == (0, 0)


async def test_live_reservations_stay_counted_and_held_across_the_reseed(gw, clock):
    r = await gw.post(PLANS, {"name": "Tight", "is_default": True, "daily_request_limit": 3})
    assert r.status_code == 201, r.text
    clock.current = T0
    ttl = gw.container.settings.reservation_ttl_seconds
    dead = await reserve(gw, "mixed")
    await commit_without_settle(gw, "mixed", dead, tokens=10)
    clock.advance(seconds=ttl // 2)
    await reserve(gw, "mixed")  # a call still in flight when the first falls due
    clock.advance(seconds=ttl // 2 + 1)
    after = await usage(gw, "mixed")
    assert after["daily_requests"]["used"] == 2  # the dead call's row + the live one
    assert after["daily_tokens"]["used"] == 10
    # Exactly one request is left under the limit of 3.
    await reserve(gw, "mixed")
    denied = await gw.get(QUOTA, params={"end_user_id": "mixed", "reserve": "true"})
    assert denied.json()["allowed"] is False
    assert denied.json()["reason"] == "daily_request_limit_exceeded"


async def test_the_dead_call_is_uncounted_only_until_its_reservation_falls_due(gw, clock):
    """Until then the hold is the call's stand-in: its request is counted and the tokens
    it reserved are held; the tokens it used appear when the hold falls due."""
    clock.current = T0
    rid = await reserve(gw, "window")
    await commit_without_settle(gw, "window", rid, tokens=50)
    clock.advance(seconds=gw.container.settings.reservation_ttl_seconds - 1)
    assert (await usage(gw, "window"))["daily_tokens"]["used"] == 0
    clock.advance(seconds=2)
    assert (await usage(gw, "window"))["daily_tokens"]["used"] == 50
