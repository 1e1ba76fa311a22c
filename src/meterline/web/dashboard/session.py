"""The dashboard's session: a signed (HMAC-SHA256) cookie, no server-side store.

It carries the admin's id and organization, the chosen project and environment, and the
CSRF token that every form echoes back. Before sign-in it carries only a CSRF token, so
the login form is protected too. Signing out drops the cookie.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import asdict, dataclass, replace
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

__all__ = ["COOKIE", "Session", "SessionSigner"]

COOKIE = "meterline_dashboard"
MAX_AGE = 12 * 3600


@dataclass(frozen=True, slots=True)
class Session:
    csrf: str
    admin_id: str | None = None
    organization_id: str | None = None
    email: str | None = None
    project_id: str | None = None
    environment: str = "test"
    issued: int = 0

    @property
    def signed_in(self) -> bool:
        return self.admin_id is not None

    def with_(self, **changes: Any) -> Session:
        return replace(self, **changes)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionSigner:
    def __init__(self, secret: str) -> None:
        self._key = hmac.new(secret.encode(), b"meterline-dashboard-session", "sha256").digest()

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest())

    def dumps(self, session: Session) -> str:
        payload = _b64(json.dumps(asdict(session), separators=(",", ":")).encode())
        return f"{payload}.{self._sign(payload)}"

    def loads(self, value: str | None) -> Session | None:
        if not value or "." not in value:
            return None
        payload, sig = value.rsplit(".", 1)
        if not hmac.compare_digest(sig, self._sign(payload)):
            return None
        try:
            data = json.loads(_unb64(payload))
            session = Session(**data)
        except (ValueError, TypeError):
            return None
        if session.signed_in and time.time() - session.issued > MAX_AGE:
            return Session(csrf=session.csrf)
        return session

    def read(self, request: Request) -> Session:
        return self.loads(request.cookies.get(COOKIE)) or Session(csrf=secrets.token_urlsafe(24))

    def write(self, response: Response, request: Request, session: Session) -> None:
        response.set_cookie(
            COOKIE,
            self.dumps(session),
            max_age=MAX_AGE,
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
            path="/dashboard",
        )

    @staticmethod
    def new_login(csrf_from: Session, admin_id: str, organization_id: str, email: str) -> Session:
        # A fresh CSRF token at sign-in: a token seen before login is not reused after.
        del csrf_from
        return Session(
            csrf=secrets.token_urlsafe(24),
            admin_id=admin_id,
            organization_id=organization_id,
            email=email,
            issued=int(time.time()),
        )
