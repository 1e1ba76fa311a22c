"""An app on a temporary SQLite file (or PostgreSQL + Redis), driven in-process by httpx."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from meterline.config import Settings
from meterline.container import Container, build_container
from meterline.services.bootstrap import initialize
from meterline.web.app import create_app


@dataclass
class Gateway:
    container: Container
    client: httpx.AsyncClient
    live_key: str
    test_key: str
    project_id: str

    def headers(self, env: str = "live") -> dict[str, str]:
        key = self.live_key if env == "live" else self.test_key
        return {"Authorization": f"Bearer {key}"}

    async def get(self, path: str, env: str = "live", **kw: Any) -> httpx.Response:
        return await self.client.get(path, headers=self.headers(env), **kw)

    async def post(
        self, path: str, json: Any = None, env: str = "live", **kw: Any
    ) -> httpx.Response:
        headers = {**self.headers(env), **kw.pop("headers", {})}
        return await self.client.post(path, json=json, headers=headers, **kw)

    async def patch(self, path: str, json: Any = None, env: str = "live") -> httpx.Response:
        return await self.client.patch(path, json=json, headers=self.headers(env))

    async def delete(self, path: str, env: str = "live") -> httpx.Response:
        return await self.client.delete(path, headers=self.headers(env))


async def _gateway(settings: Settings, clock: Any) -> AsyncIterator[Gateway]:
    container = await build_container(settings, clock=clock)
    init = await initialize(container.accounts)
    app = create_app(container=container)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://meterline") as client:
        yield Gateway(container, client, init.live_key or "", init.test_key or "", init.project_id)
    await container.close()


@pytest.fixture(params=["sqlite+memory", "postgres+redis"])
def gw_settings(request, tmp_path) -> Settings:
    """Each deployment shape: embedded defaults, and PostgreSQL + Redis."""
    if request.param == "sqlite+memory":
        return Settings(home=tmp_path, database_url=f"sqlite:///{tmp_path}/t.db", secret_key="t")
    return Settings(
        home=tmp_path,
        database_url=request.getfixturevalue("pg_database_url"),
        redis_url=request.getfixturevalue("redis_url"),
        secret_key="t",
    )


@pytest.fixture
async def gw(gw_settings, clock) -> AsyncIterator[Gateway]:
    async for g in _gateway(gw_settings, clock):
        yield g
