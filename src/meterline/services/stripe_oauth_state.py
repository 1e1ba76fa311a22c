"""The OAuth ``state`` parameter: proof that a Connect callback answers our own request.

Without it anyone could send an admin a link that connects *their* Stripe account to the
admin's organization (login CSRF). The state is ``<payload>.<mac>``: the payload names
the organization and project that asked and when the state expires, a random nonce makes
each one distinct, and the HMAC-SHA256 under the app's secret key makes it unforgeable.
The callback needs no API key because a valid state already authenticates it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import datetime

from meterline.services.errors import ServiceError

__all__ = ["InvalidState", "OAuthState", "sign_state", "verify_state"]

_CONTEXT = b"meterline/stripe-connect-state/v1:"


class InvalidState(ServiceError):
    status = 400
    code = "invalid_state"


@dataclass(frozen=True, slots=True)
class OAuthState:
    organization_id: str
    project_id: str
    expires_at: int


def _mac(secret: str, payload: bytes) -> str:
    key = hashlib.sha256(_CONTEXT + secret.encode()).digest()  # not the raw app key
    return hmac.new(key, payload, hashlib.sha256).hexdigest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def sign_state(
    secret: str, organization_id: str, project_id: str, now: datetime, ttl_seconds: int
) -> str:
    body = {
        "o": organization_id,
        "p": project_id,
        "e": int(now.timestamp()) + ttl_seconds,
        "n": secrets.token_urlsafe(12),
    }
    payload = _b64(json.dumps(body, separators=(",", ":")).encode())
    return f"{payload}.{_mac(secret, payload.encode())}"


def verify_state(secret: str, state: str, now: datetime) -> OAuthState:
    payload, _, mac = state.partition(".")
    if not payload or not hmac.compare_digest(mac, _mac(secret, payload.encode())):
        raise InvalidState(
            "The Connect state is invalid: start again from GET /api/v1/stripe/connect."
        )
    try:
        raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        body = json.loads(raw)
        parsed = OAuthState(str(body["o"]), str(body["p"]), int(body["e"]))
    except (ValueError, KeyError, TypeError):
        raise InvalidState("The Connect state is malformed.") from None
    if now.timestamp() > parsed.expires_at:
        raise InvalidState(
            "The Connect state has expired: start again from GET /api/v1/stripe/connect.",
            code="state_expired",
        )
    return parsed
