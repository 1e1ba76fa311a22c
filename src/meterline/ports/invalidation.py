"""Ports: cache invalidation across replicas."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

__all__ = ["InvalidationHandler", "Invalidations"]

#: Called with a topic and the key that changed, or with ``None`` for "messages may have
#: been missed (the subscription was down): drop everything cached under this topic".
InvalidationHandler = Callable[[str, tuple[str, ...] | None], None]


class Invalidations(Protocol):
    """Tells the other replicas that a cached record changed. Best effort by nature: a
    replica that misses a message still drops its copy when the cache TTL ends, and is
    told to drop everything whenever its subscription (re)starts."""

    async def publish(self, topic: str, key: Sequence[str]) -> None:
        """Never raises: a failure is logged, and the TTL bounds the staleness."""
        ...

    def subscribe(self, topic: str, handler: InvalidationHandler) -> None: ...
