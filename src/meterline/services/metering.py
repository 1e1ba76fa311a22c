"""Metering: price usage, write it to the ledger idempotently, then settle the counters.

Order matters: the ledger row (with its rollup) commits first, so the ledger is the
truth; counters follow and, if they fail, are dropped and reseeded from the ledger.
"""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from meterline.domain.entities import EndUser, UsageEvent, UserKey
from meterline.domain.money import to_nanos
from meterline.domain.pricing import Pricing, compute_charge
from meterline.ports import (
    Metrics,
    NoMetrics,
    Prices,
    RecordOutcome,
    RecordStatus,
    Settlement,
)
from meterline.services.admission import Admission
from meterline.services.alerts import AlertRecorder
from meterline.services.auth import AuthContext
from meterline.services.end_users import EndUserDirectory
from meterline.services.errors import ServiceError
from meterline.services.group_commit import EventWriter
from meterline.services.plans import PlanResolver, pricing_for
from meterline.services.usage_input import EventInput

__all__ = ["EventResult", "Metering"]


@dataclass(frozen=True, slots=True)
class EventResult:
    index: int
    event_id: str | None
    status: str  # recorded | duplicate | failed
    priced: bool | None = None
    provider_cost: Decimal | None = None
    markup: Decimal | None = None
    charge: Decimal | None = None
    error: str | None = None
    #: Why it failed: "invalid" (bad payload) or "conflict" (id reused with another payload).
    error_code: str | None = None


