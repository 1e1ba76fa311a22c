"""Dashboard fixtures: an app on SQLite with a known admin, in-process (httpx) or live
(uvicorn in the test's loop, for Chromium), the fake provider behind the gateway."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from meterline.config import Settings
from meterline.container import Container, build_container
from meterline.services.bootstrap import initialize
from meterline.testing.fake_upstream import running_fake_upstream
from meterline.testing.server import serving
from meterline.web.app import create_app

ADMIN_EMAIL = "ops@example.com"
ADMIN_PASSWORD = "correct horse battery"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@dataclass
class Dash:
    url: str
    container: Container
    live_key: str
    test_key: str
    project_id: str

    def api(self, env: str = "live") -> httpx.AsyncClient:
        key = self.live_key if env == "live" else self.test_key
        return httpx.AsyncClient(
            base_url=self.url, headers={"Authorization": f"Bearer {key}"}, timeout=30
        )


@pytest.fixture(scope="session")
def fake_provider() -> Iterator[Any]:
    with running_fake_upstream() as server:
        yield server


def dash_settings(tmp_path: Path, fake: Any | None = None) -> Settings:
    extra: dict[str, Any] = {}
    if fake is not None:
        extra = {
            "openai_base_url": fake.openai_base_url,
            "openai_api_key": "sk-fake-openai",
            "anthropic_base_url": fake.anthropic_base_url,
            "anthropic_api_key": "sk-fake-anthropic",
        }
    return Settings(
        home=tmp_path, database_url=f"sqlite:///{tmp_path}/dash.db", secret_key="t", **extra
    )


async def _container(settings: Settings) -> tuple[Container, Any]:
    container = await build_container(settings)
    init = await initialize(
        container.accounts, admin_email=ADMIN_EMAIL, admin_password=ADMIN_PASSWORD
    )
    return container, init


@pytest.fixture
async def dash_client(tmp_path) -> AsyncIterator[tuple[httpx.AsyncClient, Dash]]:
    """In-process app; the client keeps cookies like a browser."""
    container, init = await _container(dash_settings(tmp_path))
    app = create_app(container=container)
    transport = httpx.ASGITransport(app=app, client=("10.0.0.7", 1234))
    async with httpx.AsyncClient(transport=transport, base_url="http://meterline") as client:
        yield (
            client,
            Dash(
                "http://meterline",
                container,
                init.live_key or "",
                init.test_key or "",
                init.project_id,
            ),
        )
    await container.close()


@pytest.fixture
async def live_dash(tmp_path, fake_provider) -> AsyncIterator[Dash]:
    container, init = await _container(dash_settings(tmp_path, fake_provider))
    async with serving(create_app(container=container)) as url:
        yield Dash(url, container, init.live_key or "", init.test_key or "", init.project_id)
    await container.close()


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


async def sign_in(client: httpx.AsyncClient) -> str:
    """Signs in; returns the session's CSRF token."""
    page = await client.get("/dashboard/login")
    r = await client.post(
        "/dashboard/login",
        data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "csrf_token": csrf_of(page.text)},
    )
    assert r.status_code == 303, r.text
    page = await client.get("/dashboard/configuration")
    assert page.status_code == 200
    return csrf_of(page.text)
