"""Management API: plans CRUD, end users, config, revenue, validation."""

from __future__ import annotations

PLANS = "/api/v1/billing/rate-plans"
USERS = "/api/v1/billing/end-users"
QUOTA = "/api/v1/billing/check-quota"
EVENTS = "/api/v1/billing/usage-events"

FULL_PLAN = {
    "name": "Pro",
    "slug": "pro",
    "overage_action": "alert_only",
    "daily_token_limit": 1000,
    "monthly_token_limit": 20000,
    "daily_request_limit": 100,
    "monthly_request_limit": 2000,
    "requests_per_minute": 10,
    "daily_cost_limit_usd": "1.50",
    "monthly_cost_limit_usd": "30",
    "markup_percentage": "12.5",
    "flat_rate_per_request": "0.0001",
    "allowed_models": ["gpt-4o", "claude-*"],
}


async def test_plan_crud_round_trip(gw):
    created = await gw.post(PLANS, FULL_PLAN)
    assert created.status_code == 201, created.text
    plan = created.json()
    assert plan["daily_cost_limit_usd"] == "1.5" and plan["markup_percentage"] == "12.5"
    assert plan["allowed_models"] == ["gpt-4o", "claude-*"]
    got = (await gw.get(f"{PLANS}/{plan['id']}")).json()
    assert got == {k: v for k, v in plan.items() if k != "end_user_count"}
    patched = await gw.patch(f"{PLANS}/{plan['id']}", {"daily_token_limit": None, "name": "Pro+"})
    assert patched.status_code == 200
    assert patched.json()["daily_token_limit"] is None and patched.json()["name"] == "Pro+"
    assert patched.json()["monthly_token_limit"] == 20000  # untouched
    listed = (await gw.get(PLANS)).json()["data"]
    assert {p["name"] for p in listed} == {"Default", "Pro+"}
    assert (await gw.delete(f"{PLANS}/{plan['id']}")).status_code == 204
    assert (await gw.get(f"{PLANS}/{plan['id']}")).status_code == 404


async def test_exactly_one_default(gw):
    a = (await gw.post(PLANS, {"name": "A", "is_default": True})).json()
    b = (await gw.post(PLANS, {"name": "B", "is_default": True})).json()
    plans = (await gw.get(PLANS)).json()["data"]
    assert [p["id"] for p in plans if p["is_default"]] == [b["id"]]
    # New users land on the default plan.
    q = (await gw.get(QUOTA, params={"end_user_id": "n"})).json()
    assert q["rate_plan"]["id"] == b["id"]
    assert (await gw.delete(f"{PLANS}/{b['id']}")).status_code == 409  # default
    assert (await gw.patch(f"{PLANS}/{a['id']}", {"is_default": True})).status_code == 200
    plans = (await gw.get(PLANS)).json()["data"]
    assert [p["id"] for p in plans if p["is_default"]] == [a["id"]]


async def test_plan_in_use_cannot_be_deleted(gw):
    plan = (await gw.post(PLANS, {"name": "Used"})).json()
    await gw.get(QUOTA, params={"end_user_id": "u"})
    r = await gw.patch(f"{USERS}/u", {"rate_plan_id": plan["id"]})
    assert r.status_code == 200 and r.json()["rate_plan_id"] == plan["id"]
    r = await gw.delete(f"{PLANS}/{plan['id']}")
    assert r.status_code == 409 and r.json()["error"]["code"] == "plan_in_use"


async def test_plan_validation_names_the_field_and_saves_nothing(gw):
    before = (await gw.get(PLANS)).json()["data"]
    cases = [
        ({"name": ""}, "name"),
        ({"name": "x", "daily_request_limit": -1}, "daily_request_limit"),
        ({"name": "x", "daily_request_limit": 1.5}, "daily_request_limit"),
        ({"name": "x", "daily_cost_limit_usd": "abc"}, "daily_cost_limit_usd"),
        ({"name": "x", "markup_percentage": "-5"}, "markup_percentage"),
        ({"name": "x", "overage_action": "explode"}, "overage_action"),
        ({"name": "x", "allowed_models": "gpt-4o"}, "allowed_models"),
        ({"name": "x", "surprise": 1}, "surprise"),
    ]
    for body, field in cases:
        r = await gw.post(PLANS, body)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["error"]["param"] == field
    assert (await gw.get(PLANS)).json()["data"] == before


