"""Composition root: settings → adapters → services. Nothing here runs at import time."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from meterline.adapters.clock import SystemClock
from meterline.adapters.counters import MemoryCounters, RedisCounters
from meterline.adapters.db import SqlAccounts, SqlLedger, create_engine, migrate
from meterline.adapters.prices import GenaiPrices
from meterline.config import Settings
from meterline.ports import Clock, Counters
from meterline.services.admission import Admission
from meterline.services.alerts import AlertRecorder
from meterline.services.auth import Authenticator
from meterline.services.management import Management
from meterline.services.metering import Metering
from meterline.services.plans import PlanResolver

__all__ = ["Container", "build_container"]


@dataclass
class Container:
    settings: Settings
    engine: AsyncEngine
    accounts: SqlAccounts
    ledger: SqlLedger
    counters: Counters
    prices: GenaiPrices
    clock: Clock
    auth: Authenticator
    plans: PlanResolver
    alerts: AlertRecorder
    admission: Admission
    metering: Metering
    management: Management
    redis: Any = None

    async def health(self) -> dict[str, str]:
        """Each backing service: "ok" or the error's type (never its text: no secrets)."""
        checks: dict[str, str] = {}
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as exc:  # any failure means "not ready"
            checks["database"] = f"error: {type(exc).__name__}"
        if self.redis is not None:
            try:
                await self.redis.ping()
                checks["redis"] = "ok"
            except Exception as exc:
                checks["redis"] = f"error: {type(exc).__name__}"
        return checks

    async def close(self) -> None:
        if self.redis is not None:
            await self.redis.aclose()
        await self.engine.dispose()


async def build_container(
    settings: Settings, *, clock: Clock | None = None, run_migrations: bool = True
) -> Container:
    url = settings.resolved_database_url()
    if run_migrations:
        await migrate(url)
    engine = create_engine(url)
    accounts = SqlAccounts(engine)
    ledger = SqlLedger(engine)
    redis = None
    counters: Counters
    if settings.redis_url:
        import redis.asyncio as aioredis

        redis = aioredis.from_url(settings.redis_url, max_connections=256)
        counters = RedisCounters(redis)
    else:
        counters = MemoryCounters()
    clock = clock or SystemClock()
    ttl = settings.cache_ttl_seconds
    auth = Authenticator(accounts, cache_ttl_seconds=ttl)
    plans = PlanResolver(accounts, cache_ttl_seconds=ttl)
    alerts = AlertRecorder(accounts)
    prices = GenaiPrices(accounts, cache_ttl_seconds=max(ttl, 1.0))
    admission = Admission(
        accounts,
        ledger,
        counters,
        clock,
        plans,
        alerts,
        reservation_ttl_seconds=settings.reservation_ttl_seconds,
        fail_open=settings.counters_failure == "open",
    )
    return Container(
        settings=settings,
        engine=engine,
        accounts=accounts,
        ledger=ledger,
        counters=counters,
        prices=prices,
        clock=clock,
        auth=auth,
        plans=plans,
        alerts=alerts,
        admission=admission,
        metering=Metering(ledger, prices, admission, plans, alerts),
        management=Management(accounts, ledger, plans, auth),
        redis=redis,
    )
