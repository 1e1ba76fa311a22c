"""End users as admission reads them: on every gateway call and quota check.

A user's record (plan, blocked flag) changes rarely, so it is served from a TTL cache.
Writes through :class:`~meterline.services.management.Management` drop this process's copy
at once and, when the app runs as several replicas, tell the others over
:class:`~meterline.ports.Invalidations` (Redis pub/sub), so a block or a plan change
applies to the next call everywhere. A replica that missed a message (its subscription
was down) is told to drop everything on resubscribing; the TTL bounds anything else.
"""

from __future__ import annotations

from collections.abc import Iterable

from meterline.domain.entities import EndUser, Environment, UserKey
from meterline.ports import Accounts, Invalidations
from meterline.services.cache import TTLCache
from meterline.services.plans import PlanResolver

__all__ = ["TOPIC", "EndUserDirectory"]

TOPIC = "end_user"


class _NotCached(Exception):
    """Raised by the cache peek below: the key is absent, and nothing is loaded."""


async def _not_cached() -> EndUser | None:
    raise _NotCached


class EndUserDirectory:
    def __init__(
        self,
        accounts: Accounts,
        plans: PlanResolver,
        *,
        cache_ttl_seconds: float,
        max_entries: int = 100_000,
        bus: Invalidations | None = None,
    ) -> None:
        self._accounts = accounts
        self._plans = plans
        self._bus = bus
        # A cached ``None`` means "not created yet" and sends the caller to the atomic
        # get-or-create below, whose result then replaces it.
        # Refreshed ahead of expiry: a burst of users first seen together (a restart, a
        # launch) would otherwise expire together and stall the next calls on reads.
        self._cache: TTLCache[EndUser | None] = TTLCache(
            cache_ttl_seconds, max_entries, refresh_ahead=0.25
        )
        #: Bumped by every invalidation (local or remote), so a bulk load that straddles
        #: one does not cache what it read (the cache does the same for single loads).
        self._generation = 0
        if bus is not None:
            bus.subscribe(TOPIC, self._on_remote_change)

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

    async def get_or_create_many(self, keys: Iterable[UserKey]) -> dict[UserKey, EndUser]:
        """:meth:`get_or_create` for a batch's users: cached ones from the cache, all the
        others read, and the missing ones created, in one store call per project (a few
        statements, not one round trip per user). Same semantics as one by one: created
        on first sight on the project's default plan, atomically under any concurrency."""
        users: dict[UserKey, EndUser] = {}
        todo: dict[str, list[UserKey]] = {}
        for key in dict.fromkeys(keys):
            try:
                user = await self._cache.get_or_load(key, _not_cached)
            except _NotCached:
                user = None
            if user is not None:
                users[key] = user
            else:  # absent, or cached as "not created yet": the store decides
                todo.setdefault(key.project_id, []).append(key)
        for project_id, wanted in todo.items():
            default = await self._plans.default_plan(project_id)
            generation = self._generation
            found = await self._accounts.get_or_create_end_users(
                wanted, default.id if default else None
            )
            for key in wanted:
                user = found[key][0]
                users[key] = user
                # Not cached if a write landed meanwhile: what we read may predate it.
                if generation == self._generation:
                    self._cache.put(key, user)
        return users

    async def changed(self, key: UserKey) -> None:
        """Call after writing ``key``'s record: drops every replica's copy."""
        self._generation += 1
        self._cache.invalidate(key)
        if self._bus is not None:
            await self._bus.publish(TOPIC, (key.project_id, key.environment.value, key.end_user_id))

    def _on_remote_change(self, _topic: str, key: tuple[str, ...] | None) -> None:
        self._generation += 1
        if key is None or len(key) != 3:
            self._cache.invalidate()
            return
        try:
            environment = Environment(key[1])
        except ValueError:
            return
        self._cache.invalidate(UserKey(key[0], environment, key[2]))
