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
from meterline.adapters.secrets import FernetBox
from meterline.adapters.upstreams import KNOWN_PROVIDERS, Upstreams, make_http_client
from meterline.config import Settings
from meterline.ports import Clock, Counters
from meterline.services.admission import Admission
from meterline.services.alerts import AlertRecorder
from meterline.services.auth import Authenticator
from meterline.services.gateway import Gateway
from meterline.services.management import Management
from meterline.services.metering import Metering
from meterline.services.plans import PlanResolver
from meterline.services.providers import ProviderCredentials
from meterline.services.routing import ProviderConfig, Router

__all__ = ["Container", "build_container", "provider_configs"]


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
    gateway: Gateway
    credentials: ProviderCredentials
    http: Any = None
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
        await self.gateway.drain()
        if self.http is not None:
            await self.http.aclose()
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
    metering = Metering(ledger, prices, admission, plans, alerts)
    credentials = ProviderCredentials(
        accounts,
        FernetBox(settings.resolved_secret_key()),
        KNOWN_PROVIDERS.keys(),
        cache_ttl_seconds=ttl,
    )
    http = make_http_client()
    upstreams = Upstreams(http)
    gateway = Gateway(
        admission,
        metering,
        Router(provider_configs(settings), prices, project_credentials=credentials.for_project),
        upstreams.for_target,
        clock,
        drain_timeout=settings.stream_drain_timeout_seconds,
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
        metering=metering,
        management=Management(accounts, ledger, plans, auth),
        gateway=gateway,
        credentials=credentials,
        http=http,
        redis=redis,
    )


def provider_configs(settings: Settings) -> dict[str, ProviderConfig]:
    """Every known provider with its default endpoint; keys and the three main base URLs
    come from settings, other providers' keys from their usual environment variables
    (read here, once, at start)."""
    import os

    overrides = {
        "openai": (settings.openai_base_url, settings.openai_api_key),
        "anthropic": (settings.anthropic_base_url, settings.anthropic_api_key),
        "gemini": (settings.gemini_base_url, settings.gemini_api_key),
    }
    configs: dict[str, ProviderConfig] = {}
    for name, known in KNOWN_PROVIDERS.items():
        base_url, key = overrides.get(name, (known.base_url, None))
        if key is None and known.api_key_env:
            key = os.environ.get(known.api_key_env)
        configs[name] = ProviderConfig(name, known.protocol, base_url, key)
    return configs
