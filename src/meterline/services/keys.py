"""API keys: ``mk_live_…`` / ``mk_test_…``. Stored only as a SHA-256 digest plus a short
display prefix. Keys carry 256 bits of randomness, so a fast hash is safe here (argon2 is
for low-entropy passwords) and keeps authentication off the hot path's budget."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from meterline.domain.entities import Environment

__all__ = ["GeneratedKey", "environment_of", "generate_key", "hash_key"]

_PREFIXES = {Environment.LIVE: "mk_live_", Environment.TEST: "mk_test_"}
DISPLAY_CHARS = 12


@dataclass(frozen=True, slots=True)
class GeneratedKey:
    plaintext: str
    digest: str
    prefix: str
    environment: Environment


def hash_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def environment_of(plaintext: str) -> Environment | None:
    for env, prefix in _PREFIXES.items():
        if plaintext.startswith(prefix) and len(plaintext) > len(prefix) + 16:
            return env
    return None


def generate_key(environment: Environment) -> GeneratedKey:
    plaintext = _PREFIXES[environment] + secrets.token_urlsafe(32)
    return GeneratedKey(
        plaintext=plaintext,
        digest=hash_key(plaintext),
        prefix=plaintext[: len(_PREFIXES[environment]) + DISPLAY_CHARS // 2],
        environment=environment,
    )
