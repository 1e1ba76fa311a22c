"""No Stripe secret is ever written to the database in the clear: the platform's secret
key and webhook secret, and the OAuth tokens Stripe hands out when an account connects.
Every table is read raw after a Connect, an invoice sent to Stripe and a webhook."""

from __future__ import annotations

from sqlalchemy import select

from meterline.adapters.db.tables import metadata


async def raw_dump(app) -> str:
    dump: list[str] = []
    async with app.container.engine.connect() as conn:
        for table in metadata.sorted_tables:  # every table, not just the obvious ones
            rows = (await conn.execute(select(table))).all()
            dump += [repr(tuple(row)) for row in rows]
    return "\n".join(dump)


async def test_no_stripe_secret_is_stored_in_the_clear(app):
    account = await app.connect()
    await app.usage("alice", "1.25", "gpt-4o")
    await app.set_email("alice", "alice@example.com")
    invoice = await app.invoice("alice")
    r = await app.post(f"/api/v1/billing/invoices/{invoice.id}/send")
    assert r.status_code == 200, r.text
    stripe_invoice = app.fake.invoices(account)[0]
    delivery = app.fake.emit_webhook("invoice.paid", stripe_invoice, account=account)
    r = await app.client.post(
        "/api/v1/stripe/webhook", content=delivery.payload, headers=delivery.headers
    )
    assert r.status_code == 200, r.text

    raw = await raw_dump(app)
    # The dump is real: what we do keep is in it.
    assert account in raw and stripe_invoice["id"] in raw
    issued = app.fake.state.issued_tokens
    assert len(issued) == 1  # the Connect really exchanged a code for tokens
    settings = app.container.settings
    secrets = [
        settings.stripe_secret_key,
        settings.stripe_webhook_secret,
        issued[0]["access_token"],
        issued[0]["refresh_token"],
    ]
    for secret in secrets:
        assert secret and secret not in raw
