"""``StripePayments``: the service's ``Payments`` port on stripe-python's ``StripeClient``.

Every object lives on the operator's connected account (``stripe_account=`` on each
call) and every create carries the caller's deterministic idempotency key, so Stripe
itself refuses to create anything twice when a send is retried. ``stripe_api_base``
points both the API and Connect OAuth hosts elsewhere (the fake Stripe in tests).
Stripe's exceptions are translated here: nothing above the adapter imports ``stripe``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import stripe

from meterline.config import Settings
from meterline.domain.entities import EndUser
from meterline.services.stripe_ports import BadSignature, ConnectedAccount, PaymentsError

__all__ = ["WEBHOOK_TOLERANCE_SECONDS", "StripePayments", "customer_idempotency_key"]

WEBHOOK_TOLERANCE_SECONDS = 300
T = TypeVar("T")


def customer_idempotency_key(end_user: EndUser) -> str:
    """Stable for one end user *as they are now*: a changed email or name yields a new key
    (reusing the old one with other parameters is an ``idempotency_error``). The user id
    is hashed: it is the operator's free-form string and Stripe keys are at most 255."""
    raw = "\x00".join([end_user.end_user_id, end_user.email or "", end_user.name or ""])
    digest = hashlib.sha256(raw.encode()).hexdigest()[:32]
    return f"ml-cus-{end_user.project_id}-{end_user.environment.value}-{digest}"


def _translate(exc: stripe.StripeError) -> PaymentsError:
    message = exc.user_message or str(getattr(exc, "_message", None) or exc)
    if isinstance(exc, stripe.oauth_error.OAuthError):
        return PaymentsError(
            f"Stripe Connect: {message}", code=exc.code or "oauth_error", status=400
        )
    if isinstance(exc, stripe.IdempotencyError):
        return PaymentsError(message, code="stripe_idempotency_error", status=409)
    if isinstance(exc, stripe.PermissionError | stripe.AuthenticationError):
        return PaymentsError(
            f"Stripe refused access to the connected account: {message}",
            code="stripe_account_unavailable",
            status=409,
        )
    if isinstance(exc, stripe.InvalidRequestError):
        return PaymentsError(f"Stripe: {message}", code=exc.code or "stripe_invalid_request")
    return PaymentsError(f"Stripe is unavailable: {message}", code="stripe_unavailable")


