"""Serving the fake Stripe in a background thread, and the handle tests hold."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from meterline.testing.server import serving_in_thread

from ._app import create_app
from ._state import FakeStripeState, RecordedStripeRequest
from ._webhooks import WebhookDelivery, build_event, encode, sign_payload

__all__ = ["FakeStripe", "running_fake_stripe"]

DEFAULT_WEBHOOK_SECRET = "whsec_fake_stripe"


@dataclass
class FakeStripe:
    """A running fake: its URL (API and Connect base alike), its state and request log."""

    url: str
    state: FakeStripeState
    webhook_secret: str = DEFAULT_WEBHOOK_SECRET

    @property
    def requests_log(self) -> list[RecordedStripeRequest]:
        with self.state.lock:
            return list(self.state.requests)

    def requests_to(self, method: str, path_prefix: str) -> list[RecordedStripeRequest]:
        """Requests that created or changed something (replays included, errors excluded)."""
        return [
            r
            for r in self.requests_log
            if r.method == method and r.path.startswith(path_prefix) and r.status < 400
        ]

    def clear_log(self) -> None:
        with self.state.lock:
            self.state.requests.clear()

    # -------------------------------------------------------------- state, for assertions

    def customers(self, account: str) -> list[dict[str, Any]]:
        with self.state.lock:
            return list(self.state.customers.get(account, {}).values())

    def invoices(self, account: str) -> list[dict[str, Any]]:
        with self.state.lock:
            return list(self.state.invoices.get(account, {}).values())

    def invoice_items(self, account: str) -> list[dict[str, Any]]:
        with self.state.lock:
            return list(self.state.items.get(account, {}).values())

    def times_sent(self, invoice_id: str) -> int:
        with self.state.lock:
            return self.state.sent.get(invoice_id, 0)

    # -------------------------------------------------------------- simulating the user

    def add_account(self, account_id: str | None = None, **fields: Any) -> str:
        return self.state.add_account(account_id, **fields)

    def approve(self, authorize_url: str, account_id: str | None = None) -> tuple[str, str]:
        """The user approves the Connect screen at ``authorize_url``: returns (code, state)."""
        query = parse_qs(urlsplit(authorize_url).query)
        return self.state.issue_code(account_id), query.get("state", [""])[0]

    def pay(self, account: str, invoice_id: str) -> dict[str, Any]:
        return self.state.pay(account, invoice_id)

    def emit_webhook(
        self,
        event_type: str,
        data_object: dict[str, Any],
        account: str | None = None,
        *,
        secret: str | None = None,
        url: str | None = None,
        timestamp: int | None = None,
        event_id: str | None = None,
    ) -> WebhookDelivery:
        """A signed event; posted to ``url`` when given, else returned for the test to post."""
        event = build_event(event_type, data_object, account=account, event_id=event_id)
        payload = encode(event)
        signature = sign_payload(payload, secret or self.webhook_secret, timestamp)
        status = None
        if url is not None:
            headers = {"Stripe-Signature": signature, "Content-Type": "application/json"}
            status = httpx.post(url, content=payload, headers=headers, timeout=10).status_code
        return WebhookDelivery(event, payload, signature, status)


@contextmanager
def running_fake_stripe(
    port: int = 0, *, webhook_secret: str = DEFAULT_WEBHOOK_SECRET
) -> Iterator[FakeStripe]:
    """Serve the fake Stripe on 127.0.0.1 (``port=0``: a free port) in a background thread."""
    state = FakeStripeState()
    with serving_in_thread(create_app(state), name="fake-stripe", port=port) as url:
        state.url = url
        yield FakeStripe(state.url, state, webhook_secret)
