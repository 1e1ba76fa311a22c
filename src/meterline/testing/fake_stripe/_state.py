"""The fake's memory: accounts, their customers/invoices/items, OAuth codes, idempotency.

Every rule here is one our Stripe code relies on, enforced the way Stripe enforces it, so
a bug in the adapter or the service fails a test instead of passing against a lenient
stub: connected-account objects live per account (``Stripe-Account`` decides which),
invoice items join only a draft invoice of the same customer, a finalized invoice is
numbered and frozen, and an idempotency key replays its first response or refuses
different parameters. Guarded by one lock: the server thread writes, tests read.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from ._objects import ObjectsMixin

__all__ = ["FakeStripeState", "OAuthFailure", "RecordedStripeRequest", "StripeFailure"]


class StripeFailure(Exception):
    """An API error, rendered as Stripe renders it: ``{"error": {type, code, message}}``."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type_: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"error": {"type": type_, "message": message}}
        if code:
            self.body["error"]["code"] = code
        if param:
            self.body["error"]["param"] = param


class OAuthFailure(StripeFailure):
    """Connect OAuth errors use the OAuth shape: ``{"error": "invalid_grant", …}``."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(status, description)
        self.body = {"error": error, "error_description": description}


@dataclass(frozen=True)
class RecordedStripeRequest:
    method: str
    path: str
    #: The ``Stripe-Account`` header (None: the platform itself).
    account: str | None
    idempotency_key: str | None
    params: dict[str, Any]
    status: int
    replayed: bool = False
    api_key: str | None = None


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


class FakeStripeState(ObjectsMixin):
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.url = ""
        self.accounts: dict[str, dict[str, Any]] = {}
        self.deauthorized: set[str] = set()
        self.customers: dict[str, dict[str, dict[str, Any]]] = {}
        self.invoices: dict[str, dict[str, dict[str, Any]]] = {}
        self.items: dict[str, dict[str, dict[str, Any]]] = {}
        #: invoice id → how many times it was sent.
        self.sent: dict[str, int] = {}
        self.codes: dict[str, str] = {}
        #: Every OAuth token response handed out (secrets a client must never store raw).
        self.issued_tokens: list[dict[str, Any]] = []
        self.requests: list[RecordedStripeRequest] = []
        self._idempotency: dict[tuple[Any, ...], tuple[str, int, dict[str, Any]]] = {}
        self._numbers: dict[str, int] = {}

    # ------------------------------------------------------------------ accounts / OAuth

    def add_account(self, account_id: str | None = None, **fields: Any) -> str:
        with self.lock:
            acct = account_id or new_id("acct")
            self.accounts[acct] = {
                "id": acct,
                "object": "account",
                "type": fields.pop("type", "standard"),
                "charges_enabled": True,
                "details_submitted": True,
                "created": int(time.time()),
                **fields,
            }
            self.deauthorized.discard(acct)
            return acct

    def issue_code(self, account_id: str | None = None) -> str:
        """What Stripe does when the user clicks "Connect": an account and a one-time code."""
        with self.lock:
            acct = account_id if account_id in self.accounts else self.add_account(account_id)
            code = new_id("ac")
            self.codes[code] = acct
            return code

    def connected(self, account_id: str) -> bool:
        with self.lock:
            return account_id in self.accounts and account_id not in self.deauthorized

    # ------------------------------------------------------------------ requests

    def handle(
        self,
        method: str,
        path: str,
        params: dict[str, Any],
        *,
        account: str | None,
        idempotency_key: str | None,
        api_key: str | None,
    ) -> tuple[int, dict[str, Any], bool]:
        """Route one request, with idempotent replay; log it. Returns (status, body, replayed)."""
        with self.lock:
            status, body, replayed = self._handle(
                method, path, params, account, idempotency_key, api_key
            )
            self.requests.append(
                RecordedStripeRequest(
                    method, path, account, idempotency_key, params, status, replayed, api_key
                )
            )
            return status, body, replayed

    def _handle(
        self,
        method: str,
        path: str,
        params: dict[str, Any],
        account: str | None,
        idem: str | None,
        api_key: str | None,
    ) -> tuple[int, dict[str, Any], bool]:
        if not api_key:
            failure = StripeFailure(
                401, "You did not provide an API key.", type_="invalid_request_error"
            )
            return failure.status, failure.body, False
        scope = (api_key, account, idem)
        fingerprint = json.dumps([method, path, params], sort_keys=True)
        if method == "POST" and idem is not None and scope in self._idempotency:
            first, status, body = self._idempotency[scope]
            if first != fingerprint:
                failure = StripeFailure(
                    400,
                    "Keys for idempotent requests can only be used with the same parameters "
                    f"they were first used with. Try using a key other than '{idem}' if you "
                    "meant to execute a different request.",
                    type_="idempotency_error",
                )
                return failure.status, failure.body, False
            return status, body, True
        try:
            body = self.route(method, path, params, account, livemode=api_key.startswith("sk_live"))
            status = 200
        except StripeFailure as failure:
            return failure.status, failure.body, False
        if method == "POST" and idem is not None:
            self._idempotency[scope] = (fingerprint, status, body)
        return status, body, False

    def route(
        self, method: str, path: str, p: dict[str, Any], account: str | None, *, livemode: bool
    ) -> dict[str, Any]:
        parts = [s for s in path.split("/") if s]
        if parts[:1] == ["oauth"]:
            return self.oauth(parts[1:], p)
        if parts[:1] != ["v1"] or len(parts) < 2:
            raise StripeFailure(404, f"Unrecognized request URL ({method}: {path}).")
        resource, rest = parts[1], parts[2:]
        if resource == "accounts" and method == "POST" and not rest:
            return self.create_express_account(p)
        if resource == "account_links" and method == "POST" and not rest:
            return self.create_account_link(p)
        if resource in ("customers", "invoices", "invoiceitems"):
            acct = self.require_account(account)
            return self.connected_object(method, resource, rest, p, acct, livemode)
        raise StripeFailure(404, f"Unrecognized request URL ({method}: {path}).")

    def require_account(self, account: str | None) -> str:
        if account is None:
            raise StripeFailure(
                400,
                "This fake only keeps customers and invoices on connected accounts: send the "
                "Stripe-Account header.",
                code="stripe_account_required",
            )
        if not self.connected(account):
            raise StripeFailure(
                403,
                f"The provided key does not have access to account '{account}' (or that "
                "account does not exist). Application access may have been revoked.",
                type_="invalid_request_error",
                code="account_invalid",
            )
        return account

    def oauth(self, rest: list[str], p: dict[str, Any]) -> dict[str, Any]:
        if rest == ["token"]:
            if p.get("grant_type") != "authorization_code":
                raise OAuthFailure(400, "unsupported_grant_type", "Only authorization_code.")
            acct = self.codes.pop(str(p.get("code", "")), None)
            if acct is None:
                raise OAuthFailure(
                    400, "invalid_grant", f"Authorization code does not exist: {p.get('code')}"
                )
            self.deauthorized.discard(acct)
            token = {
                "access_token": new_id("sk_test"),
                "livemode": False,
                "refresh_token": new_id("rt"),
                "token_type": "bearer",
                "stripe_publishable_key": new_id("pk_test"),
                "stripe_user_id": acct,
                "scope": "read_write",
            }
            self.issued_tokens.append(token)
            return token
        if rest == ["deauthorize"]:
            acct = str(p.get("stripe_user_id", ""))
            if not p.get("client_id") or not self.connected(acct):
                raise OAuthFailure(
                    401,
                    "invalid_client",
                    f"This application is not connected to stripe account {acct}, or that "
                    "account does not exist.",
                )
            self.deauthorized.add(acct)
            return {"stripe_user_id": acct}
        raise OAuthFailure(404, "invalid_request", "Unknown OAuth endpoint.")

    def next_number(self, account: str) -> str:
        self._numbers[account] = self._numbers.get(account, 0) + 1
        return f"{account[-6:].upper()}-{self._numbers[account]:04d}"
