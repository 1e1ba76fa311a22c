"""Composition root: settings → adapters → services. Nothing here runs at import time."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from meterline.adapters.clock import SystemClock
from meterline.adapters.counters import MemoryCounters, RedisCounters
from meterline.adapters.db import (
    SqlAccounts,
    SqlInvoices,
    SqlLedger,
    SqlRepricer,
    create_engine,
    migrate,
)
from meterline.adapters.db.dashboard_queries import SqlDashboardQueries
from meterline.adapters.db.stripe import SqlStripeStore
from meterline.adapters.invalidation import RedisInvalidations
from meterline.adapters.metrics import PrometheusMetrics
from meterline.adapters.prices import GenaiPrices
from meterline.adapters.secrets import FernetBox
from meterline.adapters.stripe import StripePayments
from meterline.adapters.upstreams import KNOWN_PROVIDERS, Upstreams, make_http_client
from meterline.config import Settings
from meterline.ports import Clock, Counters
from meterline.services.admin_auth import AdminAuth
from meterline.services.admission import Admission
from meterline.services.alerts import AlertRecorder
from meterline.services.auth import Authenticator
from meterline.services.dashboard import Dashboard
from meterline.services.end_users import EndUserDirectory
from meterline.services.gateway import Gateway
from meterline.services.group_commit import GroupCommit
from meterline.services.invoicing import Invoicing
from meterline.services.management import Management
from meterline.services.metering import Metering
from meterline.services.plans import PlanResolver
from meterline.services.providers import ProviderCredentials
from meterline.services.repricing import Repricing
from meterline.services.routing import ProviderConfig, Router
from meterline.services.stripe_sync import StripeOptions, StripeSync

__all__ = ["Container", "build_container", "provider_configs"]

#: Seconds /readyz waits for each backing service.
HEALTH_TIMEOUT = 2.0
#: How soon after Redis returns the counters that missed usage during an outage are dropped.
STALE_REPAIR_INTERVAL_SECONDS = 1.0


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
    invoices: SqlInvoices
    invoicing: Invoicing
    repricing: Repricing
    http: Any = None
    redis: Any = None
    invalidations: RedisInvalidations | None = None
    #: Rebuilds, once Redis answers again, the counters that missed usage during an outage.
    stale_repair: asyncio.Task[None] | None = None
    metrics: PrometheusMetrics | None = None
    #: Present only when a Stripe platform key is configured.
    stripe_sync: StripeSync | None = None
    stripe_payments: StripePayments | None = None

    def backend_unavailable(self, exc: BaseException) -> bool:
        """Does ``exc`` mean the database cannot be reached (→ 503), not a bug (→ 500)?"""
        return _unreachable(exc)

    @cached_property
    def admin_auth(self) -> AdminAuth:
        """Dashboard sign-in; one per container, so its attempt limiter is shared."""
        return AdminAuth(self.accounts)

    @cached_property
    def dashboard(self) -> Dashboard:
        return Dashboard(
            self.management,
            self.accounts,
            self.accounts,
            SqlDashboardQueries(self.engine),
            self.auth,
            self.clock,
            self.plans,
        )

    async def health(self) -> dict[str, str]:
        """Each backing service: "ok" or the error's type (never its text: no secrets)."""
        checks: dict[str, str] = {}

        async def select_one() -> None:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))

        try:
            await asyncio.wait_for(select_one(), HEALTH_TIMEOUT)
            checks["database"] = "ok"
        except Exception as exc:  # any failure means "not ready"
            checks["database"] = f"error: {type(exc).__name__}"
        if self.redis is not None:
            try:
                await asyncio.wait_for(self.redis.ping(), HEALTH_TIMEOUT)
                checks["redis"] = "ok"
            except Exception as exc:
                checks["redis"] = f"error: {type(exc).__name__}"
        return checks

    async def close(self) -> None:
        await self.gateway.drain()
        if self.stripe_payments is not None:
            await self.stripe_payments.aclose()
        if self.http is not None:
            await self.http.aclose()
        if self.invalidations is not None:
            await self.invalidations.stop()
        if self.stale_repair is not None:
            self.stale_repair.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.stale_repair
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
        from meterline.adapters.counters.redis_client import connect

        redis = connect(
            settings.redis_url,
            max_connections=256,
            socket_connect_timeout=settings.redis_timeout_seconds,
            socket_timeout=settings.redis_timeout_seconds,
        )
        counters = RedisCounters(redis)
    else:
        counters = MemoryCounters()
    clock = clock or SystemClock()
    metrics = PrometheusMetrics()
    ttl = settings.cache_ttl_seconds
    auth = Authenticator(accounts, cache_ttl_seconds=ttl)
    plans = PlanResolver(accounts, cache_ttl_seconds=ttl)
    alerts = AlertRecorder(accounts)
    prices = GenaiPrices(accounts, cache_ttl_seconds=max(ttl, 1.0))
    invalidations = RedisInvalidations(redis) if redis is not None else None
    end_users = EndUserDirectory(
        accounts,
        plans,
        cache_ttl_seconds=settings.end_user_cache_ttl_seconds,
        bus=invalidations,
    )
    if invalidations is not None:
        invalidations.start()
    admission = Admission(
        end_users,
        ledger,
        counters,
        clock,
        plans,
        alerts,
        reservation_ttl_seconds=settings.reservation_ttl_seconds,
        fail_open=settings.counters_failure == "open",
        metrics=metrics,
    )
    stale_repair = None
    if redis is not None:
        stale_repair = asyncio.create_task(
            admission.repair_stale_forever(STALE_REPAIR_INTERVAL_SECONDS)
        )
    metering = Metering(
        GroupCommit(ledger), prices, admission, plans, alerts, users=end_users, metrics=metrics
    )
    credentials = ProviderCredentials(
        accounts,
        FernetBox(settings.resolved_secret_key()),
        KNOWN_PROVIDERS.keys(),
        cache_ttl_seconds=ttl,
    )
    http = make_http_client(read_timeout=settings.upstream_read_timeout_seconds)
    upstreams = Upstreams(http)
    gateway = Gateway(
        admission,
        metering,
        Router(provider_configs(settings), prices, project_credentials=credentials.for_project),
        upstreams.for_target,
        clock,
        drain_timeout=settings.stream_drain_timeout_seconds,
        metrics=metrics,
    )
    invoices = SqlInvoices(engine, clock)
    stripe_payments = StripePayments(settings) if settings.stripe_secret_key else None
    stripe_sync = (
        StripeSync(
            stripe_payments,
            SqlStripeStore(engine, clock),
            invoices,
            accounts,
            clock,
            StripeOptions(state_secret=settings.resolved_secret_key()),
        )
        if stripe_payments
        else None
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
        management=Management(accounts, ledger, plans, auth, end_users),
        gateway=gateway,
        credentials=credentials,
        invoices=invoices,
        invoicing=Invoicing(invoices, clock),
        repricing=Repricing(accounts, SqlRepricer(engine), prices, plans, prices.invalidate),
        http=http,
        redis=redis,
        invalidations=invalidations,
        stale_repair=stale_repair,
        metrics=metrics,
        stripe_sync=stripe_sync,
        stripe_payments=stripe_payments,
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


def _unreachable(exc: BaseException) -> bool:
    """Connection-level failures of the database driver or pool: refused, reset, closed,
    shutting down, pool exhausted, and a server out of resources (no connection slot
    left, disk or memory full). Constraint violations and SQL bugs are not."""
    from sqlalchemy import exc as sa

    if isinstance(exc, sa.DBAPIError):
        if exc.connection_invalidated or isinstance(exc, sa.OperationalError | sa.InterfaceError):
            return True
        code = str(getattr(exc.orig, "sqlstate", "") or "")
        # connection exception, insufficient resources (53300: too many connections),
        # operator intervention (a shutdown)
        return code.startswith(("08", "53", "57P"))
    if isinstance(exc, sa.TimeoutError | ConnectionError | TimeoutError):
        return True
    return isinstance(exc, OSError) and exc.errno is not None
