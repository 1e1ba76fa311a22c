"""Sending a finalized invoice: one customer, one Stripe invoice, one item per line, on the
organization's connected account — and nothing twice, however often it is retried."""

from __future__ import annotations

from meterline.domain.entities import UserKey
from meterline.domain.invoices import InvoiceStatus
from meterline.services.stripe_ports import PaymentsError


def send_path(invoice_id: str) -> str:
    return f"/api/v1/billing/invoices/{invoice_id}/send"


async def billed_user(app, user: str = "alice", env: str = "live"):
    await app.usage(user, "1.234", "gpt-4o", env=env)
    await app.usage(user, "0.5", "gpt-4o-mini", env=env)
    await app.usage(user, "0.001", "tiny-model", env=env)  # rounds to 0 cents: no Stripe item
    await app.set_email(user, f"{user}@example.com", env=env)
    return await app.invoice(user, env=env)


def created(app, path: str):
    """Requests that created something new (errors and idempotent replays excluded)."""
    return [r for r in app.fake.requests_to("POST", path) if not r.replayed]


async def test_send_creates_one_customer_invoice_and_items_on_the_connected_account(app):
    account = await app.connect()
    invoice = await billed_user(app)
    assert invoice.status is InvoiceStatus.OPEN
    cents = sorted(line.amount_cents for line in invoice.lines)
    assert cents == [0, 50, 123]

    r = await app.post(send_path(invoice.id))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "open" and body["stripe_invoice_id"].startswith("in_")
    assert body["hosted_invoice_url"].startswith(f"{app.fake.url}/i/{account}/")

    [customer] = app.fake.customers(account)
    assert customer["email"] == "alice@example.com"
    assert customer["metadata"]["meterline_end_user_id"] == "alice"
    [stripe_inv] = app.fake.invoices(account)
    assert stripe_inv["id"] == body["stripe_invoice_id"]
    assert stripe_inv["customer"] == customer["id"]
    assert stripe_inv["collection_method"] == "send_invoice"
    assert stripe_inv["days_until_due"] == 30
    assert stripe_inv["currency"] == "usd"
    assert stripe_inv["metadata"]["meterline_invoice_id"] == invoice.id
    assert stripe_inv["metadata"]["meterline_invoice_number"] == invoice.number
    assert stripe_inv["status"] == "open"
    assert stripe_inv["amount_due"] == invoice.total_cents == 173
    items = app.fake.invoice_items(account)
    assert sorted(i["amount"] for i in items) == [50, 123]
    assert {i["description"] for i in items} == {
        line.description for line in invoice.lines if line.amount_cents
    }
    assert app.fake.times_sent(stripe_inv["id"]) == 1

    # Every create went to the connected account, with a deterministic idempotency key.
    writes = [r for r in app.fake.requests_log if r.path.startswith("/v1/")]
    assert writes and all(r.account == account for r in writes)
    keys = [r.idempotency_key for r in writes if r.method == "POST"]
    assert f"ml-inv-{invoice.id}-create" in keys
    assert {f"ml-inv-{invoice.id}-item-0", f"ml-inv-{invoice.id}-item-1"} <= set(keys)
    assert f"ml-inv-{invoice.id}-send" in keys

    # Ours now knows its Stripe twin, and the end user their customer.
    stored = await app.invoices.get_invoice(app.project_id, invoice.environment, invoice.id)
    assert stored.stripe_invoice_id == stripe_inv["id"]
    assert stored.hosted_invoice_url == stripe_inv["hosted_invoice_url"]
    user = await app.container.accounts.get_end_user(
        UserKey(app.project_id, invoice.environment, "alice")
    )
    assert user.stripe_customer_id == customer["id"]


async def test_a_second_send_is_a_no_op(app):
    account = await app.connect()
    invoice = await billed_user(app)
    first = await app.post(send_path(invoice.id))
    app.fake.clear_log()
    again = await app.post(send_path(invoice.id))
    assert again.status_code == 200 and again.json() == first.json()
    assert app.fake.requests_log == []  # Stripe was not even asked
    assert len(app.fake.invoices(account)) == 1


async def test_a_retry_after_a_crash_mid_way_creates_nothing_twice(app, monkeypatch):
    account = await app.connect()
    invoice = await billed_user(app)

    async def boom(*args, **kwargs):
        raise PaymentsError("connection reset", code="stripe_unavailable")

    monkeypatch.setattr(app.payments, "send", boom)  # dies after create, items, finalize
    r = await app.post(send_path(invoice.id))
    assert r.status_code == 502 and r.json()["error"]["code"] == "stripe_unavailable"
    stored = await app.invoices.get_invoice(app.project_id, invoice.environment, invoice.id)
    assert stored.stripe_invoice_id is None  # not recorded until the whole chain succeeded

    monkeypatch.undo()
    r = await app.post(send_path(invoice.id))
    assert r.status_code == 200, r.text
    assert len(app.fake.customers(account)) == 1
    assert len(app.fake.invoices(account)) == 1
    assert len(app.fake.invoice_items(account)) == 2
    [stripe_inv] = app.fake.invoices(account)
    assert r.json()["stripe_invoice_id"] == stripe_inv["id"]
    assert app.fake.times_sent(stripe_inv["id"]) == 1
    replayed = [x for x in app.fake.requests_log if x.replayed]
    assert {x.path for x in replayed} >= {"/v1/invoices", "/v1/invoiceitems"}


