"""Two server processes sharing PostgreSQL and Redis admit exactly the limit."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from meterline.config import Settings
from meterline.container import build_container
from meterline.services.bootstrap import initialize
from meterline.testing.server import running_servers

pytestmark = pytest.mark.slow


async def test_two_processes_admit_exactly_the_daily_request_limit(
    pg_database_url, redis_url, tmp_path
):
    settings = Settings(
        home=tmp_path, database_url=pg_database_url, redis_url=redis_url, secret_key="t"
    )
    container = await build_container(settings)
    init = await initialize(container.accounts)
    await container.close()
    env = {
        "METERLINE_DATABASE_URL": pg_database_url,
        "METERLINE_REDIS_URL": redis_url,
        "METERLINE_SECRET_KEY": "t",
        "METERLINE_HOME": str(tmp_path),
    }
    with running_servers(2, env) as servers:
        urls = [s.url for s in servers]
        headers = {"Authorization": f"Bearer {init.live_key}"}
        limits = httpx.Limits(max_connections=100)
        async with httpx.AsyncClient(timeout=30, limits=limits) as c:
            r = await c.post(
                f"{urls[0]}/api/v1/billing/rate-plans",
                json={"name": "Fifty", "is_default": True, "daily_request_limit": 50},
                headers=headers,
            )
            assert r.status_code == 201, r.text
            await asyncio.sleep(settings.cache_ttl_seconds + 0.2)  # other replica's plan cache

            async def one(i: int) -> bool:
                r = await c.get(
                    f"{urls[i % 2]}/api/v1/billing/check-quota",
                    params={"end_user_id": "racer", "reserve": "true"},
                    headers=headers,
                )
                assert r.status_code == 200, r.text
                return bool(r.json()["allowed"])

            admitted = await asyncio.gather(*(one(i) for i in range(200)))
            assert sum(admitted) == 50
            final = await c.get(
                f"{urls[1]}/api/v1/billing/check-quota",
                params={"end_user_id": "racer"},
                headers=headers,
            )
            assert final.json()["usage"]["daily_requests"]["used"] == 50
