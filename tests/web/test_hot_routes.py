"""HotRoutes: the per-call routes answer the same whether they take the short way or the
framework's whole stack, and only routes the framework resolved to a request-only
``DirectRoute`` are ever taken the short way."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from meterline.services.bootstrap import initialize
from meterline.web.app import create_app
from meterline.web.hot_routes import HotRoutes

QUOTA = "/api/v1/billing/check-quota"
EVENTS = "/api/v1/billing/usage-events"
CHAT = "/v1/chat/completions"
MESSAGES = "/v1/messages"

#: Values that differ per request (ids, times); replaced before comparing answers.
_VOLATILE = re.compile(r"(req|res|evt)_[0-9a-f]{16,}|\d{4}-\d\d-\d\dT[0-9:.]+(Z|[+-]\d\d:\d\d)?")
_COMPARED_HEADERS = ("content-type", "retry-after", "allow", "location")
REQUEST_ID = re.compile(r"req_[0-9a-f]{24}")


def _hot_routes(app: Any) -> HotRoutes:
    layer = app.middleware_stack
    while not isinstance(layer, HotRoutes):
        layer = layer.app
    return layer


def _answer(r: httpx.Response, user: str) -> tuple[Any, ...]:
    body = _VOLATILE.sub("<v>", r.text.replace(user, "<user>"))
    headers = {k: (r.headers.get(k) or "").replace(user, "<user>") for k in _COMPARED_HEADERS}
    limits = {k: v for k, v in r.headers.items() if k.startswith("x-ratelimit-limit")}
    return (
        r.status_code,
        headers,
        limits,
        body,
        REQUEST_ID.fullmatch(r.headers["x-meterline-request-id"]) is not None,
    )


def _requests(key: str, user: str) -> list[tuple[str, str, dict[str, Any]]]:
    auth = {"Authorization": f"Bearer {key}"}
    chat = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "user": user}
    return [
        ("GET", QUOTA, {"params": {"end_user_id": user, "model": "gpt-4o"}, "headers": auth}),
        ("GET", QUOTA, {"params": {"model": "gpt-4o"}, "headers": auth}),
        ("GET", QUOTA, {"params": {"end_user_id": user}}),  # no key
        ("GET", QUOTA, {"params": {"end_user_id": user}, "headers": {"x-api-key": "mk_live_x"}}),
        ("HEAD", QUOTA, {"params": {"end_user_id": user}, "headers": auth}),  # 405
        ("POST", QUOTA, {"headers": auth}),  # no body
        ("POST", QUOTA, {"json": {"end_user_id": user, "reserve": True}, "headers": auth}),
        ("GET", QUOTA + "/", {"params": {"end_user_id": user}, "headers": auth}),
        (
            "POST",
            EVENTS,
            {
                "json": {"end_user_id": user, "model": "gpt-4o", "cost_usd": "0.001"},
                "headers": {**auth, "Idempotency-Key": f"k-{user}"},
            },
        ),
        ("POST", EVENTS, {"json": {"end_user_id": user, "cost_usd": -1}, "headers": auth}),
        ("POST", EVENTS, {"content": b"{not json", "headers": auth}),
        ("POST", CHAT, {"json": chat}),  # no key: raised before the route's own handling
        (
            "POST",
            CHAT,
            {"content": b"[1]", "headers": {**auth, "content-type": "application/json"}},
        ),
        ("POST", CHAT, {"content": b"hi", "headers": {**auth, "content-type": "text/plain"}}),
        ("POST", CHAT, {"json": {"messages": []}, "headers": auth}),  # no model
        ("POST", MESSAGES, {"json": {"model": "x", "max_tokens": -1}, "headers": auth}),
        ("GET", CHAT, {"headers": auth}),  # 405
    ]


@pytest.fixture
async def two_apps(gw_settings, clock):
    """The same container behind two apps: hot routes on, and off."""
    from meterline.container import build_container

    container = await build_container(gw_settings, clock=clock)
    init = await initialize(container.accounts)
    apps = [create_app(container=container), create_app(container=container, hot_routes=False)]
    clients = [
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://meterline")
        for app in apps
    ]
    try:
        yield apps, clients, init.live_key or ""
    finally:
        for client in clients:
            await client.aclose()
        await container.close()


async def test_hot_and_framework_ways_answer_alike(two_apps) -> None:
    (hot_app, plain_app), (hot, plain), key = two_apps
    for round_ in range(3):  # round 0 teaches the hot app its routes; 1 and 2 use them
        for i in range(len(_requests(key, ""))):
            answers = []
            for name, client in (("hot", hot), ("plain", plain)):
                user = f"user-{round_}-{i}-{name}"  # fresh state for each request
                method, path, kw = _requests(key, user)[i]
                r = await client.request(method, path, **kw)
                answers.append(_answer(r, user))
            assert answers[0] == answers[1], (round_, method, path)
    learned = {(m, p) for m, p, _ in _hot_routes(hot_app)._hot}
    assert learned == {
        ("GET", QUOTA),
        ("POST", QUOTA),
        ("POST", EVENTS),
        ("POST", CHAT),
        ("POST", MESSAGES),
    }
    assert not _hot_routes(plain_app)._hot


async def test_hot_requests_are_observed_under_their_route(two_apps) -> None:
    """Metrics and logs read ``scope["route"]``: a hot request still names its template."""
    (hot_app, _), (hot, _), key = two_apps
    for n in range(4):
        r = await hot.get(
            QUOTA, params={"end_user_id": f"u{n}"}, headers={"Authorization": f"Bearer {key}"}
        )
        assert r.status_code == 200
    assert ("GET", QUOTA, "") in _hot_routes(hot_app)._hot
    text = (await hot.get("/metrics")).text
    line = re.search(
        r"meterline_http_requests_total"
        r'\{method="GET",route="/api/v1/billing/check-quota",status="200"\} (\S+)',
        text,
    )
    assert line is not None and float(line.group(1)) == 4


async def test_a_route_with_path_parameters_is_never_hot(two_apps) -> None:
    (hot_app, _), (hot, _), key = two_apps
    auth = {"Authorization": f"Bearer {key}"}
    for _ in range(3):
        await hot.get("/api/v1/billing/end-users/u1/usage", headers=auth)
        await hot.get("/v1/models", headers=auth)  # takes Auth: FastAPI solves it
    assert {p for _, p, _ in _hot_routes(hot_app)._hot} <= {QUOTA, EVENTS, CHAT, MESSAGES}
