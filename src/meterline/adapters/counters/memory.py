"""In-process counters: the default for a single gateway process.

Every method runs without awaiting inside its body, so on one event loop each call is
atomic: the check-and-increment of :meth:`MemoryCounters.admit` cannot interleave with
another call. The decision itself is :func:`meterline.domain.limits.exceeded_limits`,
the same rule the Redis script mirrors.

The adapter never reads a clock: ``now`` comes from the caller, which keeps tests
deterministic and the behaviour identical to Redis (where replicas pass their time).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from meterline.adapters.counters._support import MINUTE_MS, Windows, WindowsMemo, from_ms, to_ms
from meterline.domain.entities import UserKey
from meterline.domain.limits import Allow, Decision, Deny, UsageSnapshot, exceeded_limits
from meterline.domain.money import from_nanos
from meterline.domain.plans import Limits
from meterline.domain.windows import day_key, month_key
from meterline.ports import AdmitResult, Reservation, SeedNeeded, Settlement, WindowTotals

__all__ = ["MemoryCounters"]


@dataclass(slots=True)
class _Window:
    requests: int = 0
    tokens: int = 0
    cost_nanos: int = 0


@dataclass(frozen=True, slots=True)
class _Held:
    tokens: int
    cost_nanos: int
    expires_ms: int | None
    day: str
    month: str


@dataclass(slots=True)
class _User:
    days: dict[str, _Window] = field(default_factory=dict)
    months: dict[str, _Window] = field(default_factory=dict)
    #: Sorted admission times (epoch ms) of the rolling minute.
    minute: list[int] = field(default_factory=list)
    held: dict[str, _Held] = field(default_factory=dict)


#: Seeds between sweeps of users with nothing current (see :meth:`MemoryCounters._sweep`).
SWEEP_EVERY_SEEDS = 10_000


class MemoryCounters:
    """:class:`meterline.ports.Counters` kept in a dict; exact within one process.

    Counters are a cache of the ledger, so a user with nothing current (no window of the
    current day, no reservation, nothing in the rolling minute) can be dropped at any time:
    its next call seeds it again. Every ``sweep_every`` seeds such users are dropped, so
    memory follows the users active today, not every user ever seen.
    """

    def __init__(self, *, sweep_every: int = SWEEP_EVERY_SEEDS) -> None:
        self._users: dict[UserKey, _User] = {}
        self._versions: dict[UserKey, int] = {}
        self._sweep_every = max(1, sweep_every)
        self._seeds = 0
        #: Users whose seed is under way (version read, ledger being read): never swept,
        #: or a settle's version bump would be forgotten and a stale seed accepted.
        self._seeding: set[UserKey] = set()
        self._windows = WindowsMemo()

    # ------------------------------------------------------------ helpers

    def _user(self, key: UserKey, w: Windows) -> _User:
        """The user's state with stale windows dropped and due reservations expired
        (see :meth:`_expire`).

        Only ``seed`` creates state: an unknown user is handed a throwaway empty one, so
        settle/release for a user never seeded leave nothing behind.
        """
        user = self._users.get(key) or _User()
        self._expire(user, w)
        return user

    def _expire(self, user: _User, w: Windows) -> bool:
        """Drop stale windows and due reservations; True if a reservation fell due.

        Whether a due reservation's call was recorded only the ledger knows (its process
        may have died after the ledger commit but before the settle), so its hold goes
        without uncounting anything and the current windows go with it, to be reseeded
        from the ledger — as the Redis scripts do.
        """
        for windows, current in ((user.days, w.day), (user.months, w.month)):
            # Usually the one window is the current one: nothing to look through.
            if len(windows) > 1 or (windows and current not in windows):
                for stale in [k for k in windows if k < current]:
                    del windows[stale]
        if user.minute and user.minute[0] <= w.now_ms - MINUTE_MS:
            del user.minute[: bisect.bisect_right(user.minute, w.now_ms - MINUTE_MS)]
        if not user.held:
            return False
        due = [
            rid
            for rid, h in user.held.items()
            if h.expires_ms is not None and h.expires_ms <= w.now_ms
        ]
        for rid in due:
            self._drop(user, rid, w, uncount=False)
        if due:
            user.days.pop(w.day, None)
            user.months.pop(w.month, None)
        return bool(due)

    @staticmethod
    def _drop(user: _User, rid: str, w: Windows, *, uncount: bool) -> bool:
        held = user.held.pop(rid, None)
        if held is None:
            return False
        if uncount:
            for win in (
                user.days.get(w.day) if held.day == w.day else None,
                user.months.get(w.month) if held.month == w.month else None,
            ):
                if win is not None and win.requests > 0:
                    win.requests -= 1
        return True

    @staticmethod
    def _current(user: _User, w: Windows) -> tuple[_Window, _Window]:
        day, month = user.days.get(w.day), user.months.get(w.month)
        if day is None or month is None:
            raise SeedNeeded
        return day, month

    @staticmethod
    def _snapshot(user: _User, day: _Window, month: _Window) -> UsageSnapshot:
        held_tokens = held_cost = 0
        for h in user.held.values():
            held_tokens += h.tokens
            held_cost += h.cost_nanos
        return UsageSnapshot(
            daily_tokens=day.tokens + held_tokens,
            monthly_tokens=month.tokens + held_tokens,
            daily_requests=day.requests,
            monthly_requests=month.requests,
            daily_cost=from_nanos(day.cost_nanos + held_cost),
            monthly_cost=from_nanos(month.cost_nanos + held_cost),
            minute_requests=len(user.minute),
            minute_oldest=from_ms(user.minute[0]) if user.minute else None,
            reserved_tokens=held_tokens,
            reserved_cost=from_nanos(held_cost),
        )

    def _sweep(self, w: Windows, keep: UserKey) -> None:
        """Drop the users with nothing current, and their seed versions (none of them
        has a seed under way)."""
        idle = []
        for key, user in self._users.items():
            if key == keep or user.held or key in self._seeding:
                continue
            self._expire(user, w)
            if w.day not in user.days and not user.minute:
                idle.append(key)
        for key in idle:
            del self._users[key]
            self._versions.pop(key, None)

    # ------------------------------------------------------------ the port

    async def seed_version(self, key: UserKey) -> int:
        self._seeding.add(key)
        return self._versions.setdefault(key, 0)

    async def seed(
        self, key: UserKey, totals: WindowTotals, now: datetime, *, version: int | None = None
    ) -> bool:
        self._seeding.discard(key)  # this attempt is over; a retry marks it again
        if version is not None and self._versions.get(key, 0) != version:
            return False
        w = self._windows.at(now)
        self._seeds += 1
        if self._seeds % self._sweep_every == 0:
            self._sweep(w, keep=key)
        user = self._users.get(key)
        if user is None:
            user = self._users[key] = _User()
        if self._expire(user, w) and version is not None:
            return False  # usage settled since the ledger was read went with the windows
        # A live reservation's request was counted at admission; the ledger has the call
        # only once it is recorded (and its settle then counts no request).
        held_day = sum(h.day == w.day for h in user.held.values())
        held_month = sum(h.month == w.month for h in user.held.values())
        if day_key(totals.day) == w.day and w.day not in user.days:
            user.days[w.day] = _Window(
                totals.daily_requests + held_day, totals.daily_tokens, totals.daily_cost_nanos
            )
        if month_key(totals.day) == w.month and w.month not in user.months:
            user.months[w.month] = _Window(
                totals.monthly_requests + held_month,
                totals.monthly_tokens,
                totals.monthly_cost_nanos,
            )
        return True

    async def snapshot(self, key: UserKey, now: datetime) -> UsageSnapshot:
        w = self._windows.at(now)
        user = self._user(key, w)
        return self._snapshot(user, *self._current(user, w))

    async def admit(
        self,
        key: UserKey,
        limits: Limits,
        *,
        alert_only: bool,
        now: datetime,
        reservation: Reservation | None = None,
    ) -> AdmitResult:
        w = self._windows.at(now)
        user = self._user(key, w)
        day, month = self._current(user, w)
        if reservation is not None and not reservation.id:
            raise ValueError("reservation id must not be empty")
        if reservation is not None and reservation.id in user.held:
            raise ValueError(f"reservation {reservation.id!r} is already held")
        usage = self._snapshot(user, day, month)
        exceeded = exceeded_limits(limits, usage, now)
        decision: Decision
        if exceeded and not alert_only:
            decision = Deny(exceeded[0][0], max(wait for _, wait in exceeded))
            return AdmitResult(decision, usage)
        decision = Allow(alerts=tuple(reason for reason, _ in exceeded))
        day.requests += 1
        month.requests += 1
        bisect.insort(user.minute, w.now_ms)
        if reservation is not None:
            expires = reservation.expires_at
            user.held[reservation.id] = _Held(
                reservation.tokens,
                reservation.cost_nanos,
                None if expires is None else to_ms(expires),
                w.day,
                w.month,
            )
        return AdmitResult(decision, self._snapshot(user, day, month))

    async def settle(
        self,
        key: UserKey,
        *,
        now: datetime,
        at: datetime,
        tokens: int,
        cost_nanos: int,
        reservation_id: str | None = None,
    ) -> bool:
        w = self._windows.at(now)
        user = self._user(key, w)
        settled = reservation_id is not None and self._drop(user, reservation_id, w, uncount=False)
        count = 0 if settled else 1
        at_ms = to_ms(at)
        today, this_month = w.is_today(at_ms), w.is_this_month(at_ms)
        day = user.days.get(w.day) if today else None
        month = user.months.get(w.month) if this_month else None
        if (day is None and today) or (month is None and this_month):
            if key in self._versions:  # a seed may be under way: it is redone
                self._versions[key] += 1
        for win in (day, month):
            if win is not None:
                win.requests += count
                win.tokens += tokens
                win.cost_nanos += cost_nanos
        if count and day is not None and at_ms > w.now_ms - MINUTE_MS:
            bisect.insort(user.minute, at_ms)
        return settled

    async def settle_many(self, items: Sequence[Settlement], *, now: datetime) -> list[bool]:
        return [
            await self.settle(
                item.key,
                now=now,
                at=item.at,
                tokens=item.tokens,
                cost_nanos=item.cost_nanos,
                reservation_id=item.reservation_id,
            )
            for item in items
        ]

    async def release(self, key: UserKey, reservation_id: str, *, now: datetime) -> bool:
        w = self._windows.at(now)
        return self._drop(self._user(key, w), reservation_id, w, uncount=True)

    async def forget(self, key: UserKey) -> None:
        self._users.pop(key, None)
