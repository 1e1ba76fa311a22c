"""Observability: request ids everywhere, Prometheus series, readiness, and no secret in
any log line."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import structlog
from reliability_support import CHAT, EVENTS, QUOTA, App, app_for, settings_for

from meterline.adapters.db import create_engine
from meterline.observability import configure_logging, scrub
from meterline.testing.server import free_port


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    """Capture every log record as the server would write it (JSON lines)."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    buf = io.StringIO()
    configure_logging("debug", stream=buf)
    try:
        yield buf
    finally:
        root.handlers, root.level = saved[0], saved[1]
        structlog.reset_defaults()


def _lines(buf: io.StringIO) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in buf.getvalue().splitlines() if line.startswith("{")]


async def test_every_response_has_a_request_id_matching_logs_and_ledger(app: App, json_logs):
    responses = [
        await app.client.get("/healthz"),
        await app.client.get("/readyz"),
        await app.client.get("/no/such/route"),
        await app.client.get(QUOTA, params={"end_user_id": "u1"}, headers=app.auth()),
        await app.client.get(QUOTA, params={"end_user_id": "u1"}),  # no key: 401
        await app.chat("hello there"),
    ]
    ids = [r.headers.get("x-meterline-request-id") for r in responses]
    assert all(i and i.startswith("req_") for i in ids), ids
    assert len(set(ids)) == len(ids)
    assert [r.status_code for r in responses] == [200, 200, 404, 200, 401, 200]
    # The gateway's id is the ledger row's event id.
    (row,) = await app.ledger()
    assert row["event_id"] == ids[-1]
    # Every response has a JSON access line carrying the same id.
    access = {line["request_id"]: line for line in _lines(json_logs) if line["event"] == "request"}
    for rid, r in zip(ids, responses, strict=True):
        assert access[rid]["status"] == r.status_code
    assert access[ids[-1]]["route"] == CHAT


async def test_metrics_expose_the_promised_series(app: App):
    await app.chat("ok")
    await app.chat("[fake:status=500]")
    await app.client.post(
        EVENTS, json={"end_user_id": "u2", "prompt_tokens": 3}, headers=app.auth()
    )
    plan = {"name": "Zero", "is_default": True, "daily_request_limit": 0}
    r = await app.client.post("/api/v1/billing/rate-plans", json=plan, headers=app.auth())
    assert r.status_code == 201
    denied = await app.client.get(QUOTA, params={"end_user_id": "new"}, headers=app.auth())
    assert denied.json()["allowed"] is False
    text = (await app.client.get("/metrics")).text
    for needle in (
        'meterline_http_requests_total{method="POST",route="/v1/chat/completions",status="200"}',
        'meterline_http_requests_total{method="POST",route="/v1/chat/completions",status="500"}',
        'meterline_admission_decisions_total{reason="none",result="allowed"}',
        'meterline_admission_decisions_total{reason="daily_request_limit_exceeded",result="denied"}',
        'meterline_upstream_latency_seconds_count{outcome="ok",provider="openai"}',
        'meterline_upstream_latency_seconds_count{outcome="error",provider="openai"}',
        'meterline_ledger_writes_total{outcome="recorded"}',
        "# TYPE meterline_counter_errors_total counter",
    ):
        assert needle in text, needle


async def test_readyz_is_503_when_redis_or_database_is_down(tmp_path, fake, private_redis):
    settings = settings_for(
        {"redis_url": private_redis.url}, tmp_path, fake, redis_timeout_seconds=1
    )
    async with app_for(settings) as a:
        assert (await a.client.get("/readyz")).status_code == 200
        private_redis.stop()
        r = await a.client.get("/readyz")
        assert r.status_code == 503
        assert r.json()["checks"]["redis"].startswith("error")
        assert r.json()["checks"]["database"] == "ok"
        assert (await a.client.get("/healthz")).status_code == 200  # alive, just not ready
    closed = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"
    async with app_for(settings_for({}, tmp_path, fake)) as a:
        good, a.container.engine = a.container.engine, create_engine(closed)
        try:
            r = await a.client.get("/readyz")
            assert r.status_code == 503 and r.json()["checks"]["database"].startswith("error")
        finally:
            await a.container.engine.dispose()
            a.container.engine = good


