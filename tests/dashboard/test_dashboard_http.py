"""Dashboard without a browser: sign-in, session cookie, CSRF, attempt limit, scoping,
plan form validation — the rules the browser tests rely on, checked over plain HTTP."""

from __future__ import annotations

import re
from decimal import Decimal

from conftest import ADMIN_EMAIL, ADMIN_PASSWORD, csrf_of, sign_in


async def test_pages_need_a_session(dash_client):
    client, _ = dash_client
    for path in ("/dashboard/configuration", "/dashboard/end-users", "/dashboard/revenue"):
        r = await client.get(path)
        assert r.status_code == 303 and r.headers["location"] == "/dashboard/login"


async def test_sign_in_sets_a_hardened_cookie_and_sign_out_drops_it(dash_client):
    client, _ = dash_client
    page = await client.get("/dashboard/login")
    r = await client.post(
        "/dashboard/login",
        data={
            "email": ADMIN_EMAIL.upper(),
            "password": ADMIN_PASSWORD,
            "csrf_token": csrf_of(page.text),
        },
    )
    assert r.status_code == 303
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/dashboard" in cookie
    assert "secure" not in cookie  # plain http here; https sets Secure
    page = await client.get("/dashboard/configuration")
    assert page.status_code == 200 and ADMIN_EMAIL in page.text
    r = await client.post("/dashboard/logout", data={"csrf_token": csrf_of(page.text)})
    assert r.status_code == 303
    assert (await client.get("/dashboard/configuration")).status_code == 303


async def test_wrong_password_refused_and_sixth_attempt_rate_limited(dash_client):
    client, _ = dash_client
    token = csrf_of((await client.get("/dashboard/login")).text)
    for _ in range(5):
        r = await client.post(
            "/dashboard/login",
            data={"email": ADMIN_EMAIL, "password": "wrong", "csrf_token": token},
        )
        assert r.status_code == 401 and "Wrong email or password" in r.text
    r = await client.post(
        "/dashboard/login",
        data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "csrf_token": token},
    )
    assert r.status_code == 429 and "Too many sign-in attempts" in r.text
    assert int(r.headers["retry-after"]) > 0


async def test_post_without_csrf_token_is_refused(dash_client):
    client, dash = dash_client
    csrf = await sign_in(client)
    r = await client.post("/dashboard/plans", data={"name": "Sneaky"})
    assert r.status_code == 403
    r = await client.post("/dashboard/plans", data={"name": "Sneaky", "csrf_token": "x" + csrf})
    assert r.status_code == 403
    r = await client.post("/dashboard/login", data={"email": ADMIN_EMAIL, "password": "x"})
    assert r.status_code == 403
    plans, _ = await dash.container.management.list_plans(_ctx(dash))
    assert [p.name for p in plans] == ["Default"]


async def test_invalid_plan_limit_shows_the_api_error_and_saves_nothing(dash_client):
    client, dash = dash_client
    csrf = await sign_in(client)
    r = await client.post(
        "/dashboard/plans",
        data={"csrf_token": csrf, "name": "Pro", "daily_token_limit": "-5"},
    )
    assert r.status_code == 422
    assert "daily_token_limit must be between 0 and" in r.text
    assert 'aria-invalid="true"' in r.text and 'value="Pro"' in r.text
    plans, _ = await dash.container.management.list_plans(_ctx(dash))
    assert [p.name for p in plans] == ["Default"]
    r = await client.post(
        "/dashboard/plans",
        data={
            "csrf_token": csrf,
            "name": "Pro",
            "daily_token_limit": "100000",
            "monthly_cost_limit_usd": "25.50",
            "markup_percentage": "30",
            "allowed_models": "gpt-4o-mini\nanthropic/*",
        },
    )
    assert r.status_code == 303
    plans, _ = await dash.container.management.list_plans(_ctx(dash))
    pro = next(p for p in plans if p.name == "Pro")
    assert pro.limits.daily_token_limit == 100000
    assert pro.limits.monthly_cost_limit_usd == Decimal("25.50")
    assert pro.allowed_models == ("gpt-4o-mini", "anthropic/*")


async def test_environment_switch_scopes_end_users(dash_client):
    client, dash = dash_client
    csrf = await sign_in(client)
    async with _api(client, dash.live_key) as live, _api(client, dash.test_key) as test:
        assert (await live.get(QUOTA, params={"end_user_id": "live-only"})).status_code == 200
        assert (await test.get(QUOTA, params={"end_user_id": "test-only"})).status_code == 200
    page = (await client.get("/dashboard/end-users")).text  # Test by default
    assert "test-only" in page and "live-only" not in page
    r = await client.post(
        "/dashboard/scope",
        data={"csrf_token": csrf, "environment": "live", "next": "/dashboard/end-users"},
    )
    assert r.status_code == 303 and r.headers["location"] == "/dashboard/end-users"
    page = (await client.get("/dashboard/end-users")).text
    assert "live-only" in page and "test-only" not in page


