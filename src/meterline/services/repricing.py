"""Per-project prices and repricing of usage recorded without a price.

An unknown model is recorded unpriced (never as $0), and an invoice holding unpriced
usage cannot be finalized. The way out: set the model's price for the project
(``set_price``), then ``reprice`` — each unpriced, uninvoiced event is quoted again and
charged with its end user's *current* plan pricing (the plan at repricing time; the
event had no charge to keep), and the ledger adapter moves the event's rollup by the
same amounts in the same transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from meterline.domain.entities import EndUser, UserKey
from meterline.domain.money import InvalidMoney, parse_money
from meterline.domain.pricing import compute_charge
from meterline.ports import Accounts, PriceOverride, Prices, RepricedEvent, UsageRepricer
from meterline.services.auth import AuthContext
from meterline.services.body_fields import known_fields
from meterline.services.errors import Invalid
from meterline.services.invoicing import parse_period
from meterline.services.plans import PlanResolver, pricing_for

__all__ = ["RepriceResult", "Repricing"]

_BATCH = 500
_PRICE_FIELDS = ("input_per_mtok", "output_per_mtok", "cached_input_per_mtok")


@dataclass(frozen=True, slots=True)
class RepriceResult:
    repriced: int
    still_unpriced: int


def _price(raw: Mapping[str, object], name: str) -> Decimal | None:
    if raw.get(name) is None:
        return None
    try:
        return parse_money(raw[name], field=name)
    except InvalidMoney as exc:
        raise Invalid(str(exc), param=name) from None


class Repricing:
    def __init__(
        self,
        accounts: Accounts,
        repricer: UsageRepricer,
        prices: Prices,
        plans: PlanResolver,
        invalidate_prices: Callable[[str], None],
    ) -> None:
        self._accounts = accounts
        self._repricer = repricer
        self._prices = prices
        self._plans = plans
        self._invalidate = invalidate_prices

    async def list_prices(self, ctx: AuthContext) -> list[PriceOverride]:
        return await self._accounts.price_overrides(ctx.project_id)

    async def set_price(self, ctx: AuthContext, model: str, raw: object) -> PriceOverride:
        raw = known_fields(raw, {"provider", *_PRICE_FIELDS})
        if not model or len(model) > 200:
            raise Invalid("model must be 1 to 200 characters", param="model")
        provider = raw.get("provider")
        if provider is None:  # absent or null: any provider ({}, 0 or false are refused)
            provider = ""
        if not isinstance(provider, str) or len(provider) > 64:
            raise Invalid("provider must be a string of at most 64 characters", param="provider")
        inp, out = _price(raw, "input_per_mtok"), _price(raw, "output_per_mtok")
        for name, value in (("input_per_mtok", inp), ("output_per_mtok", out)):
            if value is None:
                raise Invalid(f"{name} is required", param=name)
        assert inp is not None and out is not None
        override = PriceOverride(
            model=model,
            provider=provider,
            input_per_mtok=inp,
            output_per_mtok=out,
            cached_input_per_mtok=_price(raw, "cached_input_per_mtok"),
        )
        await self._accounts.set_price_override(ctx.project_id, override)
        self._invalidate(ctx.project_id)
        return override

    async def reprice(self, ctx: AuthContext, raw: object) -> RepriceResult:
        raw = known_fields(raw, {"model", "from", "to"})
        model = raw.get("model")
        if model is not None and (not isinstance(model, str) or not model):
            raise Invalid("model must be a non-empty string", param="model")
        start = end = None
        if raw.get("from") is not None or raw.get("to") is not None:
            start, end = self._range(raw.get("from"), raw.get("to"))
        users: dict[str, EndUser | None] = {}
        repriced, after = 0, ""
        while True:
            batch = await self._repricer.unpriced_events(
                ctx.project_id,
                ctx.environment,
                model=model,
                start=start,
                end=end,
                after_pk=after,
                limit=_BATCH,
            )
            if not batch:
                break
            after = batch[-1].pk
            updates: list[RepricedEvent] = []
            for ev in batch:
                if not ev.model:
                    continue
                quote = await self._prices.quote(
                    ctx.project_id,
                    provider=ev.provider,
                    model=ev.model,
                    prompt_tokens=ev.prompt_tokens,
                    completion_tokens=ev.completion_tokens,
                    cached_tokens=ev.cached_tokens,
                    at=ev.timestamp,
                )
                if not quote.priced or quote.provider_cost is None:
                    continue
                user = await self._user(ctx, ev.end_user_id, users)
                plan = await self._plans.plan_for(user, ctx.project_id)
                charge = compute_charge(quote.provider_cost, pricing_for(ctx.project, plan))
                updates.append(
                    RepricedEvent(
                        ev.pk, charge.provider_cost, charge.markup, charge.charge, charge.flat_fee
                    )
                )
            if updates:
                repriced += await self._repricer.reprice_events(
                    ctx.project_id, ctx.environment, updates
                )
        still = await self._repricer.count_unpriced(
            ctx.project_id, ctx.environment, model=model, start=start, end=end
        )
        return RepriceResult(repriced=repriced, still_unpriced=still)

    @staticmethod
    def _range(start: object, end: object) -> tuple[date, date]:
        if start is None or end is None:
            raise Invalid("give both 'from' and 'to', or neither", param="from")
        try:
            return parse_period(start, end)
        except Invalid as exc:
            param = "from" if exc.param == "period_start" else "to"
            raise Invalid(f"'from'/'to': {exc.message}", param=param) from None

    async def _user(
        self, ctx: AuthContext, end_user_id: str | None, seen: dict[str, EndUser | None]
    ) -> EndUser | None:
        if end_user_id is None:
            return None
        if end_user_id not in seen:
            key = UserKey(ctx.project_id, ctx.environment, end_user_id)
            seen[end_user_id] = await self._accounts.get_end_user(key)
        return seen[end_user_id]
