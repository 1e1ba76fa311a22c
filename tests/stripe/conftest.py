"""An app with Stripe wired in (SQLite), talking to the fake Stripe over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import httpx
import pytest

from meterline.adapters.db.invoices import SqlInvoices
from meterline.adapters.db.stripe import SqlStripeStore
from meterline.adapters.stripe import StripePayments
from meterline.config import Settings
from meterline.container import Container, build_container
from meterline.domain.entities import Environment, UserKey
from meterline.domain.invoices import Invoice, InvoiceStatus, compute_lines
from meterline.services.bootstrap import initialize
from meterline.services.stripe_sync import StripeSync
from meterline.testing.fake_stripe import FakeStripe, running_fake_stripe
from meterline.web.app import create_app

PERIOD = (date(2026, 11, 1), date(2026, 11, 30))


@pytest.fixture
def fake() -> Iterator[FakeStripe]:
    with running_fake_stripe() as f:
        yield f


def stripe_settings(tmp_path: Any, fake: FakeStripe, **over: Any) -> Settings:
    values: dict[str, Any] = {
        "home": tmp_path,
        "database_url": f"sqlite:///{tmp_path}/t.db",
        "secret_key": "app-secret",
        "stripe_secret_key": "sk_test_platform",
        "stripe_client_id": "ca_platform",
        "stripe_webhook_secret": fake.webhook_secret,
        "stripe_api_base": fake.url,
        **over,
    }
    return Settings(**values)


@dataclass
class App:
    container: Container
    client: httpx.AsyncClient
    fake: FakeStripe
    live_key: str
    test_key: str
    project_id: str
    organization_id: str
    sync: StripeSync
    store: SqlStripeStore
    invoices: SqlInvoices
    payments: StripePayments
    asgi: Any = None

    def headers(self, env: str = "live") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.live_key if env == 'live' else self.test_key}"}

    async def get(self, path: str, env: str = "live", **kw: Any) -> httpx.Response:
        return await self.client.get(path, headers=self.headers(env), **kw)

    async def post(self, path: str, json: Any = None, env: str = "live") -> httpx.Response:
        return await self.client.post(path, json=json, headers=self.headers(env))

    async def connect(self) -> str:
        """The whole Connect dance; returns the connected account id."""
        r = await self.get("/api/v1/stripe/connect")
        assert r.status_code == 200, r.text
        code, state = self.fake.approve(r.json()["url"])
        r = await self.client.get("/api/v1/stripe/callback", params={"code": code, "state": state})
        assert r.status_code == 200, r.text
        return str(r.json()["account_id"])

    async def usage(self, user: str, cost: str, model: str, env: str = "live", n: int = 0) -> None:
        event = {
            "end_user_id": user,
            "model": model,
            "provider": "openai",
            "prompt_tokens": 10,
            "completion_tokens": 5,
            "cost_usd": cost,
            "event_id": f"{user}-{model}-{n}",
            "timestamp": "2026-11-10T10:00:00Z",
        }
        r = await self.post("/api/v1/billing/usage-events", event, env=env)
        assert r.status_code == 200 and r.json()["recorded"] == 1, r.text

    async def set_email(self, user: str, email: str | None, env: str = "live") -> None:
        key = UserKey(self.project_id, Environment(env), user)
        await self.container.accounts.update_end_user(key, email=email)

    async def invoice(self, user: str, env: str = "live", *, finalize: bool = True) -> Invoice:
        """Draft (and finalize) the user's November invoice through the InvoiceStore port."""
        environment = Environment(env)
        usage = await self.invoices.invoice_usage(self.project_id, environment, user, *PERIOD)
        draft = await self.invoices.save_draft(
            Invoice(
                id="",
                project_id=self.project_id,
                environment=environment,
                end_user_id=user,
                period_start=PERIOD[0],
                period_end=PERIOD[1],
                status=InvoiceStatus.DRAFT,
                currency="USD",
                lines=compute_lines(usage, "USD"),
            )
        )
        if not finalize:
            return draft
        now = self.container.clock.now()
        return await self.invoices.finalize(self.project_id, environment, draft.id, now, "USD")


async def make_app(settings: Settings, fake: FakeStripe, clock: Any) -> AsyncIterator[App]:
    # The container wires Stripe itself when a platform key is configured: use its parts,
    # so these tests also prove the wiring.
    container = await build_container(settings, clock=clock)
    init = await initialize(container.accounts)
    sync, payments = container.stripe_sync, container.stripe_payments
    assert sync is not None and payments is not None
    store = SqlStripeStore(container.engine, clock)
    invoices = container.invoices
    app = create_app(container=container)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://meterline") as client:
        yield App(
            container,
            client,
            fake,
            init.live_key or "",
            init.test_key or "",
            init.project_id,
            init.organization_id,
            sync,
            store,
            invoices,
            payments,
            app,
        )
    await container.close()


@pytest.fixture
async def app(tmp_path, fake, clock) -> AsyncIterator[App]:
    async for a in make_app(stripe_settings(tmp_path, fake), fake, clock):
        yield a


@pytest.fixture
async def live_platform(tmp_path, fake, clock) -> AsyncIterator[App]:
    """The same app with a live-mode platform key (sk_live_…)."""
    settings = stripe_settings(tmp_path, fake, stripe_secret_key="sk_live_platform")
    async for a in make_app(settings, fake, clock):
        yield a