async def test_a_second_end_user_reuses_nothing_of_the_first(app):
    account = await app.connect()
    first = await billed_user(app, "alice")
    second = await billed_user(app, "bob")
    a = (await app.post(send_path(first.id))).json()
    b = (await app.post(send_path(second.id))).json()
    assert a["stripe_invoice_id"] != b["stripe_invoice_id"]
    customers = app.fake.customers(account)
    assert sorted(c["email"] for c in customers) == ["alice@example.com", "bob@example.com"]
    by_id = {inv["id"]: inv for inv in app.fake.invoices(account)}
    assert by_id[a["stripe_invoice_id"]]["customer"] != by_id[b["stripe_invoice_id"]]["customer"]
    assert len(app.fake.invoice_items(account)) == 4


async def test_the_stored_customer_is_reused_and_a_vanished_one_replaced(app):
    account = await app.connect()
    invoice = await billed_user(app)
    await app.post(send_path(invoice.id))
    key = UserKey(app.project_id, invoice.environment, "alice")
    user = await app.container.accounts.get_end_user(key)
    assert await app.payments.find_or_create_customer(account, user) == user.stripe_customer_id
    assert len(app.fake.customers(account)) == 1
    # Connected to another account now: the stored customer does not exist there.
    other = app.fake.add_account()
    fresh = await app.payments.find_or_create_customer(other, user)
    assert fresh != user.stripe_customer_id and len(app.fake.customers(other)) == 1


async def test_draft_is_refused_with_409(app):
    await app.connect()
    await app.usage("alice", "1", "gpt-4o")
    await app.set_email("alice", "a@example.com")
    draft = await app.invoice("alice", finalize=False)
    r = await app.post(send_path(draft.id))
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "invoice_not_finalized"
    assert app.fake.requests_to("POST", "/v1/") == []


async def test_not_connected_is_a_clear_error(app):
    invoice = await billed_user(app)
    r = await app.post(send_path(invoice.id))
    assert r.status_code == 409
    err = r.json()["error"]
    assert err["code"] == "stripe_not_connected" and "/api/v1/stripe/connect" in err["message"]


async def test_end_user_without_email_is_a_422_naming_the_user(app):
    await app.connect()
    invoice = await billed_user(app, "carol")
    await app.set_email("carol", None)
    r = await app.post(send_path(invoice.id))
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["code"] == "end_user_email_missing" and "'carol'" in err["message"]
    assert app.fake.requests_to("POST", "/v1/") == []  # refused before Stripe was asked


async def test_unknown_invoice_is_404(app):
    await app.connect()
    r = await app.post(send_path("inv_nope"))
    assert r.status_code == 404 and r.json()["error"]["code"].endswith("not_found")


async def test_test_environment_invoices_go_through_a_test_platform_key(app):
    account = await app.connect()
    invoice = await billed_user(app, "tina", env="test")
    r = await app.post(send_path(invoice.id), env="test")
    assert r.status_code == 200, r.text
    assert len(app.fake.invoices(account)) == 1
    # ...but live keys cannot see test invoices.
    assert (await app.post(send_path(invoice.id))).status_code == 404


async def test_test_environment_invoice_with_a_live_platform_key_is_export_only(live_platform):
    app = live_platform
    account = await app.connect()
    invoice = await billed_user(app, "tina", env="test")
    r = await app.post(send_path(invoice.id), env="test")
    assert r.status_code == 409
    err = r.json()["error"]
    assert err["code"] == "export_only" and "sk_test_" in err["message"]
    assert app.fake.invoices(account) == []
    assert (await app.get("/api/v1/stripe/status")).json()["platform_mode"] == "live"
    # Live invoices still go out with the live key.
    live = await billed_user(app, "larry")
    r = await app.post(send_path(live.id))
    assert r.status_code == 200, r.text
    [inv] = app.fake.invoices(account)
    assert inv["livemode"] is True


async def test_a_revoked_account_is_a_clear_error_not_a_500(app):
    account = await app.connect()
    invoice = await billed_user(app)
    app.fake.state.deauthorized.add(account)
    r = await app.post(send_path(invoice.id))
    assert r.status_code == 409, r.text
    assert r.json()["error"]["code"] == "stripe_account_unavailable"


async def test_voiding_a_sent_invoice_voids_it_at_stripe_first(app):
    account = await app.connect()
    invoice = await billed_user(app, "vera")
    sent = (await app.post(send_path(invoice.id))).json()
    r = await app.post(f"/api/v1/billing/invoices/{invoice.id}/void")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "void"
    [stripe_inv] = app.fake.invoices(account)
    assert stripe_inv["id"] == sent["stripe_invoice_id"] and stripe_inv["status"] == "void"
