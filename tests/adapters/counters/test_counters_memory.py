"""In-process counters only: memory follows the users active today. Users with nothing
current are dropped every N seeds and simply seed again from the ledger."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from meterline.adapters.counters import MemoryCounters
from meterline.domain.entities import Environment, UserKey
from meterline.domain.plans import Limits
from meterline.ports import Reservation, SeedNeeded, WindowTotals

T0 = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)
TOMORROW = T0 + timedelta(days=1)


def key(i: int) -> UserKey:
    return UserKey("p", Environment.LIVE, f"u{i}")


async def seed(c: MemoryCounters, k: UserKey, now: datetime, requests: int = 0) -> None:
    await c.seed(
        k, WindowTotals(now.date(), daily_requests=requests, monthly_requests=requests), now
    )


async def test_users_with_nothing_current_are_dropped_and_seed_again() -> None:
    c = MemoryCounters(sweep_every=5)
    for i in range(3):
        await seed(c, key(i), T0, requests=7)
    held = Reservation("r", 1, 0, TOMORROW + timedelta(hours=1))
    await c.admit(key(2), Limits(), alert_only=False, now=T0, reservation=held)
    # The next day: two more seeds make five, which sweeps.
    await seed(c, key(3), TOMORROW)
    await seed(c, key(4), TOMORROW)
    assert set(c._users) == {key(2), key(3), key(4)}  # u2 holds a reservation: kept
    with pytest.raises(SeedNeeded):  # dropped: the ledger decides again
        await c.snapshot(key(0), TOMORROW)
    await seed(c, key(0), TOMORROW, requests=1)
    assert (await c.snapshot(key(0), TOMORROW)).daily_requests == 1


async def test_active_users_are_kept() -> None:
    c = MemoryCounters(sweep_every=3)
    await seed(c, key(0), T0, requests=4)
    await c.admit(key(0), Limits(), alert_only=False, now=T0)
    await seed(c, key(1), T0)
    await seed(c, key(2), T0)  # sweeps: everyone has today's window
    assert len(c._users) == 3
    assert (await c.snapshot(key(0), T0)).daily_requests == 5


async def test_a_user_whose_seed_is_under_way_is_not_swept() -> None:
    """Dropping its version would forget a settle's bump, and a seed that missed that
    settle's event would be accepted."""
    c = MemoryCounters(sweep_every=2)
    await seed(c, key(9), T0)  # active yesterday; today it has nothing current
    version = await c.seed_version(key(9))  # a seeder read the version, now reads the ledger
    await c.settle(key(9), now=TOMORROW, at=TOMORROW, tokens=5, cost_nanos=0)  # bump
    await seed(c, key(1), TOMORROW)  # the second seed: a sweep runs meanwhile
    assert key(9) in c._users
    stale = WindowTotals(TOMORROW.date())  # read before that settle's event committed
    assert not await c.seed(key(9), stale, TOMORROW, version=version)
