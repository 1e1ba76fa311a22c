"""A serving process (the app building its own container) freezes its startup objects
and raises the collector's thresholds; a test app given a container leaves both alone."""

from __future__ import annotations

import gc

from meterline.config import Settings
from meterline.container import build_container
from meterline.web.app import GC_THRESHOLDS, create_app


async def test_serving_lifespan_tunes_the_collector(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("METERLINE_HOME", str(tmp_path))
    monkeypatch.setenv("METERLINE_SECRET_KEY", "t" * 40)
    before = gc.get_threshold()
    app = create_app(Settings(home=tmp_path, secret_key="t" * 40))
    try:
        async with app.router.lifespan_context(app):
            assert gc.get_threshold() == GC_THRESHOLDS
            assert gc.get_freeze_count() > 0
            assert app.state.container is not None
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


async def test_app_with_a_given_container_leaves_the_collector_alone(tmp_path) -> None:
    before = gc.get_threshold()
    container = await build_container(Settings(home=tmp_path, secret_key="t" * 40))
    try:
        app = create_app(container=container)
        async with app.router.lifespan_context(app):
            assert gc.get_threshold() == before
    finally:
        await container.close()
