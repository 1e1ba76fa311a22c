"""check-quota over HTTP: the contract's fields, reasons, reservations, environments."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

QUOTA = "/api/v1/billing/check-quota"
PLANS = "/api/v1/billing/rate-plans"

CONTRACT_FIELDS = {
    "allowed",
    "reason",
    "end_user_id",
    "is_new_user",
    "rate_plan",
    "overage_action",
    "retry_after_seconds",
    "usage",
    "billing",
}
USAGE_FIELDS = {
    "daily_tokens",
    "monthly_tokens",
    "daily_requests",
    "monthly_requests",
    "requests_per_minute",
    "daily_cost_usd",
    "monthly_cost_usd",
}


async def make_default_plan(gw, **limits):
    r = await gw.post(PLANS, {"name": "Tier", "is_default": True, **limits})
    assert r.status_code == 201, r.text
    return r.json()


async def test_new_user_gets_default_plan_and_all_fields(gw):
    plan = await make_default_plan(
        gw,
        daily_request_limit=10,
        markup_percentage="25",
        flat_rate_per_request="0.001",
        allowed_models=["gpt-4o*"],
    )
    r = await gw.get(QUOTA, params={"end_user_id": "u1", "model": "gpt-4o-mini"})
    assert r.status_code == 200
    body = r.json()
    assert CONTRACT_FIELDS <= set(body)
    assert set(body["usage"]) == USAGE_FIELDS
    assert body["allowed"] is True and body["reason"] is None
    assert body["is_new_user"] is True
    assert body["rate_plan"] == {"id": plan["id"], "name": "Tier"}
    assert body["overage_action"] == "block"
    assert body["usage"]["daily_requests"] == {"used": 0, "limit": 10}
    assert body["billing"] == {
        "markup_percentage": "25",
        "flat_rate_per_request": "0.001",
        "allowed_models": ["gpt-4o*"],
    }
    again = (await gw.get(QUOTA, params={"end_user_id": "u1"})).json()
    assert again["is_new_user"] is False


async def test_post_with_json_body(gw):
    r = await gw.post(QUOTA, {"end_user_id": "u-post", "model": "gpt-4o"})
    assert r.status_code == 200 and r.json()["allowed"] is True


async def test_model_not_allowed_and_blocked(gw):
    await make_default_plan(gw, allowed_models=["gpt-4o", "claude-*"])
    r = (await gw.get(QUOTA, params={"end_user_id": "u", "model": "o1"})).json()
    assert (r["allowed"], r["reason"]) == (False, "model_not_allowed")
    ok = (await gw.get(QUOTA, params={"end_user_id": "u", "model": "claude-3-haiku"})).json()
    assert ok["allowed"] is True
    assert (await gw.patch("/api/v1/billing/end-users/u", {"blocked": True})).status_code == 200
    r = (await gw.get(QUOTA, params={"end_user_id": "u", "model": "gpt-4o"})).json()
    assert (r["allowed"], r["reason"], r["retry_after_seconds"]) == (False, "user_blocked", None)


async def test_end_user_changes_apply_to_the_very_next_check(gw):
    """End users are cached on the hot path; a write through the API must not be masked
    by the cache: block, unblock and plan changes apply to the next call."""
    await make_default_plan(gw)
    other = await gw.post(PLANS, {"name": "Other", "daily_request_limit": 1})
    user = "cached-u"
    for _ in range(3):  # warm the cache
        assert (await gw.get(QUOTA, params={"end_user_id": user})).json()["allowed"] is True
    for blocked, allowed in ((True, False), (False, True), (True, False), (False, True)):
        await gw.patch(f"/api/v1/billing/end-users/{user}", {"blocked": blocked})
        assert (await gw.get(QUOTA, params={"end_user_id": user})).json()["allowed"] is allowed
    await gw.patch(f"/api/v1/billing/end-users/{user}", {"rate_plan_id": other.json()["id"]})
    r = (await gw.get(QUOTA, params={"end_user_id": user})).json()
    assert r["rate_plan"]["id"] == other.json()["id"]


async def test_reserve_counts_and_denies_at_limit_with_retry_after(gw, clock):
    clock.current = datetime(2026, 11, 27, 23, 0, 0, tzinfo=UTC)
    await make_default_plan(gw, daily_request_limit=3)
    for _ in range(3):
        r = (await gw.get(QUOTA, params={"end_user_id": "r", "reserve": "true"})).json()
        assert r["allowed"] is True and r["reservation_id"].startswith("res_")
    denied = (await gw.get(QUOTA, params={"end_user_id": "r", "reserve": "true"})).json()
    assert denied["allowed"] is False
    assert denied["reason"] == "daily_request_limit_exceeded"
    assert denied["retry_after_seconds"] == 3600  # until UTC midnight
    assert "reservation_id" not in denied
    # Without reserve, check-quota only reads.
    read = (await gw.get(QUOTA, params={"end_user_id": "r"})).json()
    assert read["usage"]["daily_requests"]["used"] == 3


async def test_concurrent_reservations_admit_exactly_the_limit(gw):
    await make_default_plan(gw, daily_request_limit=50)

    async def one():
        r = await gw.get(QUOTA, params={"end_user_id": "burst", "reserve": "true"})
        assert r.status_code == 200
        return r.json()["allowed"]

    results = await asyncio.gather(*(one() for _ in range(200)))
    assert sum(results) == 50
    usage = (await gw.get(QUOTA, params={"end_user_id": "burst"})).json()["usage"]
    assert usage["daily_requests"]["used"] == 50


async def test_concurrent_first_sight_is_new_exactly_once(gw):
    results = await asyncio.gather(
        *(gw.get(QUOTA, params={"end_user_id": "fresh"}) for _ in range(30))
    )
    assert sum(r.json()["is_new_user"] for r in results) == 1


async def test_alert_only_allows_and_records_one_alert(gw):
    await make_default_plan(gw, daily_request_limit=1, overage_action="alert_only")
    for _ in range(4):
        r = (await gw.get(QUOTA, params={"end_user_id": "a", "reserve": "true"})).json()
        assert r["allowed"] is True
    assert r["alerts"] == ["daily_request_limit_exceeded"]
    alerts = (await gw.get("/api/v1/billing/alerts")).json()["data"]
    mine = [a for a in alerts if a["end_user_id"] == "a"]
    assert [a["kind"] for a in mine] == ["daily_request_limit_exceeded"]


async def test_billing_disabled_allows_everything(gw):
    await make_default_plan(gw, daily_request_limit=0)
    assert (await gw.get(QUOTA, params={"end_user_id": "x"})).json()["allowed"] is False
    r = await gw.patch("/api/v1/billing/config", {"enabled": False})
    assert r.status_code == 200 and r.json()["enabled"] is False
    assert (await gw.get(QUOTA, params={"end_user_id": "x"})).json()["allowed"] is True


async def test_environments_never_mix(gw):
    await make_default_plan(gw, daily_request_limit=2)
    for _ in range(2):
        await gw.get(QUOTA, params={"end_user_id": "same", "reserve": "true"}, env="test")
    test_view = (await gw.get(QUOTA, params={"end_user_id": "same"}, env="test")).json()
    live_view = (await gw.get(QUOTA, params={"end_user_id": "same"}, env="live")).json()
    assert test_view["allowed"] is False
    assert live_view["allowed"] is True and live_view["is_new_user"] is True
    assert live_view["usage"]["daily_requests"]["used"] == 0


async def test_bad_input_is_a_clear_4xx(gw):
    r = await gw.get(QUOTA)
    assert r.status_code == 422 and r.json()["error"]["param"] == "end_user_id"
    r = await gw.client.get(QUOTA, params={"end_user_id": "u"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "missing_api_key"
    r = await gw.client.get(
        QUOTA,
        params={"end_user_id": "u"},
        headers={"Authorization": "Bearer mk_live_nope_nope_nope_nope_x"},
    )
    assert r.status_code == 401
    r = await gw.post(QUOTA, content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"
    r = await gw.post(QUOTA, {"end_user_id": "u", "reserve": "maybe"})
    assert r.status_code == 422 and r.json()["error"]["param"] == "reserve"
    for bad in ("u\x00", "\tu", "u\nv", "u\x1f"):  # every C0 control character is refused
        r = await gw.post(QUOTA, {"end_user_id": bad})
        assert r.status_code == 422, bad
        assert "control characters" in r.json()["error"]["message"]
    for fine in ("u\x7f", "u\u00a0", "ü \u4e16"):  # DEL, no-break space, letters: not C0
        assert (await gw.post(QUOTA, {"end_user_id": fine})).status_code == 200, fine