PROVIDER_SECRET = "sk-proj-PROVIDERSECRETabcdef123456"
STRIPE_SECRET = "sk_live_STRIPESECRETabcdef123456"
WEBHOOK_SECRET = "whsec_WEBHOOKSECRETabcdef123456"


async def test_no_secret_in_logs(urls, tmp_path, fake, json_logs):
    logging.getLogger("sqlalchemy.engine").setLevel(logging.INFO)  # SQL and its parameters
    settings = settings_for(
        urls,
        tmp_path,
        fake,
        stripe_secret_key=STRIPE_SECRET,
        stripe_webhook_secret=WEBHOOK_SECRET,
    )
    try:
        async with app_for(settings) as a:
            r = await a.client.put(
                "/api/v1/providers/openai",
                json={"api_key": PROVIDER_SECRET, "base_url": fake.openai_base_url},
                headers=a.auth(),
            )
            assert r.status_code == 200, r.text
            assert (await a.chat("hi")).status_code == 200
            assert (await a.chat("[fake:status=401]")).status_code == 401
            await a.client.get(QUOTA, params={"end_user_id": "x"}, headers=a.auth("test"))
            await a.client.post(EVENTS, json={"end_user_id": "x"}, headers=a.auth())
            bogus = a.live_key[:-4] + "zzzz"
            assert (
                await a.client.get("/v1/models", headers={"x-api-key": bogus})
            ).status_code == 401
            await a.client.post(CHAT, content=b"{not json", headers=a.auth())
            secrets_ = [a.live_key, a.test_key, bogus, PROVIDER_SECRET, STRIPE_SECRET,
                        WEBHOOK_SECRET, "sk-fake-openai-provider-secret"]  # fmt: skip
    finally:
        logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)
    captured = json_logs.getvalue()
    assert len(_lines(json_logs)) > 20  # we did capture the run (SQL included)
    for secret in secrets_:
        assert secret not in captured
        assert secret[8:24] not in captured  # not even a fragment


def test_scrub_catches_every_secret_shape():
    text = "k=mk_live_abc123 sk-ant-xyz987654 sk_test_ABC rk_live_Q whsec_Z Bearer tok.en"
    assert scrub(text).count("[redacted]") == 6
    assert "abc123" not in scrub(text)


async def test_uvicorn_never_builds_access_lines(json_logs):
    """Our middleware writes the one access line per request. uvicorn must not prepare
    its own: it formats the client address and path of every response whenever its
    access logger has a handler, counting the root's, even if the level then drops the
    line. ``serve`` passes ``access_log=False``; the app's logging setup, which runs
    after uvicorn's in every worker, must not turn it back on."""
    from uvicorn.config import Config
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    from uvicorn.server import ServerState

    async def asgi(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("not called")

    config = Config(asgi, log_config=None, access_log=False)
    config.load()
    configure_logging("debug", stream=json_logs)  # as create_app does, after uvicorn's setup
    assert HttpToolsProtocol(config, ServerState(), {}).access_log is False
    logging.getLogger("uvicorn.error").warning("still routed")  # uvicorn's own errors are kept
    assert any(line.get("event") == "still routed" for line in _lines(json_logs))


async def test_above_info_there_is_no_access_line_and_the_request_id_does_not_leak(app: App):
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    buf = io.StringIO()
    configure_logging("warning", stream=buf)
    try:
        r = await app.client.get(QUOTA, params={"end_user_id": "u1"}, headers=app.auth())
        assert r.status_code == 200 and r.headers["x-meterline-request-id"].startswith("req_")
        assert [line for line in _lines(buf) if line["event"] == "request"] == []
        structlog.get_logger("t").warning("after the request")
        (after,) = _lines(buf)
        assert "request_id" not in after  # the request's binding was reset
    finally:
        root.handlers, root.level = saved[0], saved[1]
        structlog.reset_defaults()
