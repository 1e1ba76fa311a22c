"""``RedisInvalidations``: cache invalidations between replicas over Redis pub/sub.

One channel for every topic; a message is ``[origin, topic, key]`` in JSON, where
``origin`` names the sending process so it can skip its own messages (it has already
dropped its copy). Pub/sub delivers only to connected subscribers, so whenever the
subscription (re)starts, every handler is told to drop everything: whatever was cached
before may have missed a message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Sequence
from typing import Any

import orjson

from meterline.ports import InvalidationHandler

__all__ = ["CHANNEL", "RedisInvalidations"]

CHANNEL = "meterline:invalidate"
log = logging.getLogger("meterline.invalidation")


class RedisInvalidations:
    def __init__(self, redis: Any, *, retry_seconds: float = 1.0) -> None:
        self._redis = redis
        self._retry = retry_seconds
        self._origin = secrets.token_hex(8)
        self._handlers: dict[str, list[InvalidationHandler]] = {}
        self._task: asyncio.Task[None] | None = None
        #: Set once the first subscription is confirmed (tests wait on it).
        self.subscribed = asyncio.Event()

    def subscribe(self, topic: str, handler: InvalidationHandler) -> None:
        self._handlers.setdefault(topic, []).append(handler)

    async def publish(self, topic: str, key: Sequence[str]) -> None:
        message = orjson.dumps([self._origin, topic, list(key)])
        try:
            await self._redis.publish(CHANNEL, message)
        except Exception as exc:  # Redis down: other replicas catch up on TTL/resubscribe
            log.warning("invalidation of %s not published: %s", topic, type(exc).__name__)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="cache-invalidations")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self._listen()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("invalidation subscription lost (%s); retrying", type(exc).__name__)
                await asyncio.sleep(self._retry)

    async def _listen(self) -> None:
        pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(CHANNEL)
            self._resync()
            self.subscribed.set()
            while True:
                # A bounded wait: the connection's socket timeout would fail a plain
                # blocking read on a quiet channel.
                message = await pubsub.get_message(timeout=1.0)
                if message is not None:
                    self._deliver(message.get("data"))
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()

    def _resync(self) -> None:
        for topic, handlers in self._handlers.items():
            for handler in handlers:
                handler(topic, None)

    def _deliver(self, data: Any) -> None:
        try:
            origin, topic, key = orjson.loads(data)
        except (orjson.JSONDecodeError, TypeError, ValueError):
            return  # not ours
        if origin == self._origin or not isinstance(key, list):
            return
        for handler in self._handlers.get(topic, ()):
            handler(topic, tuple(str(k) for k in key))
