"""The hot-path TTL cache: single-flight loads, invalidation that beats a racing load,
bounded size without dropping everything at once."""

from __future__ import annotations

import asyncio

import pytest

from meterline.services.cache import TTLCache


async def test_concurrent_misses_share_one_load() -> None:
    cache: TTLCache[int] = TTLCache(60)
    calls = 0
    gate = asyncio.Event()

    async def load() -> int:
        nonlocal calls
        calls += 1
        await gate.wait()
        return 42

    tasks = [asyncio.create_task(cache.get_or_load("k", load)) for _ in range(50)]
    await asyncio.sleep(0)
    gate.set()
    assert await asyncio.gather(*tasks) == [42] * 50
    assert calls == 1
    assert await cache.get_or_load("k", load) == 42 and calls == 1  # now cached


async def test_a_failed_load_reaches_every_waiter_and_is_not_cached() -> None:
    cache: TTLCache[int] = TTLCache(60)
    gate = asyncio.Event()
    calls = 0

    async def load() -> int:
        nonlocal calls
        calls += 1
        await gate.wait()
        raise RuntimeError("database down")

    tasks = [asyncio.create_task(cache.get_or_load("k", load)) for _ in range(5)]
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results) and calls == 1

    async def ok() -> int:
        return 7

    assert await cache.get_or_load("k", ok) == 7


async def test_a_cancelled_loader_does_not_fail_its_waiters() -> None:
    cache: TTLCache[int] = TTLCache(60)
    gate = asyncio.Event()

    async def slow() -> int:
        await gate.wait()
        return 1

    first = asyncio.create_task(cache.get_or_load("k", slow))
    await asyncio.sleep(0)
    second = asyncio.create_task(cache.get_or_load("k", slow))
    await asyncio.sleep(0)
    first.cancel()
    await asyncio.sleep(0)
    gate.set()
    assert await second == 1  # it loaded again itself
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_invalidation_during_a_load_keeps_the_stale_value_out() -> None:
    cache: TTLCache[str] = TTLCache(60)
    gate = asyncio.Event()

    async def stale() -> str:
        await gate.wait()
        return "before the write"

    task = asyncio.create_task(cache.get_or_load("k", stale))
    await asyncio.sleep(0)
    cache.invalidate("k")  # a write landed while the read was in flight
    gate.set()
    assert await task == "before the write"  # its own caller may see it …

    async def fresh() -> str:
        return "after the write"

    assert await cache.get_or_load("k", fresh) == "after the write"  # … nobody after


async def test_entries_expire_and_invalidate_removes_them() -> None:
    cache: TTLCache[int] = TTLCache(0.05)
    values = iter(range(100))

    async def load() -> int:
        return next(values)

    assert await cache.get_or_load("k", load) == 0
    assert await cache.get_or_load("k", load) == 0
    await asyncio.sleep(0.06)
    assert await cache.get_or_load("k", load) == 1
    cache.invalidate("k")
    assert await cache.get_or_load("k", load) == 2
    cache.invalidate()
    assert len(cache) == 0


async def test_a_full_cache_evicts_the_oldest_entry_not_everything() -> None:
    cache: TTLCache[int] = TTLCache(60, max_entries=3)
    for i in range(3):
        cache.put(i, i)
    cache.put(3, 3)
    assert len(cache) == 3

    async def reload() -> int:
        return -1

    assert await cache.get_or_load(0, reload) == -1  # the oldest went
    assert await cache.get_or_load(3, reload) == 3  # the newest stayed


async def test_zero_ttl_caches_nothing() -> None:
    cache: TTLCache[int] = TTLCache(0)
    values = iter(range(10))

    async def load() -> int:
        return next(values)

    assert [await cache.get_or_load("k", load) for _ in range(3)] == [0, 1, 2]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_refresh_ahead_answers_at_once_and_reloads_once_in_the_background() -> None:
    clock = FakeClock()
    cache: TTLCache[int] = TTLCache(60, refresh_ahead=0.25, clock=clock)
    version = 1
    calls = 0
    gate = asyncio.Event()

    async def load() -> int:
        nonlocal calls
        calls += 1
        if calls > 1:
            await gate.wait()
        return version

    assert await cache.get_or_load("k", load) == 1
    clock.now += 40  # 20 s left: not yet in the last quarter
    assert await cache.get_or_load("k", load) == 1 and calls == 1
    clock.now += 10  # 10 s left: answered from the cache, one reload starts
    version = 2
    assert [await cache.get_or_load("k", load) for _ in range(20)] == [1] * 20
    await asyncio.sleep(0)
    assert calls == 2  # one background reload for all those hits
    clock.now += 11  # expired before the reload finished: callers wait for that reload
    waiter = asyncio.create_task(cache.get_or_load("k", load))
    await asyncio.sleep(0)
    assert not waiter.done()
    gate.set()
    assert await waiter == 2 and calls == 2
    assert await cache.get_or_load("k", load) == 2 and calls == 2  # stored for a full TTL
    clock.now += 44
    assert await cache.get_or_load("k", load) == 2 and calls == 2


async def test_an_invalidation_during_a_refresh_keeps_the_reloaded_value_out() -> None:
    clock = FakeClock()
    cache: TTLCache[str] = TTLCache(60, refresh_ahead=0.5, clock=clock)
    gate = asyncio.Event()
    values = iter(["old", "stale", "fresh"])

    async def load() -> str:
        value = next(values)
        if value == "stale":
            await gate.wait()
        return value

    assert await cache.get_or_load("k", load) == "old"
    clock.now += 31
    assert await cache.get_or_load("k", load) == "old"  # starts the reload of "stale"
    cache.invalidate("k")  # a write lands while it reads
    gate.set()
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert await cache.get_or_load("k", load) == "fresh"


async def test_a_failed_refresh_changes_nothing_and_the_entry_expires_as_usual() -> None:
    clock = FakeClock()
    cache: TTLCache[int] = TTLCache(60, refresh_ahead=0.25, clock=clock)
    outcomes: list[int | Exception] = [1, RuntimeError("db down"), 3]

    async def load() -> int:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    assert await cache.get_or_load("k", load) == 1
    clock.now += 50
    assert await cache.get_or_load("k", load) == 1  # the reload fails in the background
    await asyncio.sleep(0)
    assert await cache.get_or_load("k", load) == 1  # still the old entry, another reload
    await asyncio.sleep(0)
    assert outcomes == [] and await cache.get_or_load("k", load) == 3  # that one worked


async def test_background_reloads_in_flight_are_bounded() -> None:
    """Entries that come due together reload at most ``max_refreshing`` at a time; a hit
    that finds the bound reached is answered and starts nothing, a later hit does."""
    clock = FakeClock()
    cache: TTLCache[int] = TTLCache(60, refresh_ahead=0.25, max_refreshing=2, clock=clock)
    gate = asyncio.Event()
    reloading: list[str] = []

    def loader(key: str):
        async def load() -> int:
            if clock.now > 1000:  # a reload: held until the gate opens
                reloading.append(key)
                await gate.wait()
            return 1

        return load

    for key in "abc":
        await cache.get_or_load(key, loader(key))
    clock.now += 50  # all three in the refresh window
    assert [await cache.get_or_load(key, loader(key)) for key in "abc"] == [1, 1, 1]
    await asyncio.sleep(0)
    assert reloading == ["a", "b"]  # "c" was answered, and not reloaded yet
    gate.set()
    for _ in range(3):
        await asyncio.sleep(0)
    assert await cache.get_or_load("c", loader("c")) == 1
    await asyncio.sleep(0)
    assert reloading == ["a", "b", "c"]
