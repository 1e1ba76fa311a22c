"""Stripe sync: connect an organization's Stripe account, send finalized invoices to it.

End users pay the operator directly: invoices are created *on the operator's connected
account* (``Stripe-Account``), and meterline never touches the money. One connection per
organization covers all its projects.

Sending is a chain of Stripe calls (customer, invoice, items, finalize, send). Each carries
a deterministic idempotency key derived from our invoice id, so a send that crashed
half-way and is retried replays the calls already made instead of creating a second
invoice; only when the whole chain succeeded is the Stripe id stored, and from then on a
send is a no-op.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from meterline.domain.entities import Environment, UserKey
from meterline.domain.invoices import Invoice, InvoiceStatus
from meterline.ports import Accounts, Clock, InvoiceStore
from meterline.services.auth import AuthContext
from meterline.services.errors import Conflict, Forbidden, Invalid, NotFoundError
from meterline.services.stripe_oauth_state import sign_state, verify_state
from meterline.services.stripe_ports import (
    Payments,
    PaymentsError,
    StripeConnection,
    StripeStore,
)
from meterline.services.stripe_webhooks import WebhookApplier

__all__ = ["StripeOptions", "StripeSync"]

log = logging.getLogger("meterline.stripe")


@dataclass(frozen=True, slots=True)
class StripeOptions:
    #: The app's secret key: signs the OAuth ``state``.
    state_secret: str
    days_until_due: int = 30
    state_ttl_seconds: int = 900


class StripeSync:
    def __init__(
        self,
        payments: Payments,
        store: StripeStore,
        invoices: InvoiceStore,
        accounts: Accounts,
        clock: Clock,
        options: StripeOptions,
    ) -> None:
        self._payments = payments
        self._store = store
        self._invoices = invoices
        self._accounts = accounts
        self._clock = clock
        self._options = options
        self._webhooks = WebhookApplier(payments, store, invoices, accounts)

    # ------------------------------------------------------------------ Connect

    @staticmethod
    def _require_live_key(ctx: AuthContext) -> None:
        # The connection is the organization's, live money included: a test key (often
        # sitting in a developer's .env) must not be able to swap or drop it.
        if ctx.environment is not Environment.LIVE:
            raise Forbidden(
                "Connecting or disconnecting Stripe needs a live project key (mk_live_…).",
                code="live_key_required",
            )

    def connect_url(self, ctx: AuthContext, redirect_uri: str | None = None) -> str:
        self._require_live_key(ctx)
        state = sign_state(
            self._options.state_secret,
            ctx.project.organization_id,
            ctx.project_id,
            self._clock.now(),
            self._options.state_ttl_seconds,
        )
        return self._payments.authorize_url(state, redirect_uri)

    async def complete(self, state: str, code: str) -> StripeConnection:
        """The Connect callback: the state proves who asked; Stripe's code names the account."""
        parsed = verify_state(self._options.state_secret, state, self._clock.now())
        if not code:
            raise Invalid("The callback has no authorization code.", code="missing_code")
        account = await self._payments.complete_oauth(code)
        connection = await self._store.set_connection(
            parsed.organization_id, account.account_id, account.livemode
        )
        log.info("stripe connected: org=%s account=%s", parsed.organization_id, account.account_id)
        return connection

    async def onboarding_url(self, ctx: AuthContext, *, refresh_url: str, return_url: str) -> str:
        """Express onboarding for an organization without a Stripe account: the platform
        creates one (once per organization, idempotently), connects it, and returns the
        link where the operator fills in their details."""
        self._require_live_key(ctx)
        org = ctx.project.organization_id
        connection = await self._store.get_connection(org)
        if connection is None:
            account_id = await self._payments.create_express_account(
                email=None, idempotency_key=f"ml-acct-{org}"
            )
            connection = await self._store.set_connection(org, account_id, self._payments.livemode)
        return await self._payments.create_account_link(
            connection.account_id, refresh_url=refresh_url, return_url=return_url
        )

    async def disconnect(self, ctx: AuthContext) -> bool:
        self._require_live_key(ctx)
        org = ctx.project.organization_id
        connection = await self._store.get_connection(org)
        if connection is None:
            return False
        if not await self._payments.deauthorize(connection.account_id):
            log.info("stripe account %s was already disconnected", connection.account_id)
        return await self._store.delete_connection(org)

    async def status(self, ctx: AuthContext) -> dict[str, Any]:
        connection = await self._store.get_connection(ctx.project.organization_id)
        return {
            "connected": connection is not None,
            "account_id": connection.account_id if connection else None,
            "livemode": connection.livemode if connection else None,
            "connected_at": (
                connection.connected_at.isoformat()
                if connection and connection.connected_at
                else None
            ),
            "platform_mode": "live" if self._payments.livemode else "test",
            "test_invoices_sendable": not self._payments.livemode,
        }

    # ------------------------------------------------------------------ invoices

    async def _invoice(self, ctx: AuthContext, invoice_id: str) -> Invoice:
        invoice = await self._invoices.get_invoice(ctx.project_id, ctx.environment, invoice_id)
        if invoice is None:
            raise NotFoundError(
                f"No invoice {invoice_id!r} in this project and environment.",
                code="invoice_not_found",
            )
        return invoice

    async def _connection(self, ctx: AuthContext) -> StripeConnection:
        connection = await self._store.get_connection(ctx.project.organization_id)
        if connection is None:
            raise Conflict(
                "Stripe is not connected for this organization: connect it first "
                "(GET /api/v1/stripe/connect).",
                code="stripe_not_connected",
            )
        return connection

    def _check_sendable(self, invoice: Invoice) -> None:
        if invoice.status is InvoiceStatus.DRAFT:
            raise Conflict(
                f"Invoice {invoice.id} is a draft: finalize it before sending it.",
                code="invoice_not_finalized",
            )
        if invoice.status is not InvoiceStatus.OPEN:
            raise Conflict(
                f"Invoice {invoice.id} is {invoice.status}; only an open invoice can be sent.",
                code="invoice_not_open",
            )
        if invoice.environment is Environment.TEST and self._payments.livemode:
            raise Conflict(
                "Test-environment invoices are export-only while the platform uses a live "
                "Stripe key (sk_live_…): configure a test key (sk_test_…) to send them, or "
                "export them instead.",
                code="export_only",
            )
        if invoice.total_cents <= 0:
            raise Conflict(
                f"Invoice {invoice.id} totals {invoice.total_cents} cents: nothing to collect.",
                code="nothing_to_collect",
            )

    async def send(self, ctx: AuthContext, invoice_id: str) -> Invoice:
        invoice = await self._invoice(ctx, invoice_id)
        if invoice.stripe_invoice_id:
            return invoice  # already sent: sending again must not email the customer twice
        self._check_sendable(invoice)
        account = (await self._connection(ctx)).account_id
        key = UserKey(ctx.project_id, ctx.environment, invoice.end_user_id)
        user = await self._accounts.get_end_user(key)
        if user is None or not user.email:
            raise Invalid(
                f"End user {invoice.end_user_id!r} has no email address; Stripe emails the "
                "invoice to it. Set the end user's email, then send again.",
                code="end_user_email_missing",
                param="email",
            )
        customer = await self._payments.find_or_create_customer(account, user)
        if customer != user.stripe_customer_id:
            await self._accounts.update_end_user(key, stripe_customer_id=customer)
        currency = invoice.currency.lower()
        stripe_id = await self._payments.create_invoice(
            account,
            customer_id=customer,
            currency=currency,
            days_until_due=self._options.days_until_due,
            metadata={
                "meterline_invoice_id": invoice.id,
                "meterline_invoice_number": invoice.number or "",
                "meterline_project_id": invoice.project_id,
                "meterline_environment": invoice.environment.value,
                "meterline_end_user_id": invoice.end_user_id[:500],
            },
            idempotency_key=f"ml-inv-{invoice.id}-create",
        )
        for n, line in enumerate(li for li in invoice.lines if li.amount_cents):
            await self._payments.add_item(
                account,
                customer_id=customer,
                invoice_id=stripe_id,
                amount=line.amount_cents,
                currency=currency,
                description=line.description,
                idempotency_key=f"ml-inv-{invoice.id}-item-{n}",
            )
        stripe_id, hosted_url = await self._payments.finalize(
            account, stripe_id, idempotency_key=f"ml-inv-{invoice.id}-finalize"
        )
        await self._payments.send(account, stripe_id, idempotency_key=f"ml-inv-{invoice.id}-send")
        return await self._invoices.set_status(
            invoice.project_id,
            invoice.environment,
            invoice.id,
            InvoiceStatus.OPEN,
            stripe_invoice_id=stripe_id,
            hosted_invoice_url=hosted_url,
        )

    async def void_remote(self, ctx: AuthContext, invoice: Invoice) -> None:
        """Void the Stripe copy of a sent invoice (call before voiding ours)."""
        if not invoice.stripe_invoice_id:
            return
        account = (await self._connection(ctx)).account_id
        try:
            await self._payments.void(
                account, invoice.stripe_invoice_id, idempotency_key=f"ml-inv-{invoice.id}-void"
            )
        except PaymentsError as exc:
            raise Conflict(f"Stripe refused to void the invoice: {exc.message}") from exc

    # ------------------------------------------------------------------ webhooks

    async def handle_webhook(self, payload: bytes, sig_header: str | None) -> dict[str, Any]:
        return await self._webhooks.handle(payload, sig_header)
