"""A tiny TTL cache for slowly changing records on the hot path (keys, projects, plans).

Writes through the services invalidate the local entry at once; other replicas see the
change within the TTL, which is why the TTL is short (settings.cache_ttl_seconds).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["TTLCache"]

V = TypeVar("V")


class TTLCache(Generic[V]):
    def __init__(self, ttl_seconds: float, max_entries: int = 10_000) -> None:
        self._ttl = ttl_seconds
        self._max = max_entries
        self._data: dict[Hashable, tuple[float, V]] = {}

    async def get_or_load(self, key: Hashable, load: Callable[[], Awaitable[V]]) -> V:
        now = time.monotonic()
        hit = self._data.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        value = await load()
        if self._ttl > 0:
            if len(self._data) >= self._max:
                self._data.clear()
            self._data[key] = (now + self._ttl, value)
        return value

    def invalidate(self, key: Hashable | None = None) -> None:
        if key is None:
            self._data.clear()
        else:
            self._data.pop(key, None)
