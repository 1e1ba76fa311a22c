"""Per-project provider credentials: set, list (masked), delete, and the decrypted view
the router uses. Secrets are encrypted before they reach the store."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from meterline.ports import Accounts, SecretBox
from meterline.services.auth import AuthContext
from meterline.services.body_fields import known_fields
from meterline.services.cache import SHORT_CACHE_REFRESH_AHEAD, TTLCache
from meterline.services.errors import Invalid, NotFoundError

__all__ = ["ProjectCredential", "ProviderCredentials", "mask"]


@dataclass(frozen=True, slots=True)
class ProjectCredential:
    provider: str
    api_key: str
    base_url: str | None


def mask(secret: str) -> str:
    """Enough to recognise a key, never enough to use it."""
    return f"{secret[:3]}…{secret[-4:]}" if len(secret) > 10 else "…"


class ProviderCredentials:
    def __init__(
        self,
        accounts: Accounts,
        box: SecretBox,
        known_providers: Iterable[str],
        *,
        cache_ttl_seconds: float,
    ) -> None:
        self._accounts = accounts
        self._box = box
        self._known = frozenset(known_providers)
        self._cache: TTLCache[dict[str, ProjectCredential]] = TTLCache(
            cache_ttl_seconds, refresh_ahead=SHORT_CACHE_REFRESH_AHEAD
        )

    @property
    def known_providers(self) -> frozenset[str]:
        return self._known

    async def for_project(self, project_id: str) -> Mapping[str, ProjectCredential]:
        async def load() -> dict[str, ProjectCredential]:
            out: dict[str, ProjectCredential] = {}
            for stored in await self._accounts.provider_credentials(project_id):
                out[stored.provider] = ProjectCredential(
                    stored.provider, self._box.decrypt(stored.encrypted_secret), stored.base_url
                )
            return out

        return await self._cache.get_or_load(project_id, load)

    async def set(self, ctx: AuthContext, provider: str, raw: object) -> ProjectCredential:
        if provider not in self._known:
            raise Invalid(
                f"unknown provider {provider!r}; known: {', '.join(sorted(self._known))}",
                param="provider",
            )
        raw = known_fields(raw, {"api_key", "base_url"})
        api_key = raw.get("api_key")
        if not isinstance(api_key, str) or not api_key.strip() or len(api_key) > 4096:
            raise Invalid("api_key is required", param="api_key")
        base_url = raw.get("base_url")
        if base_url is not None:
            parts = urlsplit(base_url) if isinstance(base_url, str) else None
            if not parts or parts.scheme not in ("http", "https") or not parts.netloc:
                raise Invalid("base_url must be an http(s) URL", param="base_url")
        await self._accounts.set_provider_credential(
            ctx.project_id, provider, self._box.encrypt(api_key.strip()), base_url
        )
        self._cache.invalidate(ctx.project_id)
        return ProjectCredential(provider, api_key.strip(), base_url)

    async def listing(self, ctx: AuthContext) -> list[dict[str, str | None]]:
        creds = await self.for_project(ctx.project_id)
        return [
            {"provider": c.provider, "api_key": mask(c.api_key), "base_url": c.base_url}
            for c in creds.values()
        ]

    async def delete(self, ctx: AuthContext, provider: str) -> None:
        if not await self._accounts.delete_provider_credential(ctx.project_id, provider):
            raise NotFoundError(f"no credential for provider {provider!r} in this project")
        self._cache.invalidate(ctx.project_id)
