"""Provider faults: clear errors to the client, nothing billed that was not generated,
reservations released (the end user's request count is back where it was)."""

from __future__ import annotations

from typing import Any

import pytest
from reliability_support import App, app_for, settings_for

from meterline.testing.fake_upstream import DEFAULT_WORDS
from meterline.testing.server import free_port

FULL_COMPLETION = DEFAULT_WORDS + 2  # what the fake reports for a whole reply


@pytest.fixture
async def short(urls, tmp_path, fake) -> Any:
    """An app whose provider read timeout is half a second."""
    async with app_for(settings_for(urls, tmp_path, fake, upstream_read_timeout_seconds=0.5)) as a:
        yield a


async def _requests(a: App, user: str) -> int:
    return int((await a.quota(user))["usage"]["daily_requests"]["used"])


@pytest.mark.parametrize(
    ("content", "stream", "status", "code"),
    [
        ("[fake:timeout=2000]", False, 504, "upstream_504"),
        ("[fake:timeout=2000]", True, 504, "upstream_504"),
        ("[fake:status=500]", False, 500, "server_error"),
        ("[fake:status=503]", True, 503, "service_unavailable"),
        ("[fake:status=429] [fake:retry_after=3]", False, 429, None),
        ("[fake:malformed]", False, 502, "upstream_502"),
    ],
)
async def test_failed_calls_are_clear_errors_not_billed_and_released(
    short: App, content: str, stream: bool, status: int, code: str | None
):
    before = await _requests(short, "f")
    r = await short.chat(content, user="f", stream=stream)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert isinstance(error["message"], str) and error["message"]
    if code:
        assert error["code"] == code
    assert await short.ledger() == []  # nothing billed
    assert await _requests(short, "f") == before  # reservation released


async def test_connection_refused_is_a_502_and_released(short: App):
    closed = f"http://127.0.0.1:{free_port()}/v1"
    r = await short.client.put(
        "/api/v1/providers/openai",
        json={"api_key": "sk-refused-123456", "base_url": closed},
        headers=short.auth(),
    )
    assert r.status_code == 200
    for stream in (False, True):
        r = await short.chat("hi", user="f", stream=stream)
        assert r.status_code == 502 and "unreachable" in r.json()["error"]["message"]
    assert await short.ledger() == []
    assert await _requests(short, "f") == 0


@pytest.mark.parametrize("content", ["[fake:cut=3]", "[fake:malformed]", "[fake:slow=800]"])
async def test_stream_that_breaks_bills_only_what_was_generated(short: App, content: str):
    r = await short.chat(content, user="s", stream=True)
    assert r.status_code == 200
    assert "data: [DONE]" not in r.text
    assert "upstream stream broke before it finished" in r.text  # the client is told
    (row,) = await short.ledger()
    assert row["status"] == "broken" and row["estimated"] is True
    assert row["completion_tokens"] < FULL_COMPLETION  # never the whole reply
    assert row["event_id"] == r.headers["x-meterline-request-id"]
    assert await _requests(short, "s") == 1  # a real call: counted once, hold settled


async def test_stream_without_usage_is_estimated_and_flagged(short: App):
    r = await short.chat("[fake:no_usage]", user="n", stream=True)
    assert r.status_code == 200 and "data: [DONE]" in r.text
    (row,) = await short.ledger()
    assert row["estimated"] is True and row["status"] == "success"
    assert 0 < row["completion_tokens"] <= 2 * FULL_COMPLETION
    usage = (await short.quota("n"))["usage"]
    assert usage["daily_requests"]["used"] == 1
    assert usage["daily_tokens"]["used"] == row["total_tokens"]  # no hold left behind
