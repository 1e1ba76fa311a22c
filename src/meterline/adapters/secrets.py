"""``ports.SecretBox`` with Fernet (AES-128-CBC + HMAC-SHA256) from ``cryptography``.

The Fernet key is derived from ``METERLINE_SECRET_KEY`` with SHA-256, so any string the
operator chooses works; rotating that key makes stored secrets unreadable (re-enter them).
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken

__all__ = ["FernetBox", "InvalidToken"]


class FernetBox:
    def __init__(self, secret_key: str) -> None:
        digest = hashlib.sha256(("meterline-secrets:" + secret_key).encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        return self._fernet.decrypt(token.encode()).decode()
