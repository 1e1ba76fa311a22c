"""Gateway bodies over MAX_GATEWAY_BODY (issue #8): a 413 in the gateway's error envelope,
at once for a declared Content-Length and as soon as a chunked body passes the limit,
never buffered whole, never admitted or metered; a body just under it goes through."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from reliability_support import CHAT, App

from meterline.web.gateway_routes import MAX_GATEWAY_BODY

LIMIT = MAX_GATEWAY_BODY
CHUNK = b"x" * (1024 * 1024)  # one object yielded again and again: no 33 MiB held
OPENAI_PATHS = [CHAT, "/v1/embeddings", "/v1/responses"]
USER = "big-body-user"


class Chunks:
    """An async body of ``total`` bytes (JSON-looking, never complete) that counts what
    the server actually pulled out of it."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.pulled = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        head = b'{"model": "gpt-4o", "user": "' + USER.encode() + b'", "padding": "'
        self.pulled += len(head)
        yield head
        while self.pulled < self.total:
            piece = CHUNK[: self.total - self.pulled]
            self.pulled += len(piece)
            yield piece


def _oversized() -> bytes:
    head = b'{"model": "gpt-4o", "user": "' + USER.encode() + b'", "padding": "'
    tail = b'"}'
    return head + b"x" * (LIMIT + 1024 * 1024 - len(head) - len(tail)) + tail


async def _nothing_recorded(app: App) -> None:
    assert await app.ledger() == []
    usage = (await app.quota(USER))["usage"]
    assert usage["daily_requests"]["used"] == 0
    assert usage["monthly_requests"]["used"] == 0
    assert usage["daily_tokens"]["used"] == 0


def _too_large(r: httpx.Response) -> None:
    assert r.status_code == 413, r.text[:300]
    assert r.headers["content-type"].startswith("application/json")
    error = r.json()["error"]
    assert error["code"] == "body_too_large"
    assert error["type"] == "invalid_request_error"
    assert str(LIMIT) in error["message"]


async def test_declared_oversized_body_is_413(app: App):
    raw = _oversized()
    assert len(raw) > LIMIT
    r = await app.client.post(
        CHAT, content=raw, headers={**app.auth(), "content-type": "application/json"}
    )
    del raw
    _too_large(r)
    await _nothing_recorded(app)


@pytest.mark.parametrize("path", [*OPENAI_PATHS, "/v1/messages"])
async def test_declared_content_length_is_refused_before_reading(app: App, path: str):
    body = Chunks(LIMIT + 1)
    headers = {
        **app.auth(),
        "content-type": "application/json",
        "content-length": str(body.total),
    }
    r = await app.client.post(path, content=body, headers=headers)
    assert r.status_code == 413, r.text[:300]
    assert body.pulled == 0  # not a byte of the body was read
    if path == "/v1/messages":  # Anthropic's own error shape on the Anthropic route
        assert r.json() == {
            "type": "error",
            "error": {"type": "request_too_large", "message": r.json()["error"]["message"]},
        }
    else:
        _too_large(r)
    await _nothing_recorded(app)


async def test_chunked_oversized_body_is_cut_off_at_the_limit(app: App):
    body = Chunks(LIMIT + 8 * len(CHUNK))
    headers = {**app.auth(), "content-type": "application/json"}
    r = await app.client.post(CHAT, content=body, headers=headers)
    sent = r.request.headers
    assert "content-length" not in sent and sent["transfer-encoding"] == "chunked"
    _too_large(r)
    # Reading stopped with the chunk that passed the limit, not at the end of the body.
    assert LIMIT < body.pulled <= LIMIT + len(CHUNK)
    await _nothing_recorded(app)


async def test_wrong_content_type_is_415(app: App):
    raw = orjson.dumps({"model": "gpt-4o", "user": USER, "messages": []})
    r = await app.client.post(
        CHAT, content=raw, headers={**app.auth(), "content-type": "text/plain"}
    )
    assert r.status_code == 415, r.text[:300]
    error = r.json()["error"]
    assert error["code"] == "unsupported_media_type"
    assert error["type"] == "invalid_request_error"
    await _nothing_recorded(app)


async def test_body_just_under_the_limit_is_forwarded(app: App, fake: Any):
    payload: dict[str, Any] = {
        "model": "gpt-4o",
        "user": USER,
        "messages": [{"role": "user", "content": "hello there"}],
        "padding": "",
    }
    room = LIMIT - len(orjson.dumps(payload)) - 1024
    payload["padding"] = "x" * room
    raw = orjson.dumps(payload)
    assert LIMIT - 2048 < len(raw) < LIMIT
    r = await app.client.post(
        CHAT, content=raw, headers={**app.auth(), "content-type": "application/json"}
    )
    del raw, payload
    assert r.status_code == 200, r.text[:300]
    assert r.json()["choices"][0]["message"]["content"]
    usage = (await app.quota(USER))["usage"]
    assert usage["daily_requests"]["used"] == 1
    assert len(await app.ledger()) == 1
    # Forwarded as sent; then dropped from the session-wide fake's log (32 MiB each).
    mine = [r for r in fake.requests if isinstance(r.body, dict) and r.body.get("user") == USER]
    assert [len(r.body["padding"]) for r in mine] == [room]
    for r in mine:
        fake.requests.remove(r)
