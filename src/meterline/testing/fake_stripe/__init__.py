"""A stateful fake Stripe on loopback, driven by the real ``stripe`` SDK.

Stripe is unreachable in tests and its test mode is slow and shared, so the adapter and
the service are exercised against this server instead: the SDK is pointed at it
(``base_addresses={"api": fake.url, "connect": fake.url}``) and speaks its normal wire
format (form-encoded requests, JSON responses, ``Stripe-Account`` and
``Idempotency-Key`` headers).

Endpoints::

    POST /v1/customers               GET /v1/customers/{id}        (connected account)
    POST /v1/invoices                GET /v1/invoices/{id}         (connected account)
    POST /v1/invoiceitems                                          (connected account)
    POST /v1/invoices/{id}/finalize | /send | /void                (connected account)
    POST /v1/accounts   POST /v1/account_links                     (Express onboarding)
    GET  /oauth/authorize  POST /oauth/token  POST /oauth/deauthorize   (Connect OAuth)

Rules enforced (each a 4xx in Stripe's error shape): customers/invoices/items need the
``Stripe-Account`` header of a connected (not deauthorized) account, and live per account;
items join only a draft invoice of the same customer and currency; finalize: draft → open
(numbered, ``hosted_invoice_url``, ``amount_due`` = sum of items; a zero invoice is paid
at once); send: open ``send_invoice`` invoices only; void: open only; ``send_invoice``
needs a customer with an email; an idempotency key replays its first successful response
(header ``idempotent-replayed: true``) and refuses other parameters (400
``idempotency_error``). Every request is logged (method, path, account, key, params).

Use::

    with running_fake_stripe() as fake:
        client = stripe.StripeClient("sk_test_x", base_addresses={"api": fake.url,
                                                                   "connect": fake.url})
        code, state = fake.approve(authorize_url)      # the user clicks "Connect"
        delivery = fake.emit_webhook("invoice.paid", invoice, account="acct_…")
        client.post("/stripe/webhook", content=delivery.payload, headers=delivery.headers)
"""

from ._server import DEFAULT_WEBHOOK_SECRET, FakeStripe, running_fake_stripe
from ._state import FakeStripeState, RecordedStripeRequest
from ._webhooks import WebhookDelivery, build_event, sign_payload

__all__ = [
    "DEFAULT_WEBHOOK_SECRET",
    "FakeStripe",
    "FakeStripeState",
    "RecordedStripeRequest",
    "WebhookDelivery",
    "build_event",
    "running_fake_stripe",
    "sign_payload",
]
