"""Authenticating API keys: the key fixes the project and the environment."""

from __future__ import annotations

from dataclasses import dataclass

from meterline.domain.entities import ApiKey, Environment, Project
from meterline.ports import Accounts
from meterline.services.cache import SHORT_CACHE_REFRESH_AHEAD, TTLCache
from meterline.services.errors import Unauthorized
from meterline.services.keys import environment_of, hash_key

__all__ = ["AuthContext", "Authenticator"]


@dataclass(frozen=True, slots=True)
class AuthContext:
    key: ApiKey
    project: Project

    @property
    def environment(self) -> Environment:
        return self.key.environment

    @property
    def project_id(self) -> str:
        return self.project.id


class Authenticator:
    def __init__(self, accounts: Accounts, *, cache_ttl_seconds: float) -> None:
        self._accounts = accounts
        self._keys: TTLCache[ApiKey | None] = TTLCache(
            cache_ttl_seconds, refresh_ahead=SHORT_CACHE_REFRESH_AHEAD
        )
        self._projects: TTLCache[Project | None] = TTLCache(
            cache_ttl_seconds, refresh_ahead=SHORT_CACHE_REFRESH_AHEAD
        )

    async def authenticate(self, plaintext: str | None) -> AuthContext:
        if not plaintext:
            raise Unauthorized(
                "Missing API key: send 'Authorization: Bearer mk_live_…' or 'mk_test_…'.",
                code="missing_api_key",
            )
        if environment_of(plaintext) is None:
            raise Unauthorized("Malformed API key: expected 'mk_live_…' or 'mk_test_…'.")
        digest = hash_key(plaintext)
        key = await self._keys.get_or_load(digest, lambda: self._accounts.api_key_by_hash(digest))
        if key is None or key.revoked:
            raise Unauthorized("Invalid or revoked API key.")
        project = await self.project(key.project_id)
        if project is None:
            raise Unauthorized("Invalid API key: its project no longer exists.")
        return AuthContext(key=key, project=project)

    async def project(self, project_id: str) -> Project | None:
        return await self._projects.get_or_load(
            project_id, lambda: self._accounts.get_project(project_id)
        )

    def invalidate_project(self, project_id: str) -> None:
        self._projects.invalidate(project_id)

    def invalidate_keys(self) -> None:
        self._keys.invalidate()
