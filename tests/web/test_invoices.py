"""Invoices over HTTP on sqlite+memory and postgres+redis: generation reconciles with the
events sent and with revenue, finalized invoices never change, CSV opens cleanly, test
keys never see live usage, unpriced usage blocks finalization until repriced."""

from __future__ import annotations

import csv
import io
import random
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal

EVENTS = "/api/v1/billing/usage-events"
INVOICES = "/api/v1/billing/invoices"
PLANS = "/api/v1/billing/rate-plans"
OCT = {"period_start": "2026-10-01", "period_end": "2026-10-31"}
NOV = {"period_start": "2026-11-01", "period_end": "2026-11-30"}
D = Decimal


def cents(amount: Decimal) -> int:
    return int((amount * 100).quantize(D(1), rounding=ROUND_HALF_UP))


async def send(gw, events, env="live"):
    r = await gw.post(EVENTS, {"events": events}, env=env)
    assert r.status_code == 200, r.text
    assert r.json()["recorded"] == len(events), r.text
    return r.json()["events"]


async def test_generated_invoices_reconcile_with_events_and_revenue(gw):
    rng = random.Random(20261101)
    plans = {}
    for name, markup, fee in (("A", "12.5", "0.0001"), ("B", "0", "0"), ("C", "33.333", "0.003")):
        body = {"name": name, "markup_percentage": markup, "flat_rate_per_request": fee}
        plans[name] = (await gw.post(PLANS, body)).json()["id"]
    users = [f"user-{i}" for i in range(6)]
    for i, user in enumerate(users):
        await gw.client.get(  # create the user, then put it on a plan
            "/api/v1/billing/check-quota", params={"end_user_id": user}, headers=gw.headers()
        )
        plan = plans["ABC"[i % 3]]
        assert (
            await gw.patch(f"/api/v1/billing/end-users/{user}", {"rate_plan_id": plan})
        ).status_code == 200
    models = [("openai", "gpt-4o"), ("anthropic", "claude-x"), ("groq", "llama-3")]
    batch = []
    for n in range(120):
        provider, model = rng.choice(models)
        batch.append(
            {
                "end_user_id": rng.choice(users),
                "provider": provider,
                "model": model,
                "prompt_tokens": rng.randint(1, 5000),
                "completion_tokens": rng.randint(0, 2000),
                "cost_usd": f"{rng.randint(0, 3)}.{rng.randint(0, 10**9 - 1):09d}",
                "event_id": f"e{n}",
                "timestamp": f"2026-10-{rng.randint(1, 31):02d}T{rng.randint(0, 23):02d}:00:00Z",
            }
        )
    results = await send(gw, batch)
    expected: dict[tuple[str, str, str], Decimal] = defaultdict(D)
    fees: dict[tuple[str, str, str], Decimal] = defaultdict(D)
    fee_of = {f"user-{i}": D(("0.0001", "0", "0.003")[i % 3]) for i in range(6)}
    for sent, res in zip(batch, results, strict=True):
        key = (sent["end_user_id"], sent["provider"], sent["model"])
        expected[key] += D(res["charge_usd"])
        fees[key] += fee_of[sent["end_user_id"]]

    r = await gw.post(INVOICES, OCT)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["generated"] == len({k[0] for k in expected}) and body["errors"] == []
    total_charge = D(0)
    for inv in body["invoices"]:
        assert inv["status"] == "draft" and inv["number"] is None
        assert inv["total_cents"] == sum(ln["amount_cents"] for ln in inv["lines"])
        for ln in inv["lines"]:
            exact = expected[(inv["end_user_id"], ln["provider"], ln["model"])]
            assert D(ln["charge_usd"]) == exact
            assert ln["amount_cents"] == cents(exact)
            # Flat fees shown apart: requests × the plan's fee, inside the markup.
            assert D(ln["flat_fees_usd"]) == fees[(inv["end_user_id"], ln["provider"], ln["model"])]
            assert D(ln["flat_fees_usd"]) <= D(ln["markup_usd"])
            total_charge += D(ln["charge_usd"])
    assert len([1 for inv in body["invoices"] for _ in inv["lines"]]) == len(expected)
    revenue = (
        await gw.get("/api/v1/billing/revenue", params={"from": "2026-10-01", "to": "2026-10-31"})
    ).json()
    assert D(revenue["revenue_usd"]) == total_charge

    # Regenerating replaces drafts (same ids, same numbers).
    again = (await gw.post(INVOICES, OCT)).json()
    assert sorted(i["id"] for i in again["invoices"]) == sorted(i["id"] for i in body["invoices"])

    # CSV: one row per line and a total row per invoice; amounts match.
    r = await gw.get(f"{INVOICES}/export", params={**OCT, "format": "csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8"))))
    lines = [row for row in rows if row["row_type"] == "line"]
    totals = {row["invoice_id"]: row for row in rows if row["row_type"] == "total"}
    assert len(lines) == len(expected)
    for inv in body["invoices"]:
        assert D(totals[inv["id"]]["amount"]) * 100 == inv["total_cents"]
        mine = [row for row in lines if row["invoice_id"] == inv["id"]]
        assert sum(D(row["amount"]) for row in mine) * 100 == inv["total_cents"]

    js = (await gw.get(f"{INVOICES}/export", params={**OCT, "include": "events"})).json()
    assert len(js["events"]) == 120 and len(js["invoices"]) == len(body["invoices"])
    ev_csv = await gw.get(
        f"{INVOICES}/export", params={**OCT, "format": "csv", "include": "events"}
    )
    assert len(list(csv.DictReader(io.StringIO(ev_csv.text)))) == 120


