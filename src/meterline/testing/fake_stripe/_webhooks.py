"""Webhook events as Stripe delivers them: a JSON event signed with the endpoint secret.

``Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<payload>")>`` — built
here by hand (not with the SDK) so the adapter's verification is checked against an
independent implementation of the scheme.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

__all__ = ["WebhookDelivery", "build_event", "sign_payload"]


@dataclass(frozen=True)
class WebhookDelivery:
    event: dict[str, Any]
    payload: bytes
    signature: str
    #: The receiver's status when the fake posted it (None: left to the test to post).
    status_code: int | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {"Stripe-Signature": self.signature, "Content-Type": "application/json"}


def sign_payload(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def build_event(
    event_type: str,
    data_object: dict[str, Any],
    *,
    account: str | None = None,
    event_id: str | None = None,
    livemode: bool = False,
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "id": event_id or f"evt_{uuid.uuid4().hex[:24]}",
        "object": "event",
        "api_version": "2025-01-27.acacia",
        "created": int(time.time()),
        "data": {"object": data_object},
        "livemode": livemode,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
    }
    if account is not None:
        event["account"] = account
    return event


def encode(event: dict[str, Any]) -> bytes:
    return json.dumps(event, indent=2).encode()
