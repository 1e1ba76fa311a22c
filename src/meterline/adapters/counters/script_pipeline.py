"""``ScriptPipeline``: Lua script calls that meet a busy connection ride together.

Every admission and every settle is one script call. Sent one by one, each took a pooled
connection, its own write and read, and redis-py's per-command machinery (checkout,
timeout, release): under load that was the largest client cost of a gateway call on
Redis, and Redis paid a read and a write system call per call too. Here a call that finds
no round trip in flight goes out alone at once, so concurrency 1 pays nothing extra;
calls made while one is in flight queue, and when it returns, everything queued goes out
as one pipeline (EVALSHA each), and each caller gets its own reply. A round trip is the
unit of waiting, as in the ledger's group commit.

What each caller sees is what a call of its own would give: each script is atomic on the
server, so batching changes no outcome; a script's error reaches only its caller; a lost
connection reaches every caller of that round trip (as a lone call's would); a script
Redis has forgotten (a restart, ``SCRIPT FLUSH``) is loaded again and its calls rerun.
A caller cancelled while queued sends nothing; one cancelled while its round trip is out
cannot unsend it (neither could a lone call), and its reply is dropped.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

__all__ = ["ScriptCall", "ScriptPipeline", "run_together"]

#: One script call: the script, its keys and its arguments.
ScriptCall = tuple[AsyncScript, Sequence[Any], Sequence[Any]]
_Queued = tuple[AsyncScript, Sequence[Any], Sequence[Any], "asyncio.Future[Any]"]


class ScriptPipeline:
    """``ScriptPipeline(redis, lanes=1)``: :meth:`run` a script call; at most ``lanes``
    round trips are out at once, and calls beyond them wait for the next one together."""

    def __init__(self, redis: Redis, *, lanes: int = 1) -> None:
        self._redis = redis
        self._lanes = max(1, lanes)
        self._out = 0
        self._queue: deque[_Queued] = deque()
        #: The running drain tasks (a task nobody references may be collected).
        self._drains: set[asyncio.Task[None]] = set()

    async def run(self, script: AsyncScript, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        """The script's reply; its error, or the connection's, is raised as redis-py
        raises it."""
        if self._out >= self._lanes:
            future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            self._queue.append((script, keys, args, future))
            return await future
        self._out += 1
        try:
            return await script(keys=keys, args=args)
        finally:
            self._lane_free()

    def _lane_free(self) -> None:
        """The lane just freed serves what queued meanwhile, or closes."""
        if self._queue:
            drain = asyncio.get_running_loop().create_task(self._drain(), name="redis-scripts")
            self._drains.add(drain)
            drain.add_done_callback(self._drains.discard)
        else:
            self._out -= 1

    async def _drain(self) -> None:
        """Round trips of everything queued, until a round trip finds nothing queued."""
        queued: list[_Queued] = []
        try:
            while self._queue:
                queued = [call for call in self._queue if not call[3].done()]
                self._queue.clear()
                if not queued:
                    continue
                try:
                    replies = await _replies(self._redis, [call[:3] for call in queued])
                except Exception as exc:  # the connection's error: this round trip's only
                    replies = [exc] * len(queued)
                for (*_, future), reply in zip(queued, replies, strict=True):
                    _resolve(future, reply)
                queued = []
        except BaseException:  # cancelled at shutdown: nobody may wait forever
            stopped = ConnectionError("the Redis script pipeline was stopped")
            for *_, future in [*queued, *self._queue]:
                _resolve(future, stopped)
            self._queue.clear()
            raise
        finally:
            self._out -= 1


async def run_together(redis: Redis, calls: Sequence[ScriptCall]) -> list[Any]:
    """The replies of ``calls`` sent in one pipeline (not a transaction), in order; a
    script's error raises the first one, a lost connection its error."""
    replies = await _replies(redis, calls)
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply
    return replies


async def _replies(redis: Redis, calls: Sequence[ScriptCall]) -> list[Any]:
    """Each call's reply or error (a script error is returned, not raised; a lost
    connection raises). Scripts are run by EVALSHA directly, not through the pipeline's
    script registry, which sends SCRIPT EXISTS before every pipeline: calls answered
    NOSCRIPT did not run, so their scripts are loaded and they are sent once more."""
    replies = await _pipeline(redis, calls)
    missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
    if missing:
        for script in {id(calls[i][0]): calls[i][0] for i in missing}.values():
            script.sha = await redis.script_load(script.script)
        again = await _pipeline(redis, [calls[i] for i in missing])
        for i, reply in zip(missing, again, strict=True):
            replies[i] = reply
    return replies


async def _pipeline(redis: Redis, calls: Sequence[ScriptCall]) -> list[Any]:
    async with redis.pipeline(transaction=False) as pipe:
        for script, keys, args in calls:
            pipe.evalsha(script.sha, len(keys), *keys, *args)
        return list(await pipe.execute(raise_on_error=False))


def _resolve(future: asyncio.Future[Any], reply: Any) -> None:
    if future.done():  # the caller was cancelled while its round trip was out
        return
    if isinstance(reply, Exception):
        future.set_exception(reply)
    else:
        future.set_result(reply)