async def test_finalized_invoice_never_changes_and_late_usage_moves_on(gw):
    await send(
        gw,
        [
            {
                "end_user_id": "u",
                "model": "gpt-4o",
                "cost_usd": "1.005",
                "event_id": "a",
                "timestamp": "2026-10-10T10:00:00Z",
            }
        ],
    )
    [draft] = (await gw.post(INVOICES, OCT)).json()["invoices"]
    fin = await gw.post(f"{INVOICES}/{draft['id']}/finalize")
    assert fin.status_code == 200, fin.text
    final = fin.json()
    assert final["status"] == "open" and final["number"] == "ML-000001"
    assert (await gw.post(f"{INVOICES}/{draft['id']}/finalize")).json()["error"][
        "code"
    ] == "invalid_transition"
    # late usage for October arrives in November
    await send(
        gw,
        [
            {
                "end_user_id": "u",
                "model": "gpt-4o",
                "cost_usd": "2",
                "event_id": "late",
                "timestamp": "2026-10-31T23:00:00Z",
            },
            {
                "end_user_id": "u",
                "model": "gpt-4o",
                "cost_usd": "3",
                "event_id": "nov",
                "timestamp": "2026-11-02T00:00:00Z",
            },
        ],
    )
    regen = (await gw.post(INVOICES, OCT)).json()
    assert regen["generated"] == 0 and regen["skipped"][0]["reason"] == "finalized"
    assert (await gw.get(f"{INVOICES}/{draft['id']}")).json() == final
    [nov] = (await gw.post(INVOICES, NOV)).json()["invoices"]
    assert [(ln["late"], ln["charge_usd"]) for ln in nov["lines"]] == [(False, "3"), (True, "2")]
    assert nov["total_cents"] == 500
    listed = (await gw.get(INVOICES, params={"status": "open"})).json()["data"]
    assert [i["id"] for i in listed] == [draft["id"]]
    void = (await gw.post(f"{INVOICES}/{draft['id']}/void")).json()
    assert void["status"] == "void"
    assert (await gw.post(f"{INVOICES}/{nov['id']}/void")).status_code == 409  # a draft
    assert (await gw.get(INVOICES, params={"status": "bogus"})).status_code == 422


