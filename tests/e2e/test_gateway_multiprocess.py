"""Two gateway processes on PostgreSQL + Redis: a request limit is exact across both."""

from __future__ import annotations

import asyncio

import httpx
import openai
import pytest
from sqlalchemy import func, select

from meterline.adapters.db.tables import usage_events
from meterline.config import Settings
from meterline.container import build_container
from meterline.services.bootstrap import initialize
from meterline.testing.server import running_servers

pytestmark = pytest.mark.slow


async def test_100_sdk_calls_over_two_processes_give_exactly_20(
    pg_database_url, redis_url, fake, tmp_path
):
    settings = Settings(
        home=tmp_path, database_url=pg_database_url, redis_url=redis_url, secret_key="t"
    )
    container = await build_container(settings)
    init = await initialize(container.accounts)
    env = {
        "METERLINE_DATABASE_URL": pg_database_url,
        "METERLINE_REDIS_URL": redis_url,
        "METERLINE_SECRET_KEY": "t",
        "METERLINE_HOME": str(tmp_path),
        "OPENAI_BASE_URL": fake.openai_base_url,
        "OPENAI_API_KEY": "sk-fake",
    }
    try:
        with running_servers(2, env) as servers:
            async with httpx.AsyncClient() as c:
                r = await c.post(
                    f"{servers[0].url}/api/v1/billing/rate-plans",
                    json={"name": "Twenty", "is_default": True, "daily_request_limit": 20},
                    headers={"Authorization": f"Bearer {init.live_key}"},
                )
                assert r.status_code == 201, r.text
            await asyncio.sleep(settings.cache_ttl_seconds + 0.2)
            clients = [
                openai.AsyncOpenAI(base_url=f"{s.url}/v1", api_key=init.live_key, max_retries=0)
                for s in servers
            ]

            async def one(i: int) -> str:
                try:
                    await clients[i % 2].chat.completions.create(
                        model="gpt-4o",
                        user="crowd",
                        messages=[{"role": "user", "content": f"call {i}"}],
                    )
                    return "ok"
                except openai.RateLimitError as exc:
                    assert int(exc.response.headers["retry-after"]) >= 1
                    assert exc.body["code"] == "daily_request_limit_exceeded"
                    return "429"

            outcomes = await asyncio.gather(*(one(i) for i in range(100)))
        assert outcomes.count("ok") == 20 and outcomes.count("429") == 80
        async with container.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(func.count())
                    .select_from(usage_events)
                    .where(usage_events.c.project_id == init.project_id)
                )
            ).scalar_one()
        assert rows == 20
    finally:
        await container.close()
