"""A tiny TTL cache for slowly changing records on the hot path (keys, projects, plans,
end users).

Writes through the services invalidate the local entry at once; other replicas see the
change within the TTL, which is why the TTL is short (settings.cache_ttl_seconds).

Loads are single-flight: when an entry is missing or expired, the first caller loads it
and concurrent callers for the same key await that one load instead of each querying the
database (a burst of requests for one new user would otherwise stampede). An invalidation
during a load wins: the loaded value is returned to its callers but not stored, since it
may predate the write. When full, expired entries go first, then the oldest ones, never
the whole cache at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["SHORT_CACHE_REFRESH_AHEAD", "TTLCache"]

#: Refresh-ahead of the seconds-long caches (keys, projects, plans, credentials): their
#: reload, due every TTL, runs in the background in the last half of it, so no request
#: waits on it (every request needs the key's).
SHORT_CACHE_REFRESH_AHEAD = 0.5

V = TypeVar("V")


class _LoadAbandoned(Exception):
    """The loading caller was cancelled: its waiters load again themselves."""


class TTLCache(Generic[V]):
    """``refresh_ahead``: the last fraction of an entry's life in which a hit still answers
    at once but starts a background reload (one per key), so a busy entry never expires
    under its callers. Entries loaded together (a burst of new users, a restart) would
    otherwise all expire together, and every caller of the next few seconds would wait
    for a database read.

    ``max_refreshing`` bounds the background reloads in flight; a hit that finds the bound
    reached starts none (a later hit will). Entries loaded together (1,000 users created
    in a burst) come due together; unbounded, their reloads filled the database pool, and
    a foreground load (the API key's, every 2 s, which every request needs) queued behind
    them: the check-quota benchmark's p99 went from ~10 ms to 600–900 ms once a minute.
    With the bound (and refresh-ahead on the 2-s caches) no request waited for those
    caches in an instrumented run; what is left is end users whose entry expires before
    its turn to reload (see bench/analysis.md)."""

    def __init__(
        self,
        ttl_seconds: float,
        max_entries: int = 10_000,
        *,
        refresh_ahead: float = 0.0,
        max_refreshing: int = 4,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl_seconds
        self._max = max(1, max_entries)
        self._refresh_window = ttl_seconds * min(max(refresh_ahead, 0.0), 1.0)
        self._clock = clock
        self._max_refreshing = max(1, max_refreshing)
        self._data: dict[Hashable, tuple[float, V]] = {}
        self._loading: dict[Hashable, asyncio.Future[V]] = {}
        self._refreshing: set[asyncio.Task[None]] = set()
        #: Bumped by every invalidation, so a load that straddles one is not stored.
        self._generation = 0

    def __len__(self) -> int:
        return len(self._data)

    async def get_or_load(self, key: Hashable, load: Callable[[], Awaitable[V]]) -> V:
        hit = self._data.get(key)
        if hit is not None:
            left = hit[0] - self._clock()
            if left > 0:
                if (
                    left <= self._refresh_window
                    and key not in self._loading
                    and len(self._refreshing) < self._max_refreshing
                ):
                    self._refresh(key, load)
                return hit[1]
        while (pending := self._loading.get(key)) is not None:
            try:
                return await asyncio.shield(pending)
            except _LoadAbandoned:
                continue
        return await self._load(key, load, self._start_load(key), self._generation)

    def _start_load(self, key: Hashable) -> asyncio.Future[V]:
        """Mark ``key``'s load as in flight (at once, so no second one starts)."""
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._loading[key] = future
        return future

    async def _load(
        self,
        key: Hashable,
        load: Callable[[], Awaitable[V]],
        future: asyncio.Future[V],
        generation: int,
    ) -> V:
        """Run ``key``'s one load in flight: its waiters get its value or its error (a
        cancelled load is no answer: they load again), and the value is stored unless
        an invalidation happened since ``generation`` (it may predate the write)."""
        try:
            value = await load()
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters re-raise it, but there may be none
            raise
        except BaseException:  # cancelled: not an answer for the others
            future.set_exception(_LoadAbandoned())
            future.exception()
            raise
        finally:
            if self._loading.get(key) is future:
                del self._loading[key]
        future.set_result(value)
        if self._ttl > 0 and generation == self._generation:
            self.put(key, value)
        return value

    def _refresh(self, key: Hashable, load: Callable[[], Awaitable[V]]) -> None:
        """Reload ``key`` in the background; callers that find it expired meanwhile
        wait for this load (it is the key's load in flight). A failed reload changes
        nothing: the entry expires as usual and its next caller loads (and sees why)."""

        future, generation = self._start_load(key), self._generation

        async def reload() -> None:
            with contextlib.suppress(Exception):  # the next caller's own load reports it
                await self._load(key, load, future, generation)

        task = asyncio.get_running_loop().create_task(reload())
        self._refreshing.add(task)
        task.add_done_callback(self._refreshing.discard)

    def put(self, key: Hashable, value: V) -> None:
        """Store ``value`` (e.g. one just written) for the TTL."""
        if self._ttl <= 0:
            return
        if key not in self._data and len(self._data) >= self._max:
            self._evict()
        self._data[key] = (self._clock() + self._ttl, value)

    def invalidate(self, key: Hashable | None = None) -> None:
        self._generation += 1
        if key is None:
            self._data.clear()
        else:
            self._data.pop(key, None)

    def _evict(self) -> None:
        now = self._clock()
        expired = [k for k, (deadline, _) in self._data.items() if deadline <= now]
        for k in expired:
            del self._data[k]
        while len(self._data) >= self._max:  # oldest insertion first
            del self._data[next(iter(self._data))]