async def test_api_key_created_once_and_revoked(dash_client):
    client, dash = dash_client
    csrf = await sign_in(client)
    r = await client.post("/dashboard/keys", data={"csrf_token": csrf, "environment": "test"})
    assert r.status_code == 200
    key = r.text.split('<code class="key">')[1].split("<")[0]
    assert key.startswith("mk_test_")
    async with _api(client, key) as api:
        assert (await api.get(QUOTA, params={"end_user_id": "u"})).status_code == 200
    keys = await dash.container.dashboard.api_keys(_ctx(dash))
    new = next(k for k in keys if key.startswith(k.prefix))
    page = (await client.get("/dashboard/configuration")).text
    assert key not in page and new.prefix in page
    r = await client.post(f"/dashboard/keys/{new.id}/revoke", data={"csrf_token": csrf})
    assert r.status_code == 200
    async with _api(client, key) as api:
        assert (await api.get(QUOTA, params={"end_user_id": "u"})).status_code == 401


def test_cli_admin_create(tmp_path):
    from typer.testing import CliRunner

    from meterline.cli import app

    env = {
        "METERLINE_HOME": str(tmp_path),
        "METERLINE_DATABASE_URL": f"sqlite:///{tmp_path}/cli.db",
        "METERLINE_SECRET_KEY": "t",
    }
    runner = CliRunner()
    assert runner.invoke(app, ["init", "--json"], env=env).exit_code == 0
    args = ["admin", "create", "--email", "Two@Example.com", "--password", "long password 2"]
    made = runner.invoke(app, args, env=env)
    assert made.exit_code == 0, made.output
    assert "Two@Example.com" in made.output
    again = runner.invoke(app, args, env=env)
    assert again.exit_code == 1 and "exists" in again.output
    short = runner.invoke(app, [*args[:3], "three@example.com", "--password", "short"], env=env)
    assert short.exit_code == 1 and "at least 10 characters" in short.output


QUOTA = "/api/v1/billing/check-quota"


def _api(client, key):
    import httpx

    return httpx.AsyncClient(
        transport=client._transport,
        base_url="http://meterline",
        headers={"Authorization": f"Bearer {key}"},
    )


def _ctx(dash):
    from meterline.domain.entities import Environment, Project
    from meterline.services.admin_auth import dashboard_context

    return dashboard_context(
        Project(id=dash.project_id, organization_id="", name=""), Environment.TEST
    )


async def test_invoices_generate_finalize_and_export(dash_client):
    client, dash = dash_client
    if getattr(dash.container, "invoicing", None) is None:
        import pytest

        pytest.skip("invoicing is not part of this build")
    csrf = await sign_in(client)
    async with _api(client, dash.test_key) as api:
        event = {"end_user_id": "inv-user", "model": "gpt-4o-mini", "provider": "openai"}
        r = await api.post(
            "/api/v1/billing/usage-events",
            json=event | {"prompt_tokens": 1000, "completion_tokens": 500, "cost_usd": "1.5"},
        )
        assert r.status_code == 200, r.text
    month = dash.container.dashboard.today().strftime("%Y-%m")
    r = await client.post(
        "/dashboard/invoices/generate", data={"csrf_token": csrf, "period": month}
    )
    assert r.status_code == 303 and "1+draft+invoice" in r.headers["location"]
    page = (await client.get("/dashboard/revenue")).text
    assert "inv-user" in page and "Finalize" in page
    invoice_id = re.search(r"/dashboard/invoices/([^/\"]+)/finalize", page).group(1)
    r = await client.post(f"/dashboard/invoices/{invoice_id}/finalize", data={"csrf_token": csrf})
    assert r.status_code == 303
    csv = await client.get("/dashboard/invoices.csv")
    assert csv.status_code == 200 and "inv-user" in csv.text
    assert "open" in (await client.get("/dashboard/revenue")).text


async def test_end_user_table_sorts_and_sums_like_the_usage_api(dash_client):
    client, dash = dash_client
    await sign_in(client)
    async with _api(client, dash.test_key) as api:
        for user, cost, n in (("a-small", "0.01", 1), ("b-big", "0.5", 3), ("c-none", None, 0)):
            if n == 0:
                await api.get(QUOTA, params={"end_user_id": user})
            for i in range(n):
                event = {"end_user_id": user, "model": "gpt-4o-mini", "cost_usd": cost}
                r = await api.post(
                    "/api/v1/billing/usage-events",
                    json=event | {"prompt_tokens": 10 * (i + 1), "completion_tokens": 5},
                )
                assert r.status_code == 200, r.text
        usage = (await api.get("/api/v1/billing/end-users/b-big/usage")).json()["data"]
    table = await dash.container.dashboard.end_users(_ctx(dash), sort="revenue")
    assert [r.user.end_user_id for r in table.rows] == ["b-big", "a-small", "c-none"]
    big = table.rows[0]
    assert big.month.requests == big.today.requests == 3 == sum(d["requests"] for d in usage)
    assert big.month.charge == Decimal(usage[-1]["charge_usd"])
    page = (await client.get("/dashboard/end-users?sort=tokens&q=B-B")).text
    assert "b-big" in page and "a-small" not in page
    page = (await client.get("/dashboard/end-users?blocked=true")).text
    assert "No end user matches these filters" in page


