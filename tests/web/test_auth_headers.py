"""The key is read in one place (``deps.presented_key``), for the dependency-based ``Auth``
and the hot routes (check-quota, usage-events, the gateway) alike. It must read exactly
what FastAPI's own HTTPBearer and APIKeyHeader would, and every route must accept and
refuse the same headers."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from meterline.web.deps import _bearer, _x_api_key, presented_key

QUOTA = "/api/v1/billing/check-quota"
PLANS = "/api/v1/billing/rate-plans"


def variants(key: str) -> list[dict[str, str]]:
    return [
        {"Authorization": f"Bearer {key}"},
        {"Authorization": f"bearer {key}"},
        {"Authorization": f"BEARER   {key}  "},
        {"Authorization": f"Basic {key}"},
        {"Authorization": f"Basic {key}", "x-api-key": key},
        {"Authorization": "Bearer", "x-api-key": key},
        {"Authorization": "Bearer ", "x-api-key": "mk_live_wrong"},
        {"Authorization": f"Bearer {key}", "x-api-key": "mk_live_wrong"},
        {"Authorization": "Bearer mk_live_wrong", "x-api-key": key},
        {"x-api-key": key},
        {"x-api-key": ""},
        {"Authorization": key},
        {},
    ]


@pytest.mark.parametrize("index", range(13))
async def test_hot_routes_authenticate_like_every_other_route(gw, index):
    headers = variants(gw.live_key)[index]
    reference = await gw.client.get(PLANS, headers=headers)
    assert reference.status_code in (200, 401)
    quota = await gw.client.get(QUOTA, params={"end_user_id": "u"}, headers=headers)
    post = await gw.client.post(QUOTA, json={"end_user_id": "u"}, headers=headers)
    event = {"end_user_id": "u", "model": "m", "prompt_tokens": 1, "event_id": f"e{index}"}
    usage = await gw.client.post("/api/v1/billing/usage-events", json=event, headers=headers)
    # The gateway answers 401 the same way; an admitted call needs an upstream, so only
    # "refused or not" is compared (a 401 never reaches the provider).
    chat = await gw.client.post(
        "/v1/chat/completions",
        json={"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
        headers=headers,
    )
    statuses = [quota.status_code, post.status_code, usage.status_code]
    assert statuses == [reference.status_code] * 3, (headers, reference.text, quota.text)
    assert (chat.status_code == 401) == (reference.status_code == 401), chat.text


@pytest.mark.parametrize("index", range(13))
async def test_the_key_is_read_as_fastapis_security_schemes_read_it(index):
    headers = variants("mk_live_abc123")[index]
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }
    request = Request(scope)
    bearer, api_key = await _bearer(request), await _x_api_key(request)
    assert presented_key(request) == (bearer.credentials if bearer else api_key)
