# ruff: noqa: E501  (the table of abusive inputs reads best one case per line)
"""Bad input never causes a 5xx: fuzzed gateway bodies and usage-event payloads
(hypothesis), and the classic abuses (huge, deep, wrongly typed, not UTF-8, absurd
numbers and money) get clear 4xx errors."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reliability_support import CHAT, EVENTS, QUOTA, App, app_for, settings_for

GATEWAY_PATHS = [CHAT, "/v1/embeddings", "/v1/responses", "/v1/messages"]
FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True
)

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    st.sampled_from(["gpt-4o", "openai/gpt-4o", "nope/x", "", "0.001", "-1", "1e9", "NaN"]),
)
_json = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)


def _maybe(keys: list[str], values: Any) -> Any:
    return st.fixed_dictionaries({}, optional=dict.fromkeys(keys, values))


_message = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "system", "assistant", "tool", 3])},
    optional={"content": st.one_of(st.text(max_size=40), _json)},
)
_gateway_body = st.one_of(
    _json,
    st.tuples(
        _maybe(
            [
                "max_tokens",
                "max_completion_tokens",
                "stream",
                "user",
                "input",
                "metadata",
                "stream_options",
                "system",
                "instructions",
                "tools",
                "n",
            ],
            _json,
        ),
        st.fixed_dictionaries(
            {"model": st.one_of(st.just("gpt-4o"), _scalars)},
            optional={"messages": st.lists(_message, max_size=3) | _json, "user": _scalars},
        ),
    ).map(lambda t: {**t[0], **t[1]}),
)
_event = st.tuples(
    _maybe(
        [
            "model",
            "provider",
            "prompt_tokens",
            "completion_tokens",
            "total_tokens",
            "cost_usd",
            "event_id",
            "timestamp",
            "latency_ms",
            "status",
            "metadata",
            "reservation_id",
        ],
        _json,
    ),
    st.fixed_dictionaries(
        {"end_user_id": st.one_of(st.text(min_size=1, max_size=20), _scalars)},
        optional={
            "prompt_tokens": st.integers(min_value=-(10**15), max_value=10**15),
            "cost_usd": st.one_of(
                st.decimals(allow_nan=True, allow_infinity=True).map(str), _scalars
            ),
        },
    ),
).map(lambda t: {**t[0], **t[1]})
_events_payload = st.one_of(
    _event, st.fixed_dictionaries({"events": st.lists(_event, max_size=5) | _json}), _json
)


@contextlib.contextmanager
def sync_app(app_settings: Any) -> Iterator[tuple[asyncio.AbstractEventLoop, App]]:
    """An app on a loop of our own, so hypothesis can drive it from a plain function."""
    loop = asyncio.new_event_loop()
    manager = app_for(app_settings)
    app = loop.run_until_complete(manager.__aenter__())
    try:
        yield loop, app
    finally:
        loop.run_until_complete(manager.__aexit__(None, None, None))
        loop.close()


def _no_server_error(r: Any) -> None:
    assert r.status_code < 500, (r.status_code, r.text[:500])
    body = r.json()
    if r.status_code >= 400:
        error = body.get("error")
        assert isinstance(error, dict) and error.get("message"), body


def test_fuzzed_gateway_bodies_get_no_5xx(urls, tmp_path, fake):
    with sync_app(settings_for(urls, tmp_path, fake)) as (loop, a):

        @FUZZ
        @given(path=st.sampled_from(GATEWAY_PATHS), body=_gateway_body)
        def one(path: str, body: Any) -> None:
            raw = json.dumps(body).encode()
            r = loop.run_until_complete(a.client.post(path, content=raw, headers=a.auth()))
            _no_server_error(r)

        one()


def test_fuzzed_usage_events_get_no_5xx(urls, tmp_path, fake):
    with sync_app(settings_for(urls, tmp_path, fake)) as (loop, a):

        @FUZZ
        @given(payload=_events_payload, env=st.sampled_from(["live", "test"]))
        def one(payload: Any, env: str) -> None:
            raw = json.dumps(payload).encode()
            r = loop.run_until_complete(a.client.post(EVENTS, content=raw, headers=a.auth(env)))
            _no_server_error(r)

        one()


def _body(path: str, extra: dict[str, Any]) -> bytes:
    base = {"end_user_id": "u"} if path.startswith("/api") else {"model": "gpt-4o", "user": "u"}
    return json.dumps({**base, **extra}).encode()


HUGE = 40 * 1024 * 1024
DEEP = b"[" * 100_000 + b"]" * 100_000
CASES = [
    ("huge events", EVENTS, b"x" * (9 * 1024 * 1024), "application/json", 413, "body_too_large"),
    ("huge gateway", CHAT, b'{"a":"' + b"x" * HUGE + b'"}', "application/json", 413, "body_too_large"),
    ("deep events", EVENTS, DEEP, "application/json", 400, "invalid_json"),
    ("deep quota", QUOTA, DEEP, "application/json", 400, "invalid_json"),
    ("deep gateway", CHAT, DEEP, "application/json", 422, "invalid_json"),
    ("text/plain events", EVENTS, b'{"end_user_id": "u"}', "text/plain", 415, "unsupported_media_type"),
    ("form gateway", CHAT, b"model=gpt-4o&user=u", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
    ("utf8 events", EVENTS, b'{"end_user_id": "\xff"}', "application/json", 400, "invalid_json"),
    ("utf8 quota", QUOTA, b'{"end_user_id": "\xff"}', "application/json", 400, "invalid_json"),
    ("utf8 gateway", CHAT, b'{"model": "gpt-4o", "user": "\xff"}', "application/json", 422, "invalid_json"),
    ("negative tokens", EVENTS, _body(EVENTS, {"prompt_tokens": -5}), "application/json", 422, "invalid_event"),
    ("absurd tokens", EVENTS, _body(EVENTS, {"prompt_tokens": 10**30}), "application/json", 422, "invalid_event"),
    ("float tokens", EVENTS, _body(EVENTS, {"completion_tokens": 1.5}), "application/json", 422, "invalid_event"),
    ("total < parts", EVENTS, _body(EVENTS, {"prompt_tokens": 5, "total_tokens": 1}), "application/json", 422, "invalid_event"),
    ("money word", EVENTS, _body(EVENTS, {"cost_usd": "abc"}), "application/json", 422, "invalid_event"),
    ("money NaN", EVENTS, _body(EVENTS, {"cost_usd": "NaN"}), "application/json", 422, "invalid_event"),
    ("money huge", EVENTS, _body(EVENTS, {"cost_usd": "1e400"}), "application/json", 422, "invalid_event"),
    ("money negative", EVENTS, _body(EVENTS, {"cost_usd": "-0.5"}), "application/json", 422, "invalid_event"),
    ("money float huge", EVENTS, _body(EVENTS, {"cost_usd": 1e308}), "application/json", 422, "invalid_event"),
    ("quota money", QUOTA, _body(QUOTA, {"estimated_cost_usd": "abc"}), "application/json", 422, "invalid_value"),
    ("quota tokens", QUOTA, _body(QUOTA, {"estimated_tokens": -3}), "application/json", 422, "invalid_value"),
    ("max_tokens", CHAT, _body(CHAT, {"max_tokens": -1}), "application/json", 422, "invalid_value"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("path", "raw", "ctype", "status", "code"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
async def test_abusive_input_gets_a_clear_4xx(app: App, path, raw, ctype, status, code):
    r = await app.client.post(path, content=raw, headers={**app.auth(), "content-type": ctype})
    assert r.status_code == status, r.text[:300]
    error = r.json()["error"]
    assert error["code"] == code and error["message"]
    assert await app.ledger() == []  # nothing recorded
