"""The fake Stripe holds the real SDK to Stripe's rules (so our code cannot lean on a
lenient stub): accounts, draft-only items, state machine, idempotency, signatures."""

from __future__ import annotations

import time

import httpx
import pytest
import stripe

from meterline.testing.fake_stripe import sign_payload


@pytest.fixture
def client(fake) -> stripe.StripeClient:
    return stripe.StripeClient(
        "sk_test_x",
        client_id="ca_x",
        base_addresses={"api": fake.url, "connect": fake.url},
        max_network_retries=0,
    )


def acct(account: str, key: str | None = None) -> dict:
    opts = {"stripe_account": account}
    if key:
        opts["idempotency_key"] = key
    return opts


def test_connected_objects_need_the_account_header_and_stay_on_their_account(fake, client):
    a, b = fake.add_account(), fake.add_account()
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.customers.create({"email": "x@example.com"})
    assert err.value.http_status == 400
    cus = client.v1.customers.create({"email": "x@example.com"}, acct(a))
    assert client.v1.customers.retrieve(cus.id, options=acct(a)).email == "x@example.com"
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.customers.retrieve(cus.id, options=acct(b))
    assert err.value.http_status == 404
    with pytest.raises(stripe.PermissionError):
        client.v1.customers.create({}, acct("acct_unknown"))


def test_invoice_lifecycle_and_rules(fake, client):
    a = fake.add_account()
    cus = client.v1.customers.create({"email": "x@example.com"}, acct(a)).id
    other = client.v1.customers.create({"email": "y@example.com"}, acct(a)).id
    params = {"customer": cus, "collection_method": "send_invoice", "days_until_due": 7}
    inv = client.v1.invoices.create(params, acct(a))
    assert inv.status == "draft" and inv.hosted_invoice_url is None
    with pytest.raises(stripe.InvalidRequestError):  # another customer's draft
        client.v1.invoice_items.create(
            {"customer": other, "invoice": inv.id, "amount": 5, "currency": "usd"}, acct(a)
        )
    with pytest.raises(stripe.InvalidRequestError):  # currency mismatch
        client.v1.invoice_items.create(
            {"customer": cus, "invoice": inv.id, "amount": 5, "currency": "eur"}, acct(a)
        )
    for amount in (100, 250):
        client.v1.invoice_items.create(
            {"customer": cus, "invoice": inv.id, "amount": amount, "currency": "usd"}, acct(a)
        )
    with pytest.raises(stripe.InvalidRequestError):  # send needs open
        client.v1.invoices.send_invoice(inv.id, options=acct(a))
    with pytest.raises(stripe.InvalidRequestError):  # void needs open
        client.v1.invoices.void_invoice(inv.id, options=acct(a))
    done = client.v1.invoices.finalize_invoice(inv.id, options=acct(a))
    assert done.status == "open" and done.amount_due == 350
    assert done.number and done.hosted_invoice_url.startswith(fake.url)
    with pytest.raises(stripe.InvalidRequestError):  # frozen
        client.v1.invoice_items.create(
            {"customer": cus, "invoice": inv.id, "amount": 1, "currency": "usd"}, acct(a)
        )
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.invoices.finalize_invoice(inv.id, options=acct(a))
    client.v1.invoices.send_invoice(inv.id, options=acct(a))
    assert fake.times_sent(inv.id) == 1
    assert client.v1.invoices.void_invoice(inv.id, options=acct(a)).status == "void"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.invoices.void_invoice(inv.id, options=acct(a))


def test_send_invoice_needs_a_customer_email(fake, client):
    a = fake.add_account()
    cus = client.v1.customers.create({}, acct(a)).id
    with pytest.raises(stripe.InvalidRequestError, match="email"):
        client.v1.invoices.create(
            {"customer": cus, "collection_method": "send_invoice", "days_until_due": 7}, acct(a)
        )


def test_idempotency_replays_or_refuses(fake, client):
    a = fake.add_account()
    first = client.v1.customers.create({"email": "x@example.com"}, acct(a, "k"))
    again = client.v1.customers.create({"email": "x@example.com"}, acct(a, "k"))
    assert again.id == first.id and len(fake.customers(a)) == 1
    assert fake.requests_log[-1].replayed is True
    with pytest.raises(stripe.IdempotencyError):
        client.v1.customers.create({"email": "other@example.com"}, acct(a, "k"))
    # Keys are scoped per account.
    b = fake.add_account()
    assert client.v1.customers.create({"email": "x@example.com"}, acct(b, "k")).id != first.id


def test_request_log_records_account_key_and_params(fake, client):
    a = fake.add_account()
    client.v1.customers.create({"email": "x@example.com", "metadata": {"k": "v"}}, acct(a, "i1"))
    [req] = fake.requests_log
    assert (req.method, req.path, req.account, req.idempotency_key) == (
        "POST",
        "/v1/customers",
        a,
        "i1",
    )
    assert req.params == {"email": "x@example.com", "metadata": {"k": "v"}}


def test_oauth_code_is_single_use_and_deauthorize_revokes(fake, client):
    url = client.oauth.authorize_url({"scope": "read_write", "state": "s1"})
    code, state = fake.approve(url)
    assert state == "s1"
    account = client.oauth.token({"grant_type": "authorization_code", "code": code}).stripe_user_id
    with pytest.raises(stripe.oauth_error.InvalidGrantError):
        client.oauth.token({"grant_type": "authorization_code", "code": code})
    client.oauth.deauthorize({"stripe_user_id": account})
    with pytest.raises(stripe.PermissionError):
        client.v1.customers.create({}, acct(account))


def test_authorize_endpoint_redirects_with_code_and_state(fake):
    r = httpx.get(
        f"{fake.url}/oauth/authorize",
        params={"client_id": "ca_x", "state": "xyz", "redirect_uri": "https://op.example/cb"},
    )
    assert r.status_code == 302
    location = httpx.URL(r.headers["location"])
    assert location.host == "op.example" and location.params["state"] == "xyz"
    assert location.params["code"].startswith("ac_")


def test_emitted_webhooks_verify_with_the_sdk(fake):
    delivery = fake.emit_webhook("invoice.paid", {"id": "in_1"}, account="acct_1")
    event = stripe.Webhook.construct_event(
        delivery.payload, delivery.signature, fake.webhook_secret
    )
    assert event.type == "invoice.paid" and event.account == "acct_1"
    assert event.data.object.id == "in_1"
    old = sign_payload(delivery.payload, fake.webhook_secret, int(time.time()) - 1000)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(delivery.payload, old, fake.webhook_secret, tolerance=300)


def test_express_account_and_link(fake, client):
    account = client.v1.accounts.create({"type": "express"})
    link = client.v1.account_links.create(
        {
            "account": account.id,
            "refresh_url": "https://op.example/r",
            "return_url": "https://op.example/d",
            "type": "account_onboarding",
        }
    )
    assert link.url.startswith(fake.url) and account.id in link.url
