"""Settings, read once at start (pydantic-settings) and passed down; no globals."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "load_settings"]

DEFAULT_HOME = Path(".meterline")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="METERLINE_", extra="ignore")

    home: Path = DEFAULT_HOME
    #: ``sqlite:///path.db`` or ``postgresql://user:pass@host/db``; absent → SQLite file in home.
    database_url: str | None = None
    #: ``redis://host:6379/0``; absent → in-process counters (one worker only).
    redis_url: str | None = None
    #: Encrypts stored secrets (provider keys, Stripe tokens). Generated into home if unset.
    secret_key: str | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    log_level: str = "info"
    #: How long an unsettled check-quota reservation holds quota.
    reservation_ttl_seconds: int = 600
    #: When the counter backend is unreachable: refuse (closed) or admit (open).
    counters_failure: Literal["closed", "open"] = "closed"
    #: Cache lifetime for keys, projects and plans on the hot path.
    cache_ttl_seconds: float = 2.0
    #: Cache lifetime for end users (plan, blocked) on the hot path. Every change through
    #: the API drops the cached copy at once, on every replica (Redis pub/sub when Redis
    #: is configured), so this only bounds what a replica that missed a message serves.
    end_user_cache_ttl_seconds: float = 60.0

    openai_api_key: str | None = Field(default=None, validation_alias="OPENAI_API_KEY")
    openai_base_url: str = Field(
        default="https://api.openai.com/v1", validation_alias="OPENAI_BASE_URL"
    )
    anthropic_api_key: str | None = Field(default=None, validation_alias="ANTHROPIC_API_KEY")
    anthropic_base_url: str = Field(
        default="https://api.anthropic.com", validation_alias="ANTHROPIC_BASE_URL"
    )
    gemini_api_key: str | None = Field(default=None, validation_alias="GEMINI_API_KEY")
    gemini_base_url: str = Field(
        default="https://generativelanguage.googleapis.com/v1beta/openai",
        validation_alias="GEMINI_BASE_URL",
    )
    #: Seconds to wait for a provider's next bytes (a stalled provider answers 504).
    upstream_read_timeout_seconds: float = 600.0
    #: Seconds to wait for Redis before treating it as unreachable (counters_failure).
    redis_timeout_seconds: float = 5.0
    #: Seconds a stream whose client left is still read, to bill what it generated.
    stream_drain_timeout_seconds: float = 60.0

    stripe_secret_key: str | None = None
    stripe_client_id: str | None = None
    stripe_webhook_secret: str | None = None
    stripe_api_base: str | None = None

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'meterline.db').resolve()}"

    def resolved_secret_key(self) -> str:
        """The configured key, else one kept in ``home/secret_key`` (created on first run)."""
        if self.secret_key:
            return self.secret_key
        path = self.home / "secret_key"
        if path.exists():
            return path.read_text().strip()
        self.home.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(32)
        path.write_text(key)
        path.chmod(0o600)
        return key


def load_settings(**overrides: object) -> Settings:
    return Settings(**overrides)  # type: ignore[arg-type]
