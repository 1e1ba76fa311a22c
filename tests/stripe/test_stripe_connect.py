"""Stripe Connect: connect → callback stores the account; forged or stale states fail."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from meterline.services.stripe_oauth_state import sign_state


async def test_connect_url_is_stripe_oauth_with_a_state(app):
    r = await app.get("/api/v1/stripe/connect")
    assert r.status_code == 200, r.text
    url = r.json()["url"]
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == app.fake.url  # the configured connect base
    assert parts.path == "/oauth/authorize"
    q = parse_qs(parts.query)
    assert q["response_type"] == ["code"]
    assert q["client_id"] == ["ca_platform"]
    assert q["scope"] == ["read_write"]
    assert q["state"][0]


async def test_callback_stores_the_account_for_the_organization(app):
    account = await app.connect()
    assert account.startswith("acct_")
    stored = await app.store.get_connection(app.organization_id)
    assert stored is not None and stored.account_id == account
    token_calls = app.fake.requests_to("POST", "/oauth/token")
    assert len(token_calls) == 1 and token_calls[0].params["grant_type"] == "authorization_code"
    r = await app.get("/api/v1/stripe/status")
    body = r.json()
    assert body["connected"] is True and body["account_id"] == account
    assert body["platform_mode"] == "test"
    # The test environment sees the same (organization-wide) connection.
    assert (await app.get("/api/v1/stripe/status", env="test")).json()["account_id"] == account


async def test_forged_state_is_refused_and_stores_nothing(app):
    r = await app.get("/api/v1/stripe/connect")
    code, state = app.fake.approve(r.json()["url"])
    payload, _, mac = state.partition(".")
    for bad in (f"{payload}.{'0' * len(mac)}", "garbage", f"{payload}x.{mac}"):
        r = await app.client.get("/api/v1/stripe/callback", params={"code": code, "state": bad})
        assert r.status_code == 400, r.text
        assert r.json()["error"]["code"] == "invalid_state"
    forged = sign_state(
        "another-secret", app.organization_id, app.project_id, app.container.clock.now(), 600
    )
    r = await app.client.get("/api/v1/stripe/callback", params={"code": code, "state": forged})
    assert r.status_code == 400
    assert await app.store.get_connection(app.organization_id) is None
    assert app.fake.requests_to("POST", "/oauth/token") == []  # Stripe never asked


async def test_expired_state_is_refused(app):
    r = await app.get("/api/v1/stripe/connect")
    code, state = app.fake.approve(r.json()["url"])
    app.container.clock.advance(hours=1)
    r = await app.client.get("/api/v1/stripe/callback", params={"code": code, "state": state})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "state_expired"
    assert await app.store.get_connection(app.organization_id) is None


async def test_bad_code_is_a_clear_400(app):
    r = await app.get("/api/v1/stripe/connect")
    _, state = app.fake.approve(r.json()["url"])
    r = await app.client.get("/api/v1/stripe/callback", params={"code": "ac_nope", "state": state})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "invalid_grant"
    assert await app.store.get_connection(app.organization_id) is None


async def test_user_denied_and_missing_state(app):
    r = await app.client.get(
        "/api/v1/stripe/callback",
        params={"error": "access_denied", "error_description": "The user denied your request"},
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "access_denied"
    r = await app.client.get("/api/v1/stripe/callback", params={"code": "ac_x"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_state"


async def test_connect_and_disconnect_need_a_live_key(app):
    r = await app.get("/api/v1/stripe/connect", env="test")
    assert r.status_code == 403 and r.json()["error"]["code"] == "live_key_required"
    r = await app.post("/api/v1/stripe/disconnect", env="test")
    assert r.status_code == 403
    r = await app.client.get("/api/v1/stripe/connect")
    assert r.status_code == 401


async def test_disconnect_deauthorizes_and_forgets(app):
    account = await app.connect()
    r = await app.post("/api/v1/stripe/disconnect")
    assert r.status_code == 200 and r.json() == {"connected": False, "disconnected": True}
    assert await app.store.get_connection(app.organization_id) is None
    calls = app.fake.requests_to("POST", "/oauth/deauthorize")
    assert [c.params["stripe_user_id"] for c in calls] == [account]
    assert not app.fake.state.connected(account)
    # Again: nothing to do, still a clean answer.
    r = await app.post("/api/v1/stripe/disconnect")
    assert r.status_code == 200 and r.json()["disconnected"] is False


async def test_disconnect_when_stripe_already_forgot_us(app):
    account = await app.connect()
    app.fake.state.deauthorized.add(account)  # revoked from the Stripe dashboard
    r = await app.post("/api/v1/stripe/disconnect")
    assert r.status_code == 200 and r.json()["disconnected"] is True
    assert await app.store.get_connection(app.organization_id) is None


async def test_reconnecting_replaces_the_account(app):
    first = await app.connect()
    second = await app.connect()
    assert first != second
    stored = await app.store.get_connection(app.organization_id)
    assert stored is not None and stored.account_id == second


async def test_express_onboarding_link(app):
    body = {"refresh_url": "https://op.example/refresh", "return_url": "https://op.example/done"}
    r = await app.post("/api/v1/stripe/onboard", body)
    assert r.status_code == 200, r.text
    stored = await app.store.get_connection(app.organization_id)
    assert stored is not None and r.json()["url"].startswith(f"{app.fake.url}/setup/")
    created = app.fake.requests_to("POST", "/v1/accounts")
    assert len(created) == 1 and created[0].params["type"] == "express"
    link = app.fake.requests_to("POST", "/v1/account_links")[0]
    assert link.params["account"] == stored.account_id
    assert link.params["type"] == "account_onboarding"
    # Asking again reuses the account.
    r = await app.post("/api/v1/stripe/onboard", body)
    assert r.status_code == 200 and len(app.fake.requests_to("POST", "/v1/accounts")) == 1
    r = await app.post("/api/v1/stripe/onboard", {"refresh_url": "javascript:x"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "refresh_url"