class StripePayments:
    def __init__(self, settings: Settings, *, max_network_retries: int = 2) -> None:
        if not settings.stripe_secret_key:
            raise ValueError("METERLINE_STRIPE_SECRET_KEY is not set")
        self._key = settings.stripe_secret_key
        self._webhook_secret = settings.stripe_webhook_secret
        bases: stripe.BaseAddresses = {}
        if settings.stripe_api_base:
            base = settings.stripe_api_base.rstrip("/")
            bases = {"api": base, "connect": base}
        # One HTTPX client for the async calls and the (threaded) sync OAuth calls.
        self._http = stripe.HTTPXClient(timeout=30, allow_sync_methods=True)
        self._client = stripe.StripeClient(
            self._key,
            client_id=settings.stripe_client_id,
            base_addresses=bases,
            max_network_retries=max_network_retries,
            http_client=self._http,
        )

    @property
    def livemode(self) -> bool:
        return self._key.startswith(("sk_live_", "rk_live_"))

    async def aclose(self) -> None:
        await self._http.close_async()
        self._http.close()

    async def _call(self, make: Callable[[], Awaitable[T]]) -> T:
        try:
            return await make()
        except stripe.StripeError as exc:
            raise _translate(exc) from exc

    # ------------------------------------------------------------------ Connect

    def authorize_url(self, state: str, redirect_uri: str | None = None) -> str:
        """OAuth for an existing Stripe account (Standard Connect)."""
        params: dict[str, Any] = {"response_type": "code", "scope": "read_write", "state": state}
        if redirect_uri:
            params["redirect_uri"] = redirect_uri
        try:
            return self._client.oauth.authorize_url(params)  # type: ignore[arg-type]
        except stripe.AuthenticationError as exc:  # no client_id configured
            raise PaymentsError(
                "Stripe Connect needs the platform's client id (METERLINE_STRIPE_CLIENT_ID).",
                code="stripe_not_configured",
                status=409,
            ) from exc

    async def complete_oauth(self, code: str) -> ConnectedAccount:
        token = await self._call(
            lambda: asyncio.to_thread(
                self._client.oauth.token, {"grant_type": "authorization_code", "code": code}
            )
        )
        return ConnectedAccount(str(token.stripe_user_id), bool(getattr(token, "livemode", False)))

    async def deauthorize(self, account_id: str) -> bool:
        try:
            await asyncio.to_thread(self._client.oauth.deauthorize, {"stripe_user_id": account_id})
        except stripe.oauth_error.OAuthError:
            return False  # not connected (any more): the outcome the caller wanted
        except stripe.StripeError as exc:
            raise _translate(exc) from exc
        return True

    async def create_express_account(self, *, email: str | None, idempotency_key: str) -> str:
        params: dict[str, Any] = {"type": "express"}
        if email:
            params["email"] = email
        account = await self._call(
            lambda: self._client.v1.accounts.create_async(
                params,  # type: ignore[arg-type]
                {"idempotency_key": idempotency_key},
            )
        )
        return str(account.id)

    async def create_account_link(
        self, account_id: str, *, refresh_url: str, return_url: str
    ) -> str:
        link = await self._call(
            lambda: self._client.v1.account_links.create_async(
                {
                    "account": account_id,
                    "refresh_url": refresh_url,
                    "return_url": return_url,
                    "type": "account_onboarding",
                }
            )
        )
        return str(link.url)

    # ------------------------------------------------------------------ invoices

    async def find_or_create_customer(self, account_id: str, end_user: EndUser) -> str:
        """The stored customer when it still exists on this account (a reconnected or
        different account, or a key of the other mode, does not have it), else a new one."""
        opts: dict[str, Any] = {"stripe_account": account_id}
        if end_user.stripe_customer_id:
            try:
                found = await self._client.v1.customers.retrieve_async(
                    end_user.stripe_customer_id,
                    options=opts,  # type: ignore[arg-type]
                )
                if not getattr(found, "deleted", False):
                    return str(found.id)
            except stripe.InvalidRequestError as exc:
                if exc.http_status != 404:
                    raise _translate(exc) from exc
            except stripe.StripeError as exc:
                raise _translate(exc) from exc
        params = {
            "email": end_user.email,
            "name": end_user.name or end_user.end_user_id[:256],
            "metadata": {
                "meterline_project_id": end_user.project_id,
                "meterline_environment": end_user.environment.value,
                "meterline_end_user_id": end_user.end_user_id[:500],
            },
        }
        customer = await self._call(
            lambda: self._client.v1.customers.create_async(
                params,  # type: ignore[arg-type]
                {**opts, "idempotency_key": customer_idempotency_key(end_user)},  # type: ignore[typeddict-item]
            )
        )
        return str(customer.id)

    async def create_invoice(
        self,
        account_id: str,
        *,
        customer_id: str,
        currency: str,
        days_until_due: int,
        metadata: Mapping[str, str],
        idempotency_key: str,
    ) -> str:
        params = {
            "customer": customer_id,
            "currency": currency.lower(),
            "collection_method": "send_invoice",
            "days_until_due": days_until_due,
            "auto_advance": False,  # we finalize and send ourselves, exactly once
            "pending_invoice_items_behavior": "exclude",
            "metadata": dict(metadata),
        }
        invoice = await self._call(
            lambda: self._client.v1.invoices.create_async(
                params,  # type: ignore[arg-type]
                {"stripe_account": account_id, "idempotency_key": idempotency_key},
            )
        )
        return str(invoice.id)

    async def add_item(
        self,
        account_id: str,
        *,
        customer_id: str,
        invoice_id: str,
        amount: int,
        currency: str,
        description: str,
        idempotency_key: str,
    ) -> str:
        params = {
            "customer": customer_id,
            "invoice": invoice_id,
            "amount": amount,
            "currency": currency.lower(),
            "description": description,
        }
        item = await self._call(
            lambda: self._client.v1.invoice_items.create_async(
                params,  # type: ignore[arg-type]
                {"stripe_account": account_id, "idempotency_key": idempotency_key},
            )
        )
        return str(item.id)

    async def finalize(
        self, account_id: str, invoice_id: str, *, idempotency_key: str
    ) -> tuple[str, str | None]:
        opts: Any = {"stripe_account": account_id, "idempotency_key": idempotency_key}
        try:
            inv = await self._client.v1.invoices.finalize_invoice_async(
                invoice_id, {"auto_advance": False}, opts
            )
        except stripe.InvalidRequestError as exc:
            # Finalized by an earlier attempt whose key has expired: fine if it is open.
            inv = await self._call(
                lambda: self._client.v1.invoices.retrieve_async(
                    invoice_id, options={"stripe_account": account_id}
                )
            )
            if inv.status == "draft":
                raise _translate(exc) from exc
        except stripe.StripeError as exc:
            raise _translate(exc) from exc
        return str(inv.id), inv.hosted_invoice_url

    async def send(self, account_id: str, invoice_id: str, *, idempotency_key: str) -> None:
        await self._call(
            lambda: self._client.v1.invoices.send_invoice_async(
                invoice_id,
                options={"stripe_account": account_id, "idempotency_key": idempotency_key},
            )
        )

    async def void(self, account_id: str, invoice_id: str, *, idempotency_key: str) -> None:
        await self._call(
            lambda: self._client.v1.invoices.void_invoice_async(
                invoice_id,
                options={"stripe_account": account_id, "idempotency_key": idempotency_key},
            )
        )

    # ------------------------------------------------------------------ webhooks

    def construct_event(self, payload: bytes, sig_header: str | None) -> dict[str, Any]:
        if not self._webhook_secret:
            raise PaymentsError(
                "Webhooks cannot be verified: METERLINE_STRIPE_WEBHOOK_SECRET is not set.",
                code="webhook_secret_missing",
                status=503,
            )
        try:
            stripe.WebhookSignature.verify_header(
                payload, sig_header, self._webhook_secret, tolerance=WEBHOOK_TOLERANCE_SECONDS
            )
            event = json.loads(payload)
        except stripe.SignatureVerificationError as exc:
            raise BadSignature(f"Webhook signature rejected: {exc.user_message or exc}") from exc
        except (ValueError, UnicodeDecodeError):
            raise BadSignature(
                "Webhook payload is not valid JSON.", code="invalid_payload"
            ) from None
        if not isinstance(event, dict):
            raise BadSignature("Webhook payload is not an event object.", code="invalid_payload")
        return event
