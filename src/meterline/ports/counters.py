"""Ports: counters."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from meterline.domain.entities import UserKey
from meterline.domain.limits import Decision, UsageSnapshot
from meterline.domain.plans import Limits
from meterline.ports.ledger import WindowTotals

__all__ = ["AdmitResult", "Counters", "Reservation", "Settlement"]


@dataclass(frozen=True, slots=True)
class Reservation:
    """Held against a user's limits between admission and settlement."""

    id: str
    tokens: int = 0
    cost_nanos: int = 0
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Settlement:
    """One recorded call's usage, for :meth:`Counters.settle_many`."""

    key: UserKey
    at: datetime
    tokens: int
    cost_nanos: int
    reservation_id: str | None = None


@dataclass(frozen=True, slots=True)
class AdmitResult:
    decision: Decision
    #: Usage after the decision (including this request when admitted).
    usage: UsageSnapshot


class Counters(Protocol):
    """Per end user window counters with atomic check-and-increment.

    ``snapshot`` and ``admit`` raise :class:`SeedNeeded` when the user's current day or
    month counters are absent; the caller seeds them from :meth:`Ledger.window_totals`
    and retries. ``settle`` and ``release`` never raise it: when the windows are absent
    they apply nothing to them (the ledger, written first, already holds the event and
    the next seed reads it) but still drop the reservation, and bump the user's
    :meth:`seed_version` so that a seed racing with them is redone.

    Counters track only the current UTC day and month: usage settled with ``at`` in an
    earlier window changes the ledger alone. Keys expire after their window; one user's
    keys share a Redis Cluster hash tag.

    A reservation that expires unsettled is noticed lazily, on any call for that user:
    its tokens and cost are unheld and the user's current windows are dropped (the call
    then raises :class:`SeedNeeded`), because whether its call was recorded only the
    ledger knows — a process that died between the ledger commit and the settle leaves a
    row, one that died before leaves none. A seed counts one request for each live
    reservation admitted in the window it writes: admission counted it, and the ledger
    has it only once it is recorded (its settle then counts no request).
    """

    async def seed(
        self, key: UserKey, totals: WindowTotals, now: datetime, *, version: int | None = None
    ) -> bool:
        """Set the current windows from the ledger, only where they are still absent.

        With ``version`` (read by :meth:`seed_version` before the ledger was read) nothing
        is written, and False returned, if a settle found the windows absent meanwhile
        (that event may be missing from ``totals``) or a reservation fell due now (the
        windows it drops may hold usage settled since): the caller reads the ledger
        again."""
        ...

    async def seed_version(self, key: UserKey) -> int:
        """Mark a seed as under way and return its version: from now until the seed, a
        settle that finds the user's windows absent bumps it."""
        ...

    async def snapshot(self, key: UserKey, now: datetime) -> UsageSnapshot: ...
    async def admit(
        self,
        key: UserKey,
        limits: Limits,
        *,
        alert_only: bool,
        now: datetime,
        reservation: Reservation | None = None,
    ) -> AdmitResult:
        """Evaluate ``limits`` and, if admitted (or alert-only), count one request in the
        day, month and minute windows and hold ``reservation`` — all in one atomic step."""
        ...

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
        """Add actual usage at time ``at``. With a live ``reservation_id`` the reservation is
        released and its request was already counted; otherwise one request is counted.
        Returns whether a reservation was settled."""
        ...

    async def settle_many(self, items: Sequence[Settlement], *, now: datetime) -> list[bool]:
        """:meth:`settle` for each item, in order (a batch of usage events): one round
        trip on Redis. If it raises :class:`CountersUnavailable`, any prefix of the
        items may have been applied."""
        ...

    async def release(self, key: UserKey, reservation_id: str, *, now: datetime) -> bool:
        """Drop a reservation and uncount its request (the call failed, nothing billed)."""
        ...

    async def forget(self, key: UserKey) -> None:
        """Drop the user's counters so the next call reseeds from the ledger."""
        ...
