"""A live gateway (uvicorn in the test's loop, real TCP) in front of the fake provider
(a real HTTP server in a thread), for the official SDKs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select

from meterline.adapters.db.tables import usage_events
from meterline.config import Settings
from meterline.container import Container, build_container
from meterline.domain.money import from_nanos
from meterline.services.bootstrap import initialize
from meterline.testing.fake_upstream import running_fake_upstream
from meterline.testing.server import serving
from meterline.web.app import create_app


@pytest.fixture(scope="session")
def fake() -> Iterator[Any]:
    with running_fake_upstream() as server:
        yield server


@dataclass
class LiveGateway:
    url: str
    container: Container
    live_key: str
    test_key: str
    project_id: str

    @property
    def openai_url(self) -> str:
        return self.url + "/v1"

    async def ledger(self, environment: str = "live") -> list[dict[str, Any]]:
        query = (
            select(usage_events)
            .where(usage_events.c.project_id == self.project_id)
            .where(usage_events.c.environment == environment)
            .order_by(usage_events.c.recorded_at)
        )
        async with self.container.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        out = []
        for row in rows:
            item = dict(row)
            for name in ("provider_cost", "markup", "charge"):
                nanos = item.pop(f"{name}_nanos")
                item[name] = None if nanos is None else from_nanos(nanos)
            out.append(item)
        return out


def gateway_settings(tmp_path, fake, **overrides: Any) -> Settings:
    return Settings(
        home=tmp_path,
        database_url=overrides.pop("database_url", f"sqlite:///{tmp_path}/gw.db"),
        secret_key="t",
        openai_base_url=fake.openai_base_url,
        openai_api_key="sk-fake-openai",
        anthropic_base_url=fake.anthropic_base_url,
        anthropic_api_key="sk-fake-anthropic",
        stream_drain_timeout_seconds=10,
        **overrides,
    )


async def live_gateway(settings: Settings) -> AsyncIterator[LiveGateway]:
    container = await build_container(settings)
    init = await initialize(container.accounts)
    async with serving(create_app(container=container)) as url:
        yield LiveGateway(url, container, init.live_key or "", init.test_key or "", init.project_id)
    await container.close()


@pytest.fixture
async def gateway(tmp_path, fake) -> AsyncIterator[LiveGateway]:
    async for g in live_gateway(gateway_settings(tmp_path, fake)):
        yield g
