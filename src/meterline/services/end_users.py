"""End users as admission reads them: on every gateway call and quota check.

A user's record (plan, blocked flag) changes rarely, so it is served from a short TTL
cache (``settings.cache_ttl_seconds``). Writes through
:class:`~meterline.services.management.Management` invalidate this replica's entry at
once; other replicas see a block or a plan change within the TTL, the same rule as for
keys and plans.
"""

from __future__ import annotations

from meterline.domain.entities import EndUser, UserKey
from meterline.ports import Accounts
from meterline.services.cache import TTLCache
from meterline.services.plans import PlanResolver

__all__ = ["EndUserDirectory"]


class EndUserDirectory:
    def __init__(
        self,
        accounts: Accounts,
        plans: PlanResolver,
        *,
        cache_ttl_seconds: float,
        max_entries: int = 100_000,
    ) -> None:
        self._accounts = accounts
        self._plans = plans
        # A cached ``None`` means "not created yet" and sends the caller to the atomic
        # get-or-create below, whose result then replaces it.
        self._cache: TTLCache[EndUser | None] = TTLCache(cache_ttl_seconds, max_entries)

    async def get_or_create(self, key: UserKey) -> tuple[EndUser, bool]:
        """The user, created on first sight on the project's default plan; ``True`` for
        exactly one caller ever (the store's get-or-create is atomic)."""
        user = await self._cache.get_or_load(key, lambda: self._accounts.get_end_user(key))
        if user is not None:
            return user, False
        default = await self._plans.default_plan(key.project_id)
        user, created = await self._accounts.get_or_create_end_user(
            key, default.id if default else None
        )
        self._cache.put(key, user)
        return user, created

    def invalidate(self, key: UserKey | None = None) -> None:
        self._cache.invalidate(key)