async def test_project_picker_appears_with_two_projects_and_scopes_pages(dash_client):
    client, dash = dash_client
    project = await dash.container.accounts.get_project(dash.project_id)
    other = await dash.container.accounts.create_project(project.organization_id, "Second app")
    csrf = await sign_in(client)
    page = (await client.get("/dashboard/plans")).text
    assert 'id="project-picker"' in page and "Second app" in page
    assert "Default" in page  # the first project's default plan
    r = await client.post(
        "/dashboard/scope",
        data={"csrf_token": csrf, "project_id": other.id, "next": "/dashboard/plans"},
    )
    assert r.status_code == 303
    page = (await client.get("/dashboard/plans")).text
    assert "No plan yet" in page  # the second project has none
    # a project of another organization cannot be chosen
    stranger = await dash.container.accounts.create_organization("Other org")
    foreign = await dash.container.accounts.create_project(stranger, "Not yours")
    await client.post(
        "/dashboard/scope", data={"csrf_token": csrf, "project_id": foreign.id, "next": "/x"}
    )
    assert "Not yours" not in (await client.get("/dashboard/plans")).text


async def test_cookie_is_secure_over_https(dash_client):
    client, _ = dash_client
    secure = httpx_client(client, "https://meterline")
    async with secure:
        page = await secure.get("/dashboard/login")
        assert "secure" in page.headers["set-cookie"].lower()


def httpx_client(client, base_url):
    import httpx

    return httpx.AsyncClient(transport=client._transport, base_url=base_url)


async def test_over_limit_filter_selects_users_at_their_plans_limits(dash_client):
    from meterline.domain.entities import Environment, UserKey
    from meterline.domain.plans import Limits, RatePlan

    client, dash = dash_client
    await sign_in(client)
    accounts = dash.container.accounts
    capped = await accounts.create_plan(
        dash.project_id,
        RatePlan(id="", name="Capped", limits=Limits(daily_request_limit=2)),
    )
    closed = await accounts.create_plan(
        dash.project_id, RatePlan(id="", name="Closed", limits=Limits(monthly_token_limit=0))
    )
    for user, plan in (("heavy", capped), ("light", capped), ("free", None)):
        key = UserKey(dash.project_id, Environment.TEST, user)
        await accounts.get_or_create_end_user(key, plan.id if plan else None)
    async with _api(client, dash.test_key) as api:
        for user, n in (("heavy", 2), ("light", 1), ("free", 5)):  # free: the unlimited default
            for _ in range(n):
                event = {"end_user_id": user, "model": "gpt-4o-mini", "cost_usd": "0.01"}
                r = await api.post(
                    "/api/v1/billing/usage-events",
                    json=event | {"prompt_tokens": 10, "completion_tokens": 5},
                )
                assert r.status_code == 200, r.text

    def rows(html):
        return re.findall(r'<tr data-user="([^"]+)"', html)

    page = (await client.get("/dashboard/end-users?over_limit=true")).text
    assert rows(page) == ["heavy"]
    assert '<option value="true" selected>Over limit</option>' in page
    assert '<label for="f-over">Over limit</label>' in page
    assert page.count('class="badge over"') == 1
    page = (await client.get("/dashboard/end-users?over_limit=false&sort=requests")).text
    assert rows(page) == ["free", "light"] and 'class="badge over"' not in page
    page = (await client.get("/dashboard/end-users")).text
    assert rows(page) == ["free", "heavy", "light"] and page.count('class="badge over"') == 1
    fragment = (await client.get("/dashboard/end-users?over_limit=true&fragment=1")).text
    assert rows(fragment) == ["heavy"] and '<form class="toolbar"' not in fragment
    # An empty result keeps the filters on screen (not the "no end users yet" panel).
    page = (await client.get("/dashboard/end-users?over_limit=true&q=nobody")).text
    assert "No end user matches these filters" in page and 'id="f-over"' in page

    # Page links keep the filter: 26 users on a plan every user is over (limit 0).
    for i in range(26):
        key = UserKey(dash.project_id, Environment.TEST, f"closed-{i:02}")
        await accounts.get_or_create_end_user(key, closed.id)
    page = (await client.get("/dashboard/end-users?over_limit=true")).text
    assert "27 end users" in page and "page 1 of 2" in page
    next_url = re.search(r'<a href="([^"]+)">Next', page).group(1).replace("&amp;", "&")
    assert "over_limit=true" in next_url and "page=2" in next_url
    page = (await client.get(next_url)).text
    assert rows(page) == ["closed-25", "heavy"]  # page 1: closed-00..closed-24, by id
    assert page.count('class="badge over"') == 2
    page = (await client.get("/dashboard/end-users?over_limit=false")).text
    assert rows(page) == ["free", "light"]