class Metering:
    def __init__(
        self,
        ledger: EventWriter,
        prices: Prices,
        admission: Admission,
        plans: PlanResolver,
        alerts: AlertRecorder,
        *,
        users: EndUserDirectory,
        metrics: Metrics | None = None,
    ) -> None:
        self._metrics: Metrics = metrics or NoMetrics()
        #: The directory admission resolves users through: batches load theirs in bulk.
        self._users = users
        self._ledger = ledger
        self._prices = prices
        self._admission = admission
        self._plans = plans
        self._alerts = alerts

    async def record(
        self, ctx: AuthContext, items: Sequence[EventInput | ServiceError], *, now: datetime
    ) -> list[EventResult]:
        results: dict[int, EventResult] = {}
        events: list[tuple[int, UsageEvent]] = []
        # The batch's distinct users in one directory call (a few statements for those
        # not cached), with the semantics of resolving them one by one.
        keys = {
            item.end_user_id: UserKey(ctx.project_id, ctx.environment, item.end_user_id)
            for item in items
            if not isinstance(item, ServiceError)
        }
        users = await self._users.get_or_create_many(keys.values())
        #: Markup and fee by plan: a batch names few plans and many users.
        pricings: dict[str | None, Pricing] = {}
        for index, item in enumerate(items):
            if isinstance(item, ServiceError):
                results[index] = EventResult(
                    index, None, "failed", error=item.message, error_code="invalid"
                )
                continue
            user = users[keys[item.end_user_id]]
            plan_id = user.rate_plan_id if user else None
            pricing = pricings.get(plan_id)
            if pricing is None:
                pricing = pricings[plan_id] = await self._pricing(ctx, user)
            events.append(
                (
                    index,
                    await self.price_event(
                        ctx,
                        user,
                        event_id=item.event_id or "evt_" + secrets.token_hex(16),
                        at=item.timestamp or now,
                        model=item.model,
                        provider=item.provider,
                        prompt_tokens=item.prompt_tokens,
                        completion_tokens=item.completion_tokens,
                        total_tokens=item.total_tokens,
                        cost=item.cost_usd,
                        latency_ms=item.latency_ms,
                        status=item.status,
                        metadata=item.metadata,
                        reservation_id=item.reservation_id,
                        fingerprint=item.fingerprint(),
                        source="api",
                        now=now,
                        pricing=pricing,
                    ),
                )
            )

        outcomes = await self._write([event for _, event in events])
        settlements: list[Settlement] = []
        resynced: set[UserKey] = set()
        for (index, sent), outcome in zip(events, outcomes, strict=True):
            stored = outcome.event
            if outcome.status is RecordStatus.CONFLICT:
                results[index] = EventResult(
                    index,
                    sent.event_id,
                    "failed",
                    error=f"event_id {sent.event_id!r} was already used for a different event",
                    error_code="conflict",
                )
                continue
            if outcome.status is RecordStatus.RECORDED:
                if (
                    settlement := _settlement(stored, keys.get(stored.end_user_id or ""))
                ) is not None:
                    settlements.append(settlement)
                if not stored.priced:
                    await self._alert_if_unpriced(stored, now)
            elif stored.end_user_id is not None:  # a retry: its first try may not have settled
                key = UserKey(stored.project_id, stored.environment, stored.end_user_id)
                if key not in resynced:  # once per user and batch: it drops the counters
                    resynced.add(key)
                    await self._admission.resync(key)
            results[index] = EventResult(
                index,
                stored.event_id,
                "recorded" if outcome.status is RecordStatus.RECORDED else "duplicate",
                priced=stored.priced,
                provider_cost=stored.provider_cost,
                markup=stored.markup,
                charge=stored.charge,
            )
        await self._admission.settle_many(settlements)  # one counters round trip
        return [results[i] for i in range(len(items))]

    async def _pricing(self, ctx: AuthContext, user: EndUser | None) -> Pricing:
        """The markup and fee that apply to ``user``'s usage (their plan's, else the
        project's defaults)."""
        return pricing_for(ctx.project, await self._plans.plan_for(user, ctx.project_id))

    async def price_event(
        self,
        ctx: AuthContext,
        user: EndUser | None,
        *,
        event_id: str,
        at: datetime,
        model: str | None,
        provider: str | None,
        prompt_tokens: int,
        completion_tokens: int,
        total_tokens: int,
        now: datetime,
        cost: Decimal | None = None,
        cached_tokens: int = 0,
        estimated: bool = False,
        latency_ms: int | None = None,
        status: str = "success",
        metadata: dict[str, Any] | None = None,
        reservation_id: str | None = None,
        fingerprint: str = "",
        source: str = "api",
        pricing: Pricing | None = None,
    ) -> UsageEvent:
        """Price one call (the given cost, else the price table) and apply the plan's
        markup: the ledger row to write. Unknown models stay unpriced, never $0."""
        if cost is None and model:
            quote = await self._prices.quote(
                ctx.project_id,
                provider=provider,
                model=model,
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                cached_tokens=cached_tokens,
                at=at,
            )
            cost = quote.provider_cost if quote.priced else None
            provider = provider or quote.provider
        charge = None
        if cost is not None:
            if pricing is None:
                pricing = await self._pricing(ctx, user)
            charge = compute_charge(cost, pricing)
        return UsageEvent(
            project_id=ctx.project_id,
            environment=ctx.environment,
            event_id=event_id,
            end_user_id=user.end_user_id if user else None,
            timestamp=at,
            model=model,
            provider=provider,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            total_tokens=total_tokens,
            cached_tokens=cached_tokens,
            priced=charge is not None,
            estimated=estimated,
            provider_cost=charge.provider_cost if charge else None,
            markup=charge.markup if charge else None,
            charge=charge.charge if charge else None,
            flat_fee=charge.flat_fee if charge else None,
            latency_ms=latency_ms,
            status=status,
            metadata=metadata or {},
            reservation_id=reservation_id,
            fingerprint=fingerprint,
            source=source,
            recorded_at=now,
        )

    async def record_priced(self, event: UsageEvent, now: datetime) -> UsageEvent:
        """Write one priced event (the gateway's path) and settle its counters."""
        (outcome,) = await self._write([event])
        if outcome.status is RecordStatus.RECORDED:
            await self._after_recorded(outcome.event, now)
        return outcome.event

    async def _write(self, events: list[UsageEvent]) -> list[RecordOutcome]:
        """The ledger write, counted by outcome (a failure is counted, then re-raised:
        the caller must not acknowledge usage that is not durable)."""
        if not events:
            return []
        try:
            outcomes = await self._ledger.record_events(events)
        except Exception:
            self._metrics.ledger_write("error", len(events))
            raise
        # One metrics call per outcome kind, not per event (a batch has a thousand).
        for status, count in Counter(outcome.status for outcome in outcomes).items():
            self._metrics.ledger_write(status.value, count)
        return list(outcomes)

    async def _after_recorded(self, event: UsageEvent, now: datetime) -> None:
        if (settlement := _settlement(event)) is not None:
            await self._admission.settle(settlement)
        await self._alert_if_unpriced(event, now)

    async def _alert_if_unpriced(self, event: UsageEvent, now: datetime) -> None:
        if not event.priced:
            await self._alerts.unpriced(
                event.project_id, event.environment, event.model or "(none)", event.provider, now
            )


def _settlement(event: UsageEvent, key: UserKey | None = None) -> Settlement | None:
    """What the counters must add for a recorded event (none without an end user);
    ``key``, when the caller has it, is the event's user key."""
    if event.end_user_id is None:
        return None
    return Settlement(
        key or UserKey(event.project_id, event.environment, event.end_user_id),
        at=event.timestamp,
        tokens=event.total_tokens,
        cost_nanos=to_nanos(event.provider_cost) if event.provider_cost else 0,
        reservation_id=event.reservation_id,
    )
