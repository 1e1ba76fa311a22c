"""``ScriptPipeline`` on a real Redis: calls that meet a round trip in flight share the
next one, and each caller still sees exactly what a call of its own would give."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from counters_testkit import delete_prefix, new_prefix, redis_url
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from meterline.adapters.counters.script_pipeline import ScriptPipeline, run_together
from meterline.testing.server import free_port

#: Counts its call in KEYS[1] and answers ARGV[1], or fails when ARGV[1] is "boom".
COUNT_AND_ECHO = """
if ARGV[1] == 'boom' then return redis.error_reply('boom') end
redis.call('INCR', KEYS[1])
return ARGV[1]
"""


@pytest.fixture
async def named() -> AsyncIterator[tuple[Redis, str, str]]:
    """A client whose connections carry a name of their own (to count them on the
    server), and a key prefix."""
    name = f"mltest-pipe-{uuid.uuid4().hex[:12]}"
    client = Redis.from_url(redis_url(), client_name=name, decode_responses=True)
    prefix = new_prefix()
    try:
        yield client, name, prefix
    finally:
        await delete_prefix(client, prefix)
        await client.aclose()


async def connections_named(client: Redis, name: str) -> int:
    return sum(1 for c in await client.client_list() if c["name"] == name)


@pytest.mark.parametrize("lanes", [1, 2])
async def test_concurrent_calls_share_round_trips_and_get_their_own_replies(
    named: tuple[Redis, str, str], lanes: int
) -> None:
    client, name, prefix = named
    script = client.register_script(COUNT_AND_ECHO)
    pipeline = ScriptPipeline(client, lanes=lanes)
    replies = await asyncio.gather(
        *(pipeline.run(script, [f"{prefix}:n"], [f"call-{i}"]) for i in range(60))
    )
    assert replies == [f"call-{i}" for i in range(60)]
    assert await client.get(f"{prefix}:n") == "60"
    # Sixty calls at once through redis-py alone open sixty connections; here no more
    # than one per lane was ever busy (the pool keeps each one it opened).
    observer = Redis.from_url(redis_url(), decode_responses=True)
    try:
        assert 1 <= await connections_named(observer, name) <= lanes
    finally:
        await observer.aclose()


async def test_a_script_error_reaches_only_its_caller(named: tuple[Redis, str, str]) -> None:
    client, _, prefix = named
    script = client.register_script(COUNT_AND_ECHO)
    pipeline = ScriptPipeline(client)
    args = ["boom" if i in (0, 7) else str(i) for i in range(20)]  # 0 goes alone, 7 batched
    results = await asyncio.gather(
        *(pipeline.run(script, [f"{prefix}:n"], [a]) for a in args), return_exceptions=True
    )
    for arg, result in zip(args, results, strict=True):
        if arg == "boom":
            assert isinstance(result, ResponseError) and "boom" in str(result)
        else:
            assert result == arg
    assert await client.get(f"{prefix}:n") == "18"


async def test_a_script_redis_forgot_is_loaded_and_each_queued_call_runs_once(
    named: tuple[Redis, str, str],
) -> None:
    client, _, prefix = named
    first = client.register_script("return 'first'")
    forgotten = client.register_script(COUNT_AND_ECHO)
    real = forgotten.sha
    forgotten.sha = "0" * 40  # as after SCRIPT FLUSH or a restart, for this script only
    pipeline = ScriptPipeline(client)
    lone = asyncio.create_task(pipeline.run(first, [], []))
    await asyncio.sleep(0)  # the lone call holds the lane: the rest queue behind it
    queued = [pipeline.run(forgotten, [f"{prefix}:n"], [str(i)]) for i in range(25)]
    assert await asyncio.gather(*queued) == [str(i) for i in range(25)]
    assert await lone == "first"
    assert forgotten.sha == real
    assert await client.get(f"{prefix}:n") == "25"  # NOSCRIPT calls did not run: no double


async def test_a_caller_cancelled_while_queued_sends_nothing(
    named: tuple[Redis, str, str],
) -> None:
    client, _, prefix = named
    script = client.register_script(COUNT_AND_ECHO)
    pipeline = ScriptPipeline(client)
    lone = asyncio.create_task(pipeline.run(script, [f"{prefix}:a"], ["a"]))
    await asyncio.sleep(0)
    gone = asyncio.create_task(pipeline.run(script, [f"{prefix}:b"], ["b"]))
    kept = asyncio.create_task(pipeline.run(script, [f"{prefix}:c"], ["c"]))
    await asyncio.sleep(0)  # both are queued now
    gone.cancel()
    assert (await lone, await kept) == ("a", "c")
    assert gone.cancelled()
    assert await client.get(f"{prefix}:b") is None
    assert await client.get(f"{prefix}:c") == "1"


async def test_an_unreachable_redis_fails_every_caller_and_frees_the_lane() -> None:
    client = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.5)
    script = client.register_script("return 1")
    pipeline = ScriptPipeline(client)
    try:
        for _ in range(2):  # the second wave finds the lane free again, not stuck
            results = await asyncio.wait_for(
                asyncio.gather(
                    *(pipeline.run(script, [], []) for _ in range(10)), return_exceptions=True
                ),
                timeout=10,
            )
            assert all(isinstance(r, RedisConnectionError) for r in results), results
    finally:
        await client.aclose()


async def test_stopping_a_round_trip_fails_its_waiters(named: tuple[Redis, str, str]) -> None:
    client, _, prefix = named
    script = client.register_script(COUNT_AND_ECHO)
    # ~0.1 s of work on the server: the round trip is surely still out when it is stopped.
    slow = client.register_script("local i = 0 while i < 15000000 do i = i + 1 end return 1")
    pipeline = ScriptPipeline(client)
    lone = asyncio.create_task(pipeline.run(script, [f"{prefix}:n"], ["lone"]))
    await asyncio.sleep(0)
    waiters = [asyncio.create_task(pipeline.run(slow, [], []))]
    waiters += [asyncio.create_task(pipeline.run(script, [f"{prefix}:n"], ["q"])) for _ in range(2)]
    assert await lone == "lone"
    await asyncio.sleep(0.02)  # the drain's round trip is out
    (drain,) = pipeline._drains
    drain.cancel()  # what shutting the loop down does
    results = await asyncio.gather(*waiters, return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results), results
    assert await pipeline.run(script, [f"{prefix}:n"], ["after"]) == "after"


async def test_run_together_returns_replies_in_order_and_raises_a_script_error(
    named: tuple[Redis, str, str],
) -> None:
    client, _, prefix = named
    script = client.register_script(COUNT_AND_ECHO)
    key = [f"{prefix}:n"]
    assert await run_together(client, [(script, key, [str(i)]) for i in range(5)]) == [
        str(i) for i in range(5)
    ]
    with pytest.raises(ResponseError, match="boom"):
        await run_together(client, [(script, key, ["1"]), (script, key, ["boom"])])
    assert await client.get(f"{prefix}:n") == "6"  # the call beside the error still ran