async def test_end_users_search_filter_paginate(gw):
    for i in range(7):
        await gw.get(QUOTA, params={"end_user_id": f"user-{i}"})
    await gw.patch(f"{USERS}/user-3", {"email": "Alice@Example.com", "name": "Alice"})
    await gw.patch(f"{USERS}/user-5", {"blocked": True})
    found = (await gw.get(USERS, params={"search": "alice"})).json()["data"]
    assert [u["end_user_id"] for u in found] == ["user-3"]
    blocked = (await gw.get(USERS, params={"blocked": "true"})).json()["data"]
    assert [u["end_user_id"] for u in blocked] == ["user-5"]
    seen, cursor = [], None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await gw.get(USERS, params=params)).json()
        seen += [u["end_user_id"] for u in page["data"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == sorted(f"user-{i}" for i in range(7))
    assert (await gw.get(USERS, params={"cursor": "garbage!"})).status_code == 422


async def test_end_user_patch_validation(gw):
    await gw.get(QUOTA, params={"end_user_id": "p"})
    assert (await gw.patch(f"{USERS}/p", {"blocked": "yes"})).status_code == 422
    assert (await gw.patch(f"{USERS}/p", {"rate_plan_id": "plan_nope"})).status_code == 422
    assert (await gw.patch(f"{USERS}/p", {"email": "not-an-email"})).status_code == 422
    assert (await gw.patch(f"{USERS}/nobody", {"blocked": True})).status_code == 404
    assert (await gw.get(f"{USERS}/p")).json()["blocked"] is False


async def test_config_and_default_markup(gw):
    r = await gw.patch(
        "/api/v1/billing/config",
        {"default_markup_percentage": "50", "default_flat_rate_per_request": 0.01},
    )
    assert r.status_code == 200, r.text
    assert r.json()["default_markup_percentage"] == "50"
    assert r.json()["default_flat_rate_per_request"] == "0.01"
    ev = (await gw.post(EVENTS, {"end_user_id": "c", "cost_usd": "0.02"})).json()["events"][0]
    assert ev["charge_usd"] == "0.04"  # 0.02 × 1.5 + 0.01
    assert (await gw.patch("/api/v1/billing/config", {"currency": "XYZ"})).status_code == 422
    assert (await gw.get("/api/v1/billing/config")).json()["currency"] == "USD"


async def test_revenue_margin_and_top_users(gw, clock):
    await gw.post(PLANS, {"name": "M", "is_default": True, "markup_percentage": "100"})
    await gw.post(
        EVENTS,
        {
            "events": [
                {"end_user_id": "big", "cost_usd": "2"},
                {"end_user_id": "small", "cost_usd": "0.5"},
                {"end_user_id": "big", "cost_usd": "1", "timestamp": "2026-11-14T10:00:00Z"},
            ]
        },
    )
    rev = (
        await gw.get("/api/v1/billing/revenue", params={"from": "2026-11-01", "to": "2026-11-30"})
    ).json()
    assert (rev["revenue_usd"], rev["provider_cost_usd"], rev["margin_usd"]) == ("7", "3.5", "3.5")
    assert [u["end_user_id"] for u in rev["top_users"]] == ["big", "small"]
    assert [(d["date"], d["revenue_usd"]) for d in rev["daily"]] == [
        ("2026-11-14", "2"),
        ("2026-11-15", "5"),
    ]
    usage = (
        await gw.get(f"{USERS}/big/usage", params={"granularity": "month", "from": "2026-11-01"})
    ).json()
    assert usage["data"] == [
        {
            "period": "2026-11",
            "requests": 2,
            "prompt_tokens": 0,
            "completion_tokens": 0,
            "total_tokens": 0,
            "provider_cost_usd": "3",
            "markup_usd": "3",
            "charge_usd": "6",
            "unpriced_requests": 0,
        }
    ]
    bad = await gw.get("/api/v1/billing/revenue", params={"from": "2026-12-01", "to": "2026-11-01"})
    assert bad.status_code == 422
