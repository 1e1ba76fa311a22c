"""``SqlRepricer``: price events that were recorded without a price, after the fact.

This is the ledger's single, narrow exception to append-only: an event's money columns
may go from NULL to a value once (``WHERE charge_nanos IS NULL`` makes a second pricing a
no-op), and never for an event already on a finalized invoice. The daily rollup of the
event moves by exactly the same nano-dollars in the same transaction (and loses one
unpriced request), so rollups keep equalling the sum of their events and revenue reports
agree with invoices. It lives beside ``ledger.py`` rather than in it to keep each module
small; it is part of the ledger adapter all the same.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

from sqlalchemy import and_, func, select, update

from meterline.adapters.db import tables as t
from meterline.adapters.db._base import SqlStore
from meterline.adapters.db.coarse_rollups import CoarseRollups
from meterline.adapters.db.engine import reading, writing
from meterline.adapters.db.invoice_usage import day_start, env_value, not_linked
from meterline.adapters.db.rollups import ROLLUP_KEY, ROLLUP_SUMS, RollupKey, fold_delta
from meterline.domain.entities import Environment
from meterline.domain.money import to_nanos
from meterline.domain.windows import as_utc
from meterline.ports import RepricedEvent, UnpricedEvent

__all__ = ["SqlRepricer"]

_e = t.usage_events.c
_r = t.usage_daily_rollups.c


def _where(
    project_id: str,
    environment: Environment,
    model: str | None,
    start: date | None,
    end: date | None,
) -> Any:
    cond = and_(
        _e.project_id == project_id,
        _e.environment == env_value(environment),
        _e.charge_nanos.is_(None),
        not_linked(),
    )
    if model is not None:
        cond &= _e.model == model
    if start is not None:
        cond &= _e.timestamp >= day_start(start)
    if end is not None:
        cond &= _e.timestamp < day_start(end + timedelta(days=1))
    return cond


def add_money(deltas: dict[RollupKey, list[int]], key: RollupKey, money: dict[str, int]) -> None:
    """Fold one repriced event into rollup deltas (``ROLLUP_SUMS`` order): money added,
    one unpriced request fewer, requests and tokens unchanged."""
    delta = [money.get(name, 0) for name in ROLLUP_SUMS]
    delta[ROLLUP_SUMS.index("unpriced_requests")] = -1
    fold_delta(deltas, key, delta)


class SqlRepricer(SqlStore):
    @functools.cached_property
    def _coarse(self) -> CoarseRollups:
        return CoarseRollups(self)

    """Implements :class:`meterline.ports.UsageRepricer`."""

    async def unpriced_events(
        self,
        project_id: str,
        environment: Environment,
        *,
        model: str | None = None,
        start: date | None = None,
        end: date | None = None,
        after_pk: str = "",
        limit: int = 500,
    ) -> list[UnpricedEvent]:
        query = (
            select(
                _e.id,
                _e.end_user_id,
                _e.timestamp,
                _e.provider,
                _e.model,
                _e.prompt_tokens,
                _e.completion_tokens,
                _e.cached_tokens,
            )
            .where(_where(project_id, environment, model, start, end), _e.id > after_pk)
            .order_by(_e.id)
            .limit(limit)
        )
        async with reading(self._engine) as conn:
            rows = (await conn.execute(query)).all()
        return [
            UnpricedEvent(
                pk=r.id,
                end_user_id=r.end_user_id,
                timestamp=r.timestamp,
                provider=r.provider,
                model=r.model,
                prompt_tokens=int(r.prompt_tokens),
                completion_tokens=int(r.completion_tokens),
                cached_tokens=int(r.cached_tokens),
            )
            for r in rows
        ]

    async def count_unpriced(
        self,
        project_id: str,
        environment: Environment,
        *,
        model: str | None = None,
        start: date | None = None,
        end: date | None = None,
    ) -> int:
        query = select(func.count()).where(_where(project_id, environment, model, start, end))
        async with reading(self._engine) as conn:
            return int((await conn.execute(query)).scalar_one())

    async def reprice_events(
        self, project_id: str, environment: Environment, updates: Sequence[RepricedEvent]
    ) -> int:
        env = env_value(environment)
        changed = 0
        coarse: dict[RollupKey, list[int]] = {}
        async with writing(self._engine) as conn:
            for item in sorted(updates, key=lambda u: u.pk):  # one lock order
                money = {
                    "provider_cost_nanos": to_nanos(item.provider_cost),
                    "markup_nanos": to_nanos(item.markup),
                    "charge_nanos": to_nanos(item.charge),
                }
                stmt = (
                    update(t.usage_events)
                    .where(
                        _e.id == item.pk,
                        _e.project_id == project_id,
                        _e.environment == env,
                        _e.charge_nanos.is_(None),
                        not_linked(),
                    )
                    .values(priced=True, flat_fee_nanos=to_nanos(item.flat_fee), **money)
                    .returning(_e.end_user_id, _e.model, _e.provider, _e.timestamp)
                )
                row = (await conn.execute(stmt)).first()
                if row is None:
                    continue  # priced meanwhile, invoiced, or not this project's
                changed += 1
                key = (
                    project_id,
                    env,
                    row.end_user_id or "",
                    row.model or "",
                    row.provider or "",
                    as_utc(row.timestamp).date(),
                )
                where = and_(
                    *(_r[name] == value for name, value in zip(ROLLUP_KEY, key, strict=True))
                )
                await conn.execute(
                    update(t.usage_daily_rollups)
                    .where(where)
                    .values(
                        provider_cost_nanos=_r.provider_cost_nanos + money["provider_cost_nanos"],
                        markup_nanos=_r.markup_nanos + money["markup_nanos"],
                        charge_nanos=_r.charge_nanos + money["charge_nanos"],
                        unpriced_requests=_r.unpriced_requests - 1,
                    )
                )
                add_money(coarse, key, money)
            # The per-user and per-project rows move with their fine rows, summed and
            # written last, in key order, like a ledger write.
            await self._coarse.add(conn, coarse)
        return changed
