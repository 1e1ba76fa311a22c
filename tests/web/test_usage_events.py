"""usage-events over HTTP: pricing, idempotency, batches, settlement, environments."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from genai_prices import Usage, calc_price

EVENTS = "/api/v1/billing/usage-events"
QUOTA = "/api/v1/billing/check-quota"
PLANS = "/api/v1/billing/rate-plans"


async def default_plan(gw, **fields):
    r = await gw.post(PLANS, {"name": "P", "is_default": True, **fields})
    assert r.status_code == 201, r.text
    return r.json()


async def test_single_event_with_cost_gets_markup_and_fee(gw):
    await default_plan(gw, markup_percentage="20", flat_rate_per_request="0.0005")
    r = await gw.post(
        EVENTS,
        {
            "end_user_id": "u",
            "model": "gpt-4o",
            "prompt_tokens": 10,
            "completion_tokens": 5,
            "cost_usd": "0.001",
            "event_id": "e1",
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["recorded"], body["duplicates"], body["failed"], body["total"]) == (1, 0, 0, 1)
    ev = body["events"][0]
    assert ev["status"] == "recorded" and ev["priced"] is True
    assert ev["provider_cost_usd"] == "0.001"
    assert ev["charge_usd"] == "0.0017"  # 0.001 × 1.2 + 0.0005
    assert ev["markup_usd"] == "0.0007"


async def test_cost_absent_is_priced_from_the_table(gw):
    r = await gw.post(
        EVENTS,
        {
            "end_user_id": "u",
            "model": "gpt-4o",
            "provider": "openai",
            "prompt_tokens": 1000,
            "completion_tokens": 500,
        },
    )
    ev = r.json()["events"][0]
    expected = calc_price(
        Usage(input_tokens=1000, output_tokens=500), "gpt-4o", provider_id="openai"
    ).total_price
    assert ev["priced"] is True
    assert Decimal(ev["provider_cost_usd"]) == expected


async def test_unknown_model_is_unpriced_not_zero_and_alerted(gw):
    r = await gw.post(
        EVENTS,
        {
            "end_user_id": "u",
            "model": "my-private-llm-v9",
            "prompt_tokens": 7,
            "completion_tokens": 3,
        },
    )
    ev = r.json()["events"][0]
    assert ev["status"] == "recorded"
    assert ev["priced"] is False
    assert ev["provider_cost_usd"] is None and ev["charge_usd"] is None
    alerts = (await gw.get("/api/v1/billing/alerts")).json()["data"]
    assert any(
        a["kind"] == "unpriced_model" and "my-private-llm-v9" in a["message"] for a in alerts
    )
    quota = (await gw.get(QUOTA, params={"end_user_id": "u"})).json()
    assert quota["usage"]["daily_tokens"]["used"] == 10
    assert quota["usage"]["daily_requests"]["used"] == 1


async def test_replay_is_duplicate_and_changed_payload_is_409(gw):
    event = {"end_user_id": "u", "model": "gpt-4o", "cost_usd": "0.01", "event_id": "same"}
    first = (await gw.post(EVENTS, event)).json()
    again = await gw.post(EVENTS, event)
    assert again.status_code == 200
    assert again.json()["duplicates"] == 1 and again.json()["recorded"] == 0
    assert again.json()["events"][0]["charge_usd"] == first["events"][0]["charge_usd"]
    changed = await gw.post(EVENTS, {**event, "cost_usd": "0.02"})
    assert changed.status_code == 409
    assert changed.json()["error"]["code"] == "event_conflict"
    quota = (await gw.get(QUOTA, params={"end_user_id": "u"})).json()
    assert quota["usage"]["daily_requests"]["used"] == 1
    assert quota["usage"]["daily_cost_usd"]["used"] == "0.01"


async def test_idempotency_key_header(gw):
    event = {"end_user_id": "u", "cost_usd": "0.5"}
    h = {"Idempotency-Key": "hdr-1"}
    a = (await gw.post(EVENTS, event, headers=h)).json()
    b = (await gw.post(EVENTS, event, headers=h)).json()
    assert a["events"][0]["event_id"] == "hdr-1"
    assert (a["recorded"], b["duplicates"]) == (1, 1)


async def test_concurrent_replays_record_each_event_once(gw):
    events = [
        {
            "end_user_id": f"u{i % 10}",
            "cost_usd": "0.000000001",
            "event_id": f"id-{i}",
            "prompt_tokens": 1,
        }
        for i in range(1000)
    ]
    batches = [{"events": events[i : i + 100]} for i in range(0, 1000, 100)]
    # Every batch is sent three times, all at once.
    results = await asyncio.gather(*(gw.post(EVENTS, b) for b in batches * 3))
    assert all(r.status_code == 200 for r in results)
    recorded = sum(r.json()["recorded"] for r in results)
    duplicates = sum(r.json()["duplicates"] for r in results)
    assert (recorded, duplicates) == (1000, 2000)
    revenue = (
        await gw.get("/api/v1/billing/revenue", params={"from": "2026-11-01", "to": "2026-11-30"})
    ).json()
    assert revenue["requests"] == 1000
    assert revenue["provider_cost_usd"] == "0.000001"


async def test_batch_with_a_bad_event_records_the_rest(gw):
    batch = {
        "events": [
            {"end_user_id": "u", "cost_usd": "0.1", "event_id": "b1"},
            {"end_user_id": "u", "cost_usd": "-1", "event_id": "b2"},
            {"cost_usd": "0.1", "event_id": "b3"},
            {"end_user_id": "u", "prompt_tokens": -5, "event_id": "b4"},
            {"end_user_id": "u", "cost_usd": "0.2", "event_id": "b5"},
        ]
    }
    body = (await gw.post(EVENTS, batch)).json()
    assert (body["recorded"], body["failed"], body["total"]) == (2, 3, 5)
    failed = {e["index"]: e["error"] for e in body["events"] if e["status"] == "failed"}
    assert set(failed) == {1, 2, 3}
    assert "cost_usd" in failed[1] and "end_user_id" in failed[2] and "prompt_tokens" in failed[3]


async def test_future_timestamp_and_limits_rejected(gw, clock):
    ahead = (clock.current.replace(microsecond=0)).isoformat().replace("+00:00", "Z")
    ok = await gw.post(EVENTS, {"end_user_id": "u", "timestamp": ahead})
    assert ok.status_code == 200
    far = clock.current.replace(year=clock.current.year + 1).isoformat()
    r = await gw.post(EVENTS, {"end_user_id": "u", "timestamp": far})
    assert r.status_code == 422 and "future" in r.json()["error"]["message"]
    r = await gw.post(EVENTS, {"events": [{"end_user_id": "u"}] * 1001})
    assert r.status_code == 422 and r.json()["error"]["param"] == "events"
    r = await gw.post(EVENTS, {"end_user_id": "u", "cost_usd": "NaN"})
    assert r.status_code == 422
    r = await gw.post(
        EVENTS,
        content=b'{"end_user_id": "u", "cost_usd": NaN}',
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 400


async def test_control_characters_and_deep_nesting_are_refused(gw):
    bad_ids = ["u\x00", "tab\tinside", "a\x1fb", "line\nbreak"]
    batch = {"events": [{"end_user_id": i, "cost_usd": "0.1"} for i in bad_ids]}
    batch["events"].append({"end_user_id": "fine \x7f é", "cost_usd": "0.1"})  # DEL is no control
    body = (await gw.post(EVENTS, batch)).json()
    assert (body["recorded"], body["failed"]) == (1, 4)
    assert all("control characters" in e["error"] for e in body["events"][:4])

    # 32 levels of nesting are allowed, 33 are not (scalars beside them do not count).
    def nested(levels: int) -> dict:
        value: object = 1
        for _ in range(levels - 2):
            value = {"k": value, "flat": [1, "x", None]}
        return {"end_user_id": "u", "metadata": value}

    assert (await gw.post(EVENTS, nested(32))).status_code == 200
    r = await gw.post(EVENTS, nested(33))
    assert r.status_code == 400 and "deeper" in r.json()["error"]["message"]
    r = await gw.post(EVENTS, {"events": [nested(2)] * 3 + [{"end_user_id": "u", "m": [[[[]]]]}]})
    assert r.status_code == 200


async def test_money_in_json_numbers_is_exact(gw):
    # 0.1 + 0.2 as floats would be 0.30000000000000004; as decimals it is 0.3.
    raw = (
        b'{"events": [{"end_user_id": "m", "cost_usd": 0.1},'
        b' {"end_user_id": "m", "cost_usd": 0.2}]}'
    )
    r = await gw.post(EVENTS, content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 200
    quota = (await gw.get(QUOTA, params={"end_user_id": "m"})).json()
    assert quota["usage"]["daily_cost_usd"]["used"] == "0.3"


async def test_reservation_is_settled_not_counted_twice(gw):
    await default_plan(gw, daily_request_limit=5)
    res = (await gw.get(QUOTA, params={"end_user_id": "s", "reserve": "true"})).json()
    await gw.post(
        EVENTS,
        {
            "end_user_id": "s",
            "reservation_id": res["reservation_id"],
            "prompt_tokens": 3,
            "cost_usd": "0.01",
        },
    )
    usage = (await gw.get(QUOTA, params={"end_user_id": "s"})).json()["usage"]
    assert usage["daily_requests"]["used"] == 1
    assert usage["daily_tokens"]["used"] == 3


async def test_test_key_usage_never_appears_in_live(gw):
    await gw.post(
        EVENTS, {"end_user_id": "shared", "cost_usd": "1.5", "prompt_tokens": 10}, env="test"
    )
    live_q = (await gw.get(QUOTA, params={"end_user_id": "shared"})).json()
    assert live_q["usage"]["daily_tokens"]["used"] == 0
    live_rev = (await gw.get("/api/v1/billing/revenue")).json()
    test_rev = (await gw.get("/api/v1/billing/revenue", env="test")).json()
    assert live_rev["revenue_usd"] == "0" and test_rev["revenue_usd"] == "1.5"
    # The live check-quota above created a live "shared" user; it has no usage at all.
    live_usage = (await gw.get("/api/v1/billing/end-users/shared/usage")).json()
    assert live_usage["data"] == []
    assert (await gw.get("/api/v1/billing/end-users/never-seen/usage")).status_code == 404
    test_usage = (await gw.get("/api/v1/billing/end-users/shared/usage", env="test")).json()
    assert test_usage["data"][0]["charge_usd"] == "1.5"


async def test_concurrent_overlapping_batches_record_each_event_once(gw, clock):
    """Batches racing over the same new users and the same event ids (a client retrying
    while its first attempt is still in flight): every user is created once, every event
    id is recorded exactly once (the others say duplicate, a reused id with another
    payload says conflict), and the rollups equal the sum of the events."""
    from sqlalchemy import func, select

    from meterline.adapters.db import tables as t

    await default_plan(gw, markup_percentage="10", flat_rate_per_request="0.0001")
    at = clock.current.replace(microsecond=0).isoformat()

    def event(i: int) -> dict[str, object]:
        return {
            "end_user_id": f"racer_{i % 37}",
            "model": "gpt-4o" if i % 3 else "claude-3-5-sonnet",
            "provider": "openai" if i % 3 else "anthropic",
            "prompt_tokens": 100 + i,
            "completion_tokens": 10 + i % 7,
            "event_id": f"race-{i}",
            "timestamp": at,
        }

    r = await gw.post(EVENTS, {**event(0), "event_id": "taken"})
    assert r.status_code == 200
    ids_per_batch = [range(s, s + 120) for s in (0, 40, 80, 0, 60, 100)]
    batches = [
        {"events": [*(event(i) for i in ids), {**event(1), "event_id": "taken"}]}
        for ids in ids_per_batch
    ]
    replies = await asyncio.gather(*(gw.post(EVENTS, b) for b in batches))
    assert all(r.status_code == 200 for r in replies), [r.text for r in replies]
    statuses: dict[str, list[str]] = {}
    for reply in replies:
        for ev in reply.json()["events"]:
            statuses.setdefault(ev["event_id"], []).append(ev["status"])
    distinct = {f"race-{i}" for ids in ids_per_batch for i in ids}
    for event_id in distinct:
        assert statuses[event_id].count("recorded") == 1, (event_id, statuses[event_id])
        assert set(statuses[event_id]) <= {"recorded", "duplicate"}
    assert set(statuses["taken"]) == {"failed"}
    assert sum(r.json()["recorded"] for r in replies) == len(distinct)

    engine = gw.container.engine
    async with engine.connect() as conn:
        users = (
            await conn.execute(
                select(t.end_users.c.end_user_id, func.count()).group_by(t.end_users.c.end_user_id)
            )
        ).all()
        events = (
            await conn.execute(
                select(
                    func.count(),
                    func.sum(t.usage_events.c.total_tokens),
                    func.sum(t.usage_events.c.provider_cost_nanos),
                    func.sum(t.usage_events.c.charge_nanos),
                )
            )
        ).one()
        rollups = (
            await conn.execute(
                select(
                    func.sum(t.usage_daily_rollups.c.requests),
                    func.sum(t.usage_daily_rollups.c.total_tokens),
                    func.sum(t.usage_daily_rollups.c.provider_cost_nanos),
                    func.sum(t.usage_daily_rollups.c.charge_nanos),
                )
            )
        ).one()
    assert sorted(u for u, _ in users) == sorted({f"racer_{i % 37}" for i in range(160)})
    assert all(n == 1 for _, n in users)
    assert events[0] == len(distinct) + 1  # plus "taken"
    assert tuple(int(v) for v in rollups) == tuple(int(v) for v in events)
    # every price came from the table, exactly as calc_price gives it
    stored = {ev["event_id"]: ev for reply in replies for ev in reply.json()["events"]}
    sample = event(41)
    expected = calc_price(
        Usage(input_tokens=sample["prompt_tokens"], output_tokens=sample["completion_tokens"]),
        "gpt-4o",
        provider_id="openai",
        genai_request_timestamp=clock.current,
    ).total_price
    assert Decimal(stored["race-41"]["provider_cost_usd"]) == expected
