"""Admission: may this end user make this call now? Used by check-quota and the gateway.

The decision that counts is taken inside the counters in one atomic step
(``Counters.admit``); blocked users and the model allow-list are settled before that,
since they need no counting. Missing counters are seeded from the ledger first, so a
restart or a flushed Redis never hands anyone fresh quota.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from meterline.domain.entities import EndUser, UserKey
from meterline.domain.limits import Allow, Decision, Deny, DenyReason, UsageSnapshot, evaluate
from meterline.domain.plans import Limits, OverageAction, RatePlan
from meterline.domain.pricing import Pricing
from meterline.ports import (
    Clock,
    Counters,
    CountersUnavailable,
    Ledger,
    Metrics,
    NoMetrics,
    Reservation,
    SeedNeeded,
    Settlement,
)
from meterline.services.alerts import AlertRecorder
from meterline.services.auth import AuthContext
from meterline.services.end_users import EndUserDirectory
from meterline.services.errors import ServiceError
from meterline.services.plans import PlanResolver, pricing_for

__all__ = ["Admission", "CountersDown", "QuotaCheck"]

T = TypeVar("T")
#: Seeds refused because usage settled meanwhile, before seeding unconditionally.
SEED_ATTEMPTS = 5


class CountersDown(ServiceError):
    status = 503
    type = "service_unavailable"
    code = "counters_unavailable"


@dataclass(frozen=True, slots=True)
class QuotaCheck:
    end_user: EndUser
    is_new_user: bool
    plan: RatePlan
    pricing: Pricing
    decision: Decision
    usage: UsageSnapshot
    reservation_id: str | None = None
    #: True when the counter backend was down and the failure mode is "open".
    degraded: bool = False

    @property
    def alerts(self) -> tuple[DenyReason, ...]:
        return self.decision.alerts if isinstance(self.decision, Allow) else ()


class Admission:
    def __init__(
        self,
        users: EndUserDirectory,
        ledger: Ledger,
        counters: Counters,
        clock: Clock,
        plans: PlanResolver,
        alerts: AlertRecorder,
        *,
        reservation_ttl_seconds: int = 600,
        fail_open: bool = False,
        metrics: Metrics | None = None,
    ) -> None:
        self._users = users
        self._ledger = ledger
        self._counters = counters
        self._clock = clock
        self._plans = plans
        self._alerts = alerts
        self._reservation_ttl = timedelta(seconds=reservation_ttl_seconds)
        self._fail_open = fail_open
        self._metrics: Metrics = metrics or NoMetrics()
        #: Users whose recorded usage could not reach the counters (Redis down): their
        #: counters, if Redis kept them, are behind the ledger and must be rebuilt.
        self._stale: set[UserKey] = set()

    async def end_user(self, ctx: AuthContext, end_user_id: str) -> tuple[EndUser, bool]:
        return await self._users.get_or_create(
            UserKey(ctx.project_id, ctx.environment, end_user_id)
        )

    async def check(
        self,
        ctx: AuthContext,
        end_user_id: str,
        *,
        model: str | None = None,
        reserve: bool = False,
        estimated_tokens: int = 0,
        estimated_cost_nanos: int = 0,
    ) -> QuotaCheck:
        """Decide; with ``reserve`` also count the request and hold a reservation."""
        user, created = await self.end_user(ctx, end_user_id)
        plan = await self._plans.plan_for(user, ctx.project_id)
        pricing = pricing_for(ctx.project, plan)
        now = self._clock.now()
        enforce = ctx.project.billing_enabled
        gate = evaluate(
            plan, UsageSnapshot(), model=model, now=now, blocked=user.blocked, enforce=enforce
        )
        key = user.key

        async def build(decision: Decision, usage: UsageSnapshot, **kw: object) -> QuotaCheck:
            if isinstance(decision, Allow) and decision.alerts:
                await self._alerts.overage(key, decision.alerts, now)
            reason = decision.reason.value if isinstance(decision, Deny) else "none"
            self._metrics.admission("allowed" if decision.allowed else "denied", reason)
            return QuotaCheck(user, created, plan, pricing, decision, usage, **kw)  # type: ignore[arg-type]

        try:
            if isinstance(gate, Deny):  # blocked or model: nothing to count
                return await build(gate, await self.snapshot(key, now))
            limits = plan.limits if enforce else Limits()
            alert_only = plan.overage_action is OverageAction.ALERT_ONLY
            if not reserve:
                usage = await self.snapshot(key, now)
                decision = evaluate(plan, usage, model=model, now=now, enforce=enforce)
                return await build(decision, usage)
            reservation = Reservation(
                id="res_" + secrets.token_hex(12),
                tokens=max(0, estimated_tokens),
                cost_nanos=max(0, estimated_cost_nanos),
                expires_at=now + self._reservation_ttl,
            )
            result = await self._seeded(
                key,
                now,
                lambda: self._counters.admit(
                    key, limits, alert_only=alert_only, now=now, reservation=reservation
                ),
            )
            held = reservation.id if isinstance(result.decision, Allow) else None
            return await build(result.decision, result.usage, reservation_id=held)
        except CountersUnavailable:
            self._metrics.counter_error("admit" if reserve else "snapshot")
            if not self._fail_open:
                self._metrics.admission("unavailable", "counters_unavailable")
                raise CountersDown(
                    "Quota counters are unavailable; refusing to admit unmetered traffic."
                ) from None
            self._metrics.admission("degraded", "counters_unavailable")
            return QuotaCheck(user, created, plan, pricing, gate, UsageSnapshot(), degraded=True)

    async def snapshot(self, key: UserKey, now: datetime | None = None) -> UsageSnapshot:
        at = now or self._clock.now()
        return await self._seeded(key, at, lambda: self._counters.snapshot(key, at))

    async def settle(self, item: Settlement) -> None:
        """Apply a recorded call's usage to the counters. The ledger row is already
        durable, so on any counter failure the user's counters are dropped and reseeded
        from it."""
        try:
            await self._counters.settle(
                item.key,
                now=self._clock.now(),
                at=item.at,
                tokens=item.tokens,
                cost_nanos=item.cost_nanos,
                reservation_id=item.reservation_id,
            )
        except CountersUnavailable:
            self._metrics.counter_error("settle")
            await self._forget([item.key])

    async def settle_many(self, items: Sequence[Settlement]) -> None:
        """:meth:`settle` for a batch of recorded events, in one counters call. On a
        counter failure every user of the batch is dropped and reseeded (any prefix of
        the batch may have been applied)."""
        if not items:
            return
        try:
            await self._counters.settle_many(items, now=self._clock.now())
        except CountersUnavailable:
            self._metrics.counter_error("settle")
            await self._forget(list(dict.fromkeys(item.key for item in items)))

    async def resync(self, key: UserKey) -> None:
        """Rebuild the user's counters from the ledger on next use. For a replayed event:
        its first attempt may have committed and then died before settling the counters
        (a crashed process), and the replay itself settles nothing."""
        await self._forget([key])

    async def _forget(self, keys: Sequence[UserKey]) -> None:
        """Drop these users' counters, so they are reseeded from the ledger. While Redis
        is unreachable they are remembered instead (see :meth:`repair_stale`), without
        waiting on each of the rest once one attempt failed."""
        for i, key in enumerate(keys):
            try:
                await self._counters.forget(key)
            except CountersUnavailable:
                self._stale.update(keys[i:])
                return

    async def repair_stale(self) -> int:
        """Drop now the counters of every user whose usage was recorded while Redis was
        unreachable, rather than when this process next sees them: another replica may
        see them first, and it does not know they are stale. Run periodically (see
        :meth:`repair_stale_forever`); returns how many were repaired."""
        repaired = 0
        for key in list(self._stale):
            try:
                await self._counters.forget(key)
            except CountersUnavailable:
                break  # still down: the next round tries again
            self._stale.discard(key)
            repaired += 1
        return repaired

    async def repair_stale_forever(self, interval_seconds: float) -> None:
        while True:
            await asyncio.sleep(interval_seconds)
            if self._stale:
                await self.repair_stale()

    async def release(self, key: UserKey, reservation_id: str) -> None:
        try:
            await self._counters.release(key, reservation_id, now=self._clock.now())
        except CountersUnavailable:
            self._metrics.counter_error("release")  # the reservation expires by itself

    async def _seeded(self, key: UserKey, now: datetime, op: Callable[[], Awaitable[T]]) -> T:
        if key in self._stale:
            await self._counters.forget(key)  # raises CountersUnavailable while still down
            self._stale.discard(key)
        for _ in range(SEED_ATTEMPTS):
            try:
                return await op()
            except SeedNeeded:
                # Absent windows (a cold user, a flush), or dropped because a reservation
                # fell due: another may fall due between our seed and the retry.
                await self._seed(key, now)
        return await op()

    async def _seed(self, key: UserKey, now: datetime) -> None:
        """Seed from the ledger. A settle that found the windows absent while we read may
        have committed an event our read missed; the version tells, and we read again
        (a few times, then write what we have rather than fail the call)."""
        for _ in range(SEED_ATTEMPTS):
            version = await self._counters.seed_version(key)
            totals = await self._ledger.window_totals(key, now.date())
            if await self._counters.seed(key, totals, now, version=version):
                return
        await self._counters.seed(key, await self._ledger.window_totals(key, now.date()), now)
