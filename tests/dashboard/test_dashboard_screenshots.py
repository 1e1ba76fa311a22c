"""Screenshots of every tab, for the README (docs/screenshots/): first with light data,
then with a realistic month (≈50 end users, 30 days of usage reported with timestamps
through the usage-events API, three plans, a few blocked users, an unpriced model)."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta

import pytest
from test_dashboard_browser import browser, signed_in_page, switch_to  # noqa: F401

from conftest import SCREENSHOTS

PLANS = "/api/v1/billing/rate-plans"
EVENTS = "/api/v1/billing/usage-events"
MODELS = [
    ("gpt-4o-mini", "openai", 0.6),
    ("gpt-4o", "openai", 0.15),
    ("claude-3-5-haiku-latest", "anthropic", 0.2),
    ("my-finetune-v2", None, 0.05),  # no price in the table: shows as unpriced usage
]


async def shoot(page, name: str, *, full: bool = True) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.wait_for_timeout(100)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full)


async def all_tabs(page, prefix: str, user: str | None) -> None:
    for tab, path in (
        ("configuration", "/dashboard/configuration"),
        ("end-users", "/dashboard/end-users?sort=revenue"),
        ("plans", "/dashboard/plans"),
        ("revenue", "/dashboard/revenue"),
    ):
        await page.goto(page.url.split("/dashboard")[0] + path)
        await shoot(page, f"{prefix}-{tab}")
    if user:
        await page.goto(page.url.split("/dashboard")[0] + f"/dashboard/end-users/{user}")
        await shoot(page, f"{prefix}-end-user-detail")


def month_of_events(now: datetime, users: list[str]) -> list[dict[str, object]]:
    rng = random.Random(7)
    events: list[dict[str, object]] = []
    weights = {u: rng.paretovariate(1.3) for u in users}
    for day in range(30, -1, -1):
        weekday_boost = 0.6 if (now - timedelta(days=day)).weekday() >= 5 else 1.0
        for user in users:
            calls = int(rng.random() * 2.2 * weights[user] * weekday_boost)
            for _ in range(min(calls, 12)):
                model, provider, _ = rng.choices(MODELS, [m[2] for m in MODELS])[0]
                moment = now - timedelta(days=day, seconds=rng.randrange(0, 80_000))
                moment = min(moment, now - timedelta(seconds=5))
                event: dict[str, object] = {
                    "end_user_id": user,
                    "model": model,
                    "prompt_tokens": rng.randrange(200, 4000),
                    "completion_tokens": rng.randrange(50, 1200),
                    "timestamp": moment.isoformat(),
                }
                if provider:
                    event["provider"] = provider
                events.append(event)
    return events


@pytest.mark.slow
async def test_screenshots_light_and_realistic_month(browser, live_dash):  # noqa: F811
    page = await signed_in_page(browser, live_dash.url)
    await switch_to(page, "live")
    async with live_dash.api() as api:
        # ---- light data: two plans, three users, a handful of calls
        config = {"default_markup_percentage": "20", "default_flat_rate_per_request": "0.0002"}
        assert (await api.patch("/api/v1/billing/config", json=config)).status_code == 200
        free = (await api.get(PLANS)).json()["data"][0]
        await api.patch(
            f"{PLANS}/{free['id']}",
            json={"name": "Free", "daily_token_limit": 20000, "requests_per_minute": 10},
        )
        pro = (
            await api.post(
                PLANS,
                json={
                    "name": "Pro",
                    "monthly_token_limit": 5_000_000,
                    "monthly_cost_limit_usd": "50",
                    "markup_percentage": "30",
                    "flat_rate_per_request": "0.001",
                },
            )
        ).json()
        now = datetime.now(UTC)
        light = [
            {"end_user_id": u, "model": "gpt-4o-mini", "provider": "openai"}
            | {
                "prompt_tokens": 900 + i * 50,
                "completion_tokens": 300,
                "timestamp": now.isoformat(),
            }
            for i, u in enumerate(["acme-corp", "globex", "initech"] * 3)
        ]
        r = await api.post(EVENTS, json={"events": light})
        assert r.status_code == 200 and r.json()["recorded"] == 9, r.text
        await api.patch("/api/v1/billing/end-users/acme-corp", json={"rate_plan_id": pro["id"]})
        await all_tabs(page, "light", "acme-corp")

        # ---- a realistic month: 50 users, 30 days
        team = (
            await api.post(
                PLANS,
                json={
                    "name": "Team",
                    "overage_action": "alert_only",
                    "daily_request_limit": 40,
                    "markup_percentage": "40",
                },
            )
        ).json()
        names = [f"customer-{i:03d}" for i in range(50)]
        events = month_of_events(now, names)
        for start in range(0, len(events), 1000):
            r = await api.post(EVENTS, json={"events": events[start : start + 1000]})
            assert r.status_code == 200 and not r.json()["failed"], r.text[:500]
        changes = []
        for i, name in enumerate(names):
            change: dict[str, object] = {"email": f"billing@{name}.example", "name": name.title()}
            if i % 3 == 0:
                change["rate_plan_id"] = pro["id"]
            elif i % 5 == 0:
                change["rate_plan_id"] = team["id"]
            if i in (7, 19):
                change["blocked"] = True
            changes.append(api.patch(f"/api/v1/billing/end-users/{name}", json=change))
        assert all(r.status_code == 200 for r in await asyncio.gather(*changes))
    await all_tabs(page, "month", None)
    await page.goto(live_dash.url + "/dashboard/end-users?sort=revenue")
    top = await page.locator("#end-users tbody tr").first.get_attribute("data-user")
    await page.goto(live_dash.url + f"/dashboard/end-users/{top}")
    await shoot(page, "month-end-user-detail")
    await page.set_viewport_size({"width": 390, "height": 844})
    for tab in ("revenue", "end-users"):
        await page.goto(live_dash.url + f"/dashboard/{tab}")
        await shoot(page, f"phone-{tab}", full=False)
    assert len(list(SCREENSHOTS.glob("*.png"))) >= 12
