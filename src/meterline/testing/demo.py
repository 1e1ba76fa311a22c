"""``meterline demo``: the gateway, a fake provider and SIMULATED traffic, on one machine.

A newcomer sees metering, limits and revenue move without a provider key. Everything the
demo writes goes to its own SQLite file under ``<home>/demo/`` and is labelled simulated:
end users are named ``sim-user-N`` and every event carries ``metadata.simulated``.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from dataclasses import dataclass, replace
from decimal import Decimal

import httpx

from meterline.config import Settings
from meterline.container import build_container
from meterline.domain.entities import Environment
from meterline.domain.plans import Limits
from meterline.services.bootstrap import create_key, initialize
from meterline.testing.fake_upstream import running_fake_upstream
from meterline.testing.server import serving
from meterline.web.app import create_app

__all__ = ["DemoResult", "run_demo"]

MODELS = ("gpt-4o-mini", "gpt-4o", "claude-3-5-haiku-latest", "claude-3-5-sonnet-latest")
PROMPTS = (
    "summarise this ticket",
    "draft a reply to the customer",
    "[fake:words=40] explain",
    "translate to French please",
    "[fake:words=3] yes or no?",
)


@dataclass(frozen=True, slots=True)
class DemoResult:
    url: str
    live_key: str
    requests_sent: int
    denied: int


async def _traffic(
    url: str, key: str, users: int, stop: asyncio.Event, counts: dict[str, int], rate: float
) -> None:
    """A small, steady, clearly simulated load: one request every 1/rate seconds."""
    rng = random.Random(7)
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client:
        while not stop.is_set():
            body = {
                "model": rng.choice(MODELS),
                "user": f"sim-user-{rng.randrange(users)}",
                "messages": [{"role": "user", "content": rng.choice(PROMPTS)}],
            }
            response = await client.post("/v1/chat/completions", json=body)
            counts["sent"] += 1
            if response.status_code == 429:
                counts["denied"] += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=1 / rate)


async def run_demo(
    settings: Settings,
    *,
    port: int = 8080,
    duration: float | None = None,
    users: int = 12,
    rate: float = 4.0,
    announce: bool = True,
) -> DemoResult:
    demo_home = settings.home / "demo"
    with running_fake_upstream() as fake:
        demo_settings = settings.model_copy(
            update={
                "home": demo_home,
                "database_url": f"sqlite:///{(demo_home / 'demo.db').resolve()}",
                "redis_url": None,
                "openai_base_url": fake.openai_base_url,
                "openai_api_key": "sk-simulated",
                "anthropic_base_url": fake.anthropic_base_url,
                "anthropic_api_key": "sk-simulated",
            }
        )
        container = await build_container(demo_settings)
        init = await initialize(container.accounts, project_name="Demo (simulated traffic)")
        if init.created:
            plan = await container.accounts.default_plan(init.project_id)
            if plan is not None:
                await container.accounts.update_plan(
                    init.project_id,
                    replace(
                        plan,
                        markup_percentage=Decimal(25),
                        flat_rate_per_request=Decimal("0.0005"),
                        limits=Limits(daily_request_limit=200, requests_per_minute=30),
                    ),
                )
        live_key = init.live_key or ""
        if not live_key:  # an earlier demo run: make a fresh key to drive traffic with
            live_key = (
                await create_key(container.accounts, init.project_id, Environment.LIVE)
            ).plaintext
        counts = {"sent": 0, "denied": 0}
        stop = asyncio.Event()
        async with serving(create_app(container=container), port=port) as url:
            if announce:
                print(
                    f"meterline demo — SIMULATED TRAFFIC from a fake provider\n"
                    f"  gateway   {url}   (OpenAI base_url: {url}/v1)\n"
                    f"  live key  {live_key}\n"
                    + (
                        f"  admin     {init.admin_email} / {init.admin_password}\n"
                        if init.created
                        else ""
                    )
                    + f"  data      {demo_home}/demo.db\n  Ctrl-C to stop.",
                    flush=True,
                )
            task = asyncio.create_task(_traffic(url, live_key, users, stop, counts, rate))
            started = time.monotonic()
            try:
                while duration is None or time.monotonic() - started < duration:
                    await asyncio.sleep(0.2)
                    if task.done():
                        task.result()
            finally:
                stop.set()
                await task
        await container.close()
    return DemoResult(url, live_key, counts["sent"], counts["denied"])
