"""`meterline demo` really meters its simulated traffic."""

from __future__ import annotations

from datetime import UTC, datetime

from meterline.config import Settings
from meterline.container import build_container
from meterline.domain.entities import Environment
from meterline.testing.demo import run_demo
from meterline.testing.server import free_port


async def test_demo_sends_simulated_traffic_that_is_metered(tmp_path):
    settings = Settings(home=tmp_path, secret_key="t")
    result = await run_demo(settings, port=free_port(), duration=3, rate=10, announce=False)
    assert result.requests_sent >= 5
    container = await build_container(
        settings.model_copy(update={"database_url": f"sqlite:///{tmp_path}/demo/demo.db"})
    )
    try:
        project = await container.accounts.first_project()
        assert project is not None and "simulated" in project.name
        today = datetime.now(UTC).date()
        report = await container.ledger.revenue(
            project.id, Environment.LIVE, today.replace(day=1), today
        )
        assert report.totals.requests == result.requests_sent - result.denied
        assert report.totals.charge > 0
    finally:
        await container.close()
