"""Webhooks: signed events move our invoices; forged, stale or replayed ones change nothing."""

from __future__ import annotations

import time

import httpx

from meterline.domain.entities import Environment
from meterline.domain.invoices import InvoiceStatus

HOOK = "/api/v1/stripe/webhook"


async def sent_invoice(app, user: str = "alice"):
    account = await app.connect()
    await app.usage(user, "2.5", "gpt-4o")
    await app.set_email(user, f"{user}@example.com")
    invoice = await app.invoice(user)
    r = await app.post(f"/api/v1/billing/invoices/{invoice.id}/send")
    assert r.status_code == 200, r.text
    return account, r.json()


async def deliver(app, delivery):
    return await app.client.post(HOOK, content=delivery.payload, headers=delivery.headers)


async def status_of(app, invoice_id: str) -> InvoiceStatus:
    inv = await app.invoices.get_invoice(app.project_id, Environment.LIVE, invoice_id)
    return inv.status


async def test_invoice_paid_marks_ours_paid(app):
    account, ours = await sent_invoice(app)
    paid = app.fake.pay(account, ours["stripe_invoice_id"])
    r = await deliver(app, app.fake.emit_webhook("invoice.paid", paid, account=account))
    assert r.status_code == 200, r.text
    assert r.json()["outcome"] == "status_paid"
    assert await status_of(app, ours["id"]) is InvoiceStatus.PAID


async def test_voided_and_uncollectible(app):
    account, ours = await sent_invoice(app)
    obj = {"id": ours["stripe_invoice_id"], "object": "invoice"}
    r = await deliver(app, app.fake.emit_webhook("invoice.marked_uncollectible", obj, account))
    assert r.status_code == 200 and await status_of(app, ours["id"]) is InvoiceStatus.UNCOLLECTIBLE
    r = await deliver(app, app.fake.emit_webhook("invoice.voided", obj, account))
    assert r.status_code == 200 and await status_of(app, ours["id"]) is InvoiceStatus.VOID
    # Paid after void is not a valid move: acknowledged (no retry storm), nothing changes.
    r = await deliver(app, app.fake.emit_webhook("invoice.paid", obj, account))
    assert r.status_code == 200 and r.json()["outcome"] == "invalid_transition"
    assert await status_of(app, ours["id"]) is InvoiceStatus.VOID


async def test_payment_failed_is_recorded_and_keeps_it_open(app):
    account, ours = await sent_invoice(app)
    obj = {"id": ours["stripe_invoice_id"], "object": "invoice", "attempt_count": 1}
    r = await deliver(app, app.fake.emit_webhook("invoice.payment_failed", obj, account))
    assert r.status_code == 200 and r.json()["outcome"] == "payment_failed_recorded"
    assert await status_of(app, ours["id"]) is InvoiceStatus.OPEN
    alerts = await app.container.accounts.list_alerts(app.project_id, Environment.LIVE)
    assert [a.kind for a in alerts] == ["invoice_payment_failed"]


async def test_finalized_event_records_the_hosted_url(app):
    account, ours = await sent_invoice(app)
    obj = {"id": ours["stripe_invoice_id"], "hosted_invoice_url": "https://pay.example/new"}
    r = await deliver(app, app.fake.emit_webhook("invoice.finalized", obj, account))
    assert r.status_code == 200 and r.json()["outcome"] == "url_recorded"
    inv = await app.invoices.get_invoice(app.project_id, Environment.LIVE, ours["id"])
    assert inv.hosted_invoice_url == "https://pay.example/new"
    assert inv.status is InvoiceStatus.OPEN


async def test_bad_signature_or_stale_timestamp_is_400_and_changes_nothing(app):
    account, ours = await sent_invoice(app)
    obj = {"id": ours["stripe_invoice_id"], "object": "invoice"}
    wrong_secret = app.fake.emit_webhook("invoice.paid", obj, account, secret="whsec_other")
    stale = app.fake.emit_webhook("invoice.paid", obj, account, timestamp=int(time.time()) - 301)
    good = app.fake.emit_webhook("invoice.paid", obj, account)
    tampered = good.payload.replace(b'"invoice.paid"', b'"invoice.voided"')
    cases = [
        (wrong_secret.payload, wrong_secret.headers),
        (stale.payload, stale.headers),
        (tampered, good.headers),
        (good.payload, {"Content-Type": "application/json"}),  # no signature at all
        (good.payload, {"Stripe-Signature": "garbage"}),
    ]
    for payload, headers in cases:
        r = await app.client.post(HOOK, content=payload, headers=headers)
        assert r.status_code == 400, r.text
        assert r.json()["error"]["code"] == "invalid_signature"
    assert await status_of(app, ours["id"]) is InvoiceStatus.OPEN
    # None of them was remembered as processed: the genuine one still applies.
    r = await deliver(app, good)
    assert r.status_code == 200 and await status_of(app, ours["id"]) is InvoiceStatus.PAID


