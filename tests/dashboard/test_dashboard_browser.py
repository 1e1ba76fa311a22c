"""The dashboard in a real browser (Debian's Chromium driven by Playwright) against a live
server on SQLite, with the fake provider behind the gateway."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import openai
import pytest
from playwright.async_api import Browser, Page, async_playwright

from conftest import ADMIN_EMAIL, ADMIN_PASSWORD, CHROMIUM, CHROMIUM_ARGS

pytestmark = pytest.mark.skipif(
    not __import__("os").path.exists(CHROMIUM),
    reason="Debian's Chromium is missing: `make test` installs it (apt-get install chromium)",
)

QUOTA = "/api/v1/billing/check-quota"


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        await chromium.close()


async def signed_in_page(browser: Browser, url: str, *, width: int = 1280) -> Page:
    page = await browser.new_page(viewport={"width": width, "height": 900})
    page.set_default_timeout(10_000)
    await page.goto(url + "/dashboard/login")
    await page.get_by_label("Email").fill(ADMIN_EMAIL)
    await page.get_by_label("Password").fill(ADMIN_PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url("**/dashboard/configuration")
    return page


async def switch_to(page: Page, env: str) -> None:
    async with page.expect_navigation():
        await page.get_by_role("button", name=env.capitalize(), exact=True).click()
    pressed = page.get_by_role("button", name=env.capitalize(), exact=True)
    assert await pressed.get_attribute("aria-pressed") == "true"


async def test_operator_creates_a_plan_assigns_it_and_blocks_a_user(browser, live_dash):
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(10_000)
    # a wrong password is refused, with a message
    await page.goto(live_dash.url + "/dashboard/login")
    await page.get_by_label("Email").fill(ADMIN_EMAIL)
    await page.get_by_label("Password").fill("not the password")
    await page.get_by_role("button", name="Sign in").click()
    assert "Wrong email or password" in await page.locator("#login-error").inner_text()
    await page.get_by_label("Password").fill(ADMIN_PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url("**/dashboard/configuration")

    # an invalid limit: the API's message beside the field, nothing saved
    await page.get_by_role("link", name="Rate Plans").click()
    await page.get_by_role("link", name="New plan").click()
    await page.get_by_label("Name").fill("Pro")
    await page.get_by_label("Requests per day").fill("-3")
    await page.get_by_role("button", name="Create plan").click()
    error = page.locator("#err-daily_request_limit")
    assert "must be between 0 and" in await error.inner_text()
    async with live_dash.api() as api:
        plans = (await api.get("/api/v1/billing/rate-plans")).json()["data"]
        assert [p["name"] for p in plans] == ["Default"]
        # fix it: the form kept what was typed
        assert await page.get_by_label("Name").input_value() == "Pro"
        await page.get_by_label("Requests per day").fill("1000")
        await page.get_by_label("Markup (%)").fill("25")
        await page.get_by_role("button", name="Create plan").click()
        await page.wait_for_url("**/dashboard/plans")
        assert await page.locator('tr[data-plan="pro"]').count() == 1
        plans = (await api.get("/api/v1/billing/rate-plans")).json()["data"]
        pro = next(p for p in plans if p["name"] == "Pro")
        assert pro["daily_request_limit"] == 1000 and pro["markup_percentage"] == "25"

        # a live end user appears once the app checks their quota
        r = await api.get(QUOTA, params={"end_user_id": "alice"})
        assert r.json()["allowed"] is True
        await page.get_by_role("link", name="End Users").click()  # Test: alice is live
        await page.get_by_role("heading", name="No end users in test yet").wait_for()
        await switch_to(page, "live")
        row = page.locator('tr[data-user="alice"]')
        async with page.expect_navigation():
            await row.get_by_label("Plan of alice").select_option(label="Pro")
        user = (await api.get("/api/v1/billing/end-users/alice")).json()
        assert user["rate_plan_id"] == pro["id"]

        # block: check-quota and the gateway refuse the user
        await page.get_by_role("button", name="Block alice").click()
        await page.get_by_role("button", name="Unblock alice").wait_for()
        r = await api.get(QUOTA, params={"end_user_id": "alice"})
        assert r.json()["allowed"] is False and r.json()["reason"] == "user_blocked"
    client = openai.AsyncOpenAI(base_url=live_dash.url + "/v1", api_key=live_dash.live_key)
    with pytest.raises(openai.APIStatusError) as denied:
        await client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], user="alice"
        )
    assert denied.value.status_code in (403, 429)
    await client.close()


async def test_revenue_updates_live_and_equals_the_api(browser, live_dash):
    page = await signed_in_page(browser, live_dash.url)
    await switch_to(page, "live")
    await page.get_by_role("link", name="Revenue").click()
    assert await page.locator("#stat-requests").get_attribute("data-value") == "0"
    await page.evaluate("window.__noReload = true")

    client = openai.AsyncOpenAI(base_url=live_dash.url + "/v1", api_key=live_dash.live_key)
    for i in range(4):
        await client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": f"hello {i}"}],
            user=f"user-{i % 2}",
        )
    await client.close()
    sent = time.monotonic()
    await page.wait_for_function(
        "document.querySelector('#stat-requests').dataset.value === '4'", timeout=5000
    )
    assert time.monotonic() - sent < 2.5  # polled every 1.5 s
    assert await page.evaluate("window.__noReload === true")  # same document: no reload

    async with live_dash.api() as api:
        body = (await api.get("/api/v1/billing/revenue")).json()
    stat = page.locator
    assert await stat("#stat-revenue").get_attribute("data-value") == body["revenue_usd"]
    assert await stat("#stat-cost").get_attribute("data-value") == body["provider_cost_usd"]
    assert await stat("#stat-margin").get_attribute("data-value") == body["margin_usd"]
    assert body["requests"] == 4 and body["revenue_usd"] != "0"
    assert await stat("#top-users tbody tr").count() == 2
    assert "gpt-4o-mini" in await stat("#top-models").inner_text()
