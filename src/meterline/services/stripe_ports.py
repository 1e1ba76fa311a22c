"""What Stripe sync needs from the outside world, declared next to the service.

``ports.py`` has no ``Payments`` yet (it joins when the lead wires Stripe in), so the
Protocols live here for now; moving them is a pure rename. The adapter
(``adapters/stripe``) raises :class:`PaymentsError` and :class:`BadSignature`, so the
service and the web layer never see a ``stripe`` exception type.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from meterline.domain.entities import EndUser
from meterline.services.errors import ServiceError

__all__ = [
    "BadSignature",
    "ConnectedAccount",
    "Payments",
    "PaymentsError",
    "StripeConnection",
    "StripeStore",
]


class PaymentsError(ServiceError):
    """Stripe refused or could not be reached; the message is Stripe's (no secrets)."""

    status = 502
    type = "api_error"
    code = "stripe_error"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None):
        super().__init__(message, code=code)
        if status is not None:
            self.status = status


class BadSignature(ServiceError):
    """A webhook whose signature does not verify or whose timestamp is too old."""

    status = 400
    code = "invalid_signature"


@dataclass(frozen=True, slots=True)
class ConnectedAccount:
    account_id: str
    livemode: bool


@dataclass(frozen=True, slots=True)
class StripeConnection:
    organization_id: str
    account_id: str
    livemode: bool
    connected_at: datetime | None = None


class Payments(Protocol):
    """Stripe Connect, as the service uses it. Every create takes an idempotency key."""

    @property
    def livemode(self) -> bool:
        """True for a live platform key (``sk_live_…``/``rk_live_…``)."""
        ...

    def authorize_url(self, state: str, redirect_uri: str | None = None) -> str: ...
    async def complete_oauth(self, code: str) -> ConnectedAccount: ...
    async def deauthorize(self, account_id: str) -> bool:
        """False when Stripe says the account was not connected (already gone)."""
        ...

    async def create_express_account(self, *, email: str | None, idempotency_key: str) -> str: ...
    async def create_account_link(
        self, account_id: str, *, refresh_url: str, return_url: str
    ) -> str: ...
    async def find_or_create_customer(self, account_id: str, end_user: EndUser) -> str: ...
    async def create_invoice(
        self,
        account_id: str,
        *,
        customer_id: str,
        currency: str,
        days_until_due: int,
        metadata: Mapping[str, str],
        idempotency_key: str,
    ) -> str: ...
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
    ) -> str: ...
    async def finalize(
        self, account_id: str, invoice_id: str, *, idempotency_key: str
    ) -> tuple[str, str | None]:
        """(invoice id, hosted invoice URL); an already finalized invoice is not an error."""
        ...

    async def send(self, account_id: str, invoice_id: str, *, idempotency_key: str) -> None: ...
    async def void(self, account_id: str, invoice_id: str, *, idempotency_key: str) -> None: ...
    def construct_event(self, payload: bytes, sig_header: str | None) -> dict[str, Any]:
        """The verified event (signature and a 300 s tolerance); :class:`BadSignature` else."""
        ...


class StripeStore(Protocol):
    """The organization's connection, and which webhook events were already applied."""

    async def get_connection(self, organization_id: str) -> StripeConnection | None: ...
    async def set_connection(
        self, organization_id: str, account_id: str, livemode: bool
    ) -> StripeConnection: ...
    async def delete_connection(self, organization_id: str) -> bool: ...
    async def delete_account(self, account_id: str) -> list[str]:
        """Drop every connection to ``account_id``; the organizations that had one."""
        ...

    async def mark_webhook_processed(self, event_id: str, event_type: str) -> bool:
        """True the first time only (a unique insert decides under concurrency)."""
        ...

    async def unmark_webhook(self, event_id: str) -> None:
        """Forget an event whose handling failed, so Stripe's retry is applied."""
        ...