async def test_an_oversized_webhook_is_413_and_changes_nothing(app):
    from meterline.web.stripe_routes import MAX_WEBHOOK_BYTES

    account, ours = await sent_invoice(app)
    obj = {"id": ours["stripe_invoice_id"], "object": "invoice"}
    good = app.fake.emit_webhook("invoice.paid", obj, account)
    padded = good.payload + b" " * (MAX_WEBHOOK_BYTES + 1)
    r = await app.client.post(HOOK, content=padded, headers=good.headers)
    assert r.status_code == 413, r.text
    assert r.json()["error"]["code"] == "body_too_large"
    assert await status_of(app, ours["id"]) is InvoiceStatus.OPEN


async def test_a_replayed_event_id_changes_nothing(app):
    account, ours = await sent_invoice(app)
    obj = {"id": ours["stripe_invoice_id"], "object": "invoice"}
    first = app.fake.emit_webhook("invoice.marked_uncollectible", obj, account, event_id="evt_1")
    r = await deliver(app, first)
    assert r.status_code == 200 and r.json()["duplicate"] is False
    assert await status_of(app, ours["id"]) is InvoiceStatus.UNCOLLECTIBLE
    r = await deliver(app, first)
    assert r.status_code == 200 and r.json()["duplicate"] is True
    # Even a different (validly signed) body under the same event id is not applied.
    other = app.fake.emit_webhook("invoice.voided", obj, account, event_id="evt_1")
    r = await deliver(app, other)
    assert r.status_code == 200 and r.json()["duplicate"] is True
    assert await status_of(app, ours["id"]) is InvoiceStatus.UNCOLLECTIBLE


async def test_events_from_another_account_or_for_unknown_invoices_are_ignored(app):
    account, ours = await sent_invoice(app)
    obj = {"id": ours["stripe_invoice_id"], "object": "invoice"}
    intruder = app.fake.add_account()
    r = await deliver(app, app.fake.emit_webhook("invoice.paid", obj, intruder))
    assert r.status_code == 200 and r.json()["outcome"] == "not_ours"
    r = await deliver(app, app.fake.emit_webhook("invoice.paid", {"id": "in_unknown"}, account))
    assert r.status_code == 200 and r.json()["outcome"] == "not_ours"
    r = await deliver(app, app.fake.emit_webhook("customer.created", {"id": "cus_1"}, account))
    assert r.status_code == 200 and r.json()["outcome"] == "ignored"
    assert await status_of(app, ours["id"]) is InvoiceStatus.OPEN


async def test_deauthorized_application_disconnects_the_organization(app):
    account = await app.connect()
    app.fake.state.deauthorized.add(account)  # the operator revoked us in Stripe
    obj = {"id": "ca_platform", "object": "application", "name": "meterline"}
    r = await deliver(app, app.fake.emit_webhook("account.application.deauthorized", obj, account))
    assert r.status_code == 200 and r.json()["outcome"] == "disconnected"
    assert await app.store.get_connection(app.organization_id) is None
    assert (await app.get("/api/v1/stripe/status")).json()["connected"] is False


async def test_a_failure_while_applying_lets_stripe_retry(app, monkeypatch):
    account, ours = await sent_invoice(app)
    obj = {"id": ours["stripe_invoice_id"], "object": "invoice"}
    delivery = app.fake.emit_webhook("invoice.paid", obj, account)

    async def broken(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(app.invoices, "set_status", broken)
    transport = httpx.ASGITransport(app=app.asgi, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://meterline") as client:
        r = await client.post(HOOK, content=delivery.payload, headers=delivery.headers)
    assert r.status_code == 500  # Stripe retries on 5xx
    monkeypatch.undo()
    r = await deliver(app, delivery)
    assert r.status_code == 200 and r.json()["duplicate"] is False
    assert await status_of(app, ours["id"]) is InvoiceStatus.PAID


async def test_webhook_without_stripe_configured_is_a_clear_error(app):
    app.container.stripe_sync = None
    r = await app.client.post(HOOK, content=b"{}")
    assert r.status_code == 409 and r.json()["error"]["code"] == "stripe_not_configured"