async def test_test_key_invoices_never_show_live_usage(gw):
    await send(
        gw,
        [
            {
                "end_user_id": "u",
                "model": "gpt-4o",
                "cost_usd": "1",
                "event_id": "l",
                "timestamp": "2026-10-10T10:00:00Z",
            }
        ],
    )
    await send(
        gw,
        [
            {
                "end_user_id": "u",
                "model": "gpt-4o",
                "cost_usd": "7",
                "event_id": "t",
                "timestamp": "2026-10-10T10:00:00Z",
            }
        ],
        env="test",
    )
    live = (await gw.post(INVOICES, OCT)).json()["invoices"]
    test = (await gw.post(INVOICES, OCT, env="test")).json()["invoices"]
    assert [i["total_cents"] for i in live] == [100] and [i["total_cents"] for i in test] == [700]
    assert (await gw.get(f"{INVOICES}/{live[0]['id']}", env="test")).status_code == 404
    assert [i["id"] for i in (await gw.get(INVOICES, env="test")).json()["data"]] == [test[0]["id"]]


async def test_unpriced_usage_blocks_finalize_until_priced_and_repriced(gw):
    await send(
        gw,
        [
            {
                "end_user_id": "u",
                "model": "mystery-9000",
                "prompt_tokens": 1_000_000,
                "completion_tokens": 500_000,
                "event_id": "m",
                "timestamp": "2026-10-10T10:00:00Z",
            }
        ],
    )
    [draft] = (await gw.post(INVOICES, OCT)).json()["invoices"]
    assert draft["lines"][0]["unpriced_requests"] == 1
    r = await gw.post(f"{INVOICES}/{draft['id']}/finalize")
    assert r.status_code == 409 and r.json()["error"]["code"] == "unpriced_usage"
    assert "mystery-9000" in r.json()["error"]["message"]
    put = await gw.client.put(
        "/api/v1/billing/prices/mystery-9000",
        json={"input_per_mtok": "2.5", "output_per_mtok": 10},
        headers=gw.headers(),
    )
    assert put.status_code == 200, put.text
    assert (await gw.get("/api/v1/billing/prices")).json()["data"][0]["input_per_mtok"] == "2.5"
    rep = (await gw.post("/api/v1/billing/usage/reprice", {"model": "mystery-9000"})).json()
    assert rep == {"repriced": 1, "still_unpriced": 0}
    [draft] = (await gw.post(INVOICES, OCT)).json()["invoices"]
    fin = await gw.post(f"{INVOICES}/{draft['id']}/finalize")
    assert fin.status_code == 200, fin.text
    assert fin.json()["lines"][0]["provider_cost_usd"] == "7.5"
    revenue = (
        await gw.get("/api/v1/billing/revenue", params={"from": "2026-10-01", "to": "2026-10-31"})
    ).json()
    assert revenue["provider_cost_usd"] == "7.5" and revenue["unpriced_requests"] == 0


async def test_bad_input_is_4xx(gw):
    bad = [
        {"period_start": "2026-10-31", "period_end": "2026-10-01"},
        {"period_start": "2026-01-01", "period_end": "2027-01-02"},
        {"period_start": "10/01/2026", "period_end": "2026-10-31"},
        {"period_end": "2026-10-31"},
        {**OCT, "end_user_ids": "u"},
        {**OCT, "extra": 1},
    ]
    for body in bad:
        r = await gw.post(INVOICES, body)
        assert r.status_code == 422, (body, r.text)
        assert set(r.json()["error"]) >= {"type", "code", "message"}
    r = await gw.post(INVOICES, {**OCT, "send_via_stripe": True})
    assert r.status_code == 200
    assert (await gw.get(f"{INVOICES}/inv_nope")).status_code == 404
    assert (
        await gw.get(f"{INVOICES}/export", params={"period_start": "x", "period_end": "y"})
    ).status_code == 422
