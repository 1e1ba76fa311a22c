"""Applying Stripe's webhook events to our invoices and connections.

Order matters: verify first (a forged or stale event changes nothing), then claim the
event id (a replay changes nothing), then apply. If applying fails the claim is
released, so Stripe's automatic retry gets another chance instead of being dropped as a
duplicate. Each handler is also idempotent on its own (setting a status twice is a no-op).

An invoice event is applied only when it comes from the Stripe account the invoice's
organization is connected to: a connected account cannot touch another's invoices.
"""

from __future__ import annotations

import logging
from typing import Any

from meterline.domain.entities import AlertRecord
from meterline.domain.invoices import Invoice, InvoiceStatus
from meterline.ports import Accounts, InvalidTransition, InvoiceStore
from meterline.services.errors import ServiceError
from meterline.services.stripe_ports import Payments, StripeStore

__all__ = ["STATUS_EVENTS", "WebhookApplier"]

log = logging.getLogger("meterline.stripe")

#: Events that move our invoice to a status of its own.
STATUS_EVENTS = {
    "invoice.paid": InvoiceStatus.PAID,
    "invoice.voided": InvoiceStatus.VOID,
    "invoice.marked_uncollectible": InvoiceStatus.UNCOLLECTIBLE,
}
_URL_EVENTS = ("invoice.finalized", "invoice.sent")


class WebhookApplier:
    def __init__(
        self, payments: Payments, store: StripeStore, invoices: InvoiceStore, accounts: Accounts
    ) -> None:
        self._payments = payments
        self._store = store
        self._invoices = invoices
        self._accounts = accounts

    async def handle(self, payload: bytes, sig_header: str | None) -> dict[str, Any]:
        event = self._payments.construct_event(payload, sig_header)
        event_id, event_type = str(event.get("id") or ""), str(event.get("type") or "")
        if not event_id or not event_type or len(event_id) > 128:
            raise ServiceError("The event has no id or type.", code="invalid_event")
        if not await self._store.mark_webhook_processed(event_id, event_type):
            return {"received": True, "duplicate": True, "type": event_type, "outcome": None}
        try:
            outcome = await self._apply(event_type, event)
        except BaseException:
            await self._store.unmark_webhook(event_id)
            raise
        log.info("stripe event %s %s: %s", event_id, event_type, outcome)
        return {"received": True, "duplicate": False, "type": event_type, "outcome": outcome}

    async def _apply(self, event_type: str, event: dict[str, Any]) -> str:
        account = event.get("account")
        if event_type == "account.application.deauthorized":
            if not isinstance(account, str):
                return "ignored"
            orgs = await self._store.delete_account(account)
            return "disconnected" if orgs else "unknown_account"
        if not event_type.startswith("invoice."):
            return "ignored"
        obj = (event.get("data") or {}).get("object") or {}
        invoice = await self._ours(obj.get("id"), account)
        if invoice is None:
            return "not_ours"
        if event_type in STATUS_EVENTS:
            return await self._move(invoice, STATUS_EVENTS[event_type])
        if event_type in _URL_EVENTS:
            url = obj.get("hosted_invoice_url")
            if not isinstance(url, str) or url == invoice.hosted_invoice_url:
                return "unchanged"
            await self._invoices.set_status(
                invoice.project_id,
                invoice.environment,
                invoice.id,
                invoice.status,
                hosted_invoice_url=url,
            )
            return "url_recorded"
        if event_type == "invoice.payment_failed":
            attempt = obj.get("attempt_count")
            await self._accounts.record_alert(
                AlertRecord(
                    project_id=invoice.project_id,
                    environment=invoice.environment,
                    kind="invoice_payment_failed",
                    end_user_id=invoice.end_user_id,
                    window=f"{invoice.id}:{attempt}",
                    message=f"Payment of invoice {invoice.number or invoice.id} failed.",
                )
            )
            return "payment_failed_recorded"
        return "ignored"

    async def _ours(self, stripe_id: object, account: object) -> Invoice | None:
        if not isinstance(stripe_id, str) or not stripe_id:
            return None
        invoice = await self._invoices.invoice_by_stripe_id(stripe_id)
        if invoice is None:
            return None
        project = await self._accounts.get_project(invoice.project_id)
        connection = await self._store.get_connection(project.organization_id) if project else None
        if connection is None or connection.account_id != account:
            log.warning(
                "stripe event for invoice %s from account %r, not its organization's",
                invoice.id,
                account,
            )
            return None
        return invoice

    async def _move(self, invoice: Invoice, target: InvoiceStatus) -> str:
        if invoice.status is target:
            return "unchanged"
        try:
            await self._invoices.set_status(
                invoice.project_id, invoice.environment, invoice.id, target
            )
        except InvalidTransition as exc:
            # Stripe's retry cannot make it valid: acknowledge, and say so in the log.
            log.warning("stripe event ignored for invoice %s: %s", invoice.id, exc)
            return "invalid_transition"
        return f"status_{target.value}"
