"""Helpers and fixtures for the fault tests (conftest.py re-exports the fixtures): the
fake provider, an app per backend, a private Redis, and a TCP proxy that can cut the
database off mid-load without touching the shared one."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import redis
from sqlalchemy import select

from meterline.adapters.db.tables import usage_events
from meterline.config import Settings
from meterline.container import Container, build_container
from meterline.services.bootstrap import initialize
from meterline.testing.fake_upstream import running_fake_upstream
from meterline.testing.server import free_port
from meterline.web.app import create_app

QUOTA = "/api/v1/billing/check-quota"
EVENTS = "/api/v1/billing/usage-events"
CHAT = "/v1/chat/completions"
BACKENDS = ["sqlite+memory", "postgres+redis"]


@pytest.fixture(scope="session")
def fake() -> Iterator[Any]:
    with running_fake_upstream() as server:
        yield server


@dataclass
class App:
    """An app driven in-process by httpx (real container, real backends)."""

    container: Container
    client: httpx.AsyncClient
    live_key: str
    test_key: str
    project_id: str
    organization_id: str

    def auth(self, env: str = "live") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.live_key if env == 'live' else self.test_key}"}

    async def quota(self, user: str, env: str = "live") -> dict[str, Any]:
        r = await self.client.get(QUOTA, params={"end_user_id": user}, headers=self.auth(env))
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    async def chat(self, content: str, user: str = "u1", **body: Any) -> httpx.Response:
        payload = {
            "model": "gpt-4o",
            "user": user,
            "messages": [{"role": "user", "content": content}],
        }
        return await self.client.post(CHAT, json={**payload, **body}, headers=self.auth())

    async def ledger(self, env: str = "live") -> list[dict[str, Any]]:
        return await ledger_rows(self.container, self.project_id, env)


async def ledger_rows(container: Container, project_id: str, env: str = "live") -> list[Any]:
    query = (
        select(usage_events)
        .where(usage_events.c.project_id == project_id)
        .where(usage_events.c.environment == env)
    )
    async with container.engine.connect() as conn:
        return [dict(r) for r in (await conn.execute(query)).mappings().all()]


def settings_for(urls: dict[str, str], tmp_path: Any, fake: Any, **kw: Any) -> Settings:
    """Settings on the backend whose URLs ``urls`` holds (see the ``urls`` fixture)."""
    base: dict[str, Any] = {
        "home": tmp_path,
        "secret_key": "t",
        "openai_base_url": fake.openai_base_url,
        "openai_api_key": "sk-fake-openai-provider-secret",
        "anthropic_base_url": fake.anthropic_base_url,
        "anthropic_api_key": "sk-ant-fake-provider-secret",
        "stream_drain_timeout_seconds": 5,
        "cache_ttl_seconds": 0.0,
    }
    base["database_url"] = urls.get("database_url") or f"sqlite:///{tmp_path}/r.db"
    if urls.get("redis_url"):
        base["redis_url"] = urls["redis_url"]
    return Settings(**{**base, **kw})


@contextlib.asynccontextmanager
async def app_for(settings: Settings) -> AsyncIterator[App]:
    container = await build_container(settings)
    init = await initialize(container.accounts)
    transport = httpx.ASGITransport(app=create_app(container=container))
    try:
        async with httpx.AsyncClient(
            transport=transport, base_url="http://meterline", timeout=30
        ) as client:
            yield App(
                container,
                client,
                init.live_key or "",
                init.test_key or "",
                init.project_id,
                init.organization_id,
            )
    finally:
        await container.close()


@pytest.fixture(params=BACKENDS)
def backend(request: Any) -> str:
    return str(request.param)


@pytest.fixture
def urls(backend: str, request: Any) -> dict[str, str]:
    """The backend's URLs ({} = SQLite file + in-process counters); a sync fixture, since
    the PostgreSQL database fixture is async."""
    if backend == "sqlite+memory":
        return {}
    return {
        "database_url": request.getfixturevalue("pg_database_url"),
        "redis_url": request.getfixturevalue("redis_url"),
    }


@pytest.fixture
async def app(urls: dict[str, str], tmp_path: Any, fake: Any) -> AsyncIterator[App]:
    async with app_for(settings_for(urls, tmp_path, fake)) as a:
        yield a


# --------------------------------------------------------------- a Redis of our own


@dataclass
class PrivateRedis:
    """A redis-server on its own port: flushed and stopped without disturbing 6379."""

    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis(port=self.port)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis(free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


# --------------------------------------------------------------- a database we can cut off


class TcpProxy:
    """Forwards a local port to the database. ``cut()`` closes the listener and resets
    every open connection (what clients see when PostgreSQL dies); ``restore()`` listens
    again on the same port (PostgreSQL back up)."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        self._writers -= {writer, up_writer}

    async def cut(self, *, graceful: bool = False) -> None:
        """Stop listening and drop every connection: reset (a crash, a middlebox), or
        with ``graceful`` closed (what a server that shuts down or restarts sends)."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for w in list(self._writers):
            if graceful:
                w.close()
            else:
                w.transport.abort()
        self._writers.clear()

    async def restore(self) -> None:
        await self.start()
