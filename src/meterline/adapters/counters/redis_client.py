"""The Redis client the counters and the invalidation bus share.

redis-py's asyncio connection packs every command in Python, argument by argument; its
synchronous connection uses hiredis's C packer when hiredis is installed. A batch of
usage events settles hundreds of scripts of about twenty arguments each, so packing was
the largest single cost of a batch on Redis. This client packs with hiredis too.
"""

from __future__ import annotations

from typing import Any

import hiredis
from redis.asyncio import ConnectionPool, Redis
from redis.exceptions import DataError

__all__ = ["connect", "packing_in_c"]


class _HiredisPacking:
    """Mixed into the pool's connection class: ``pack_command`` in C, with the same
    rules as redis-py's ``HiredisRespSerializer`` (a multi-word command name is split;
    bytes-like arguments are sent as bytes)."""

    def pack_command(self, *args: Any) -> list[bytes]:
        command = args[0]
        if isinstance(command, str) and " " in command:
            args = (*command.encode().split(), *args[1:])
        elif isinstance(command, bytes | bytearray | memoryview) and b" " in command:
            args = (*bytes(command).split(), *args[1:])
        try:
            return [hiredis.pack_command(args)]
        except TypeError:  # hiredis takes str, int, float and bytes only
            pass
        args = tuple(bytes(a) if isinstance(a, bytearray | memoryview) else a for a in args)
        try:
            return [hiredis.pack_command(args)]
        except TypeError as exc:
            raise DataError(str(exc)) from exc


def packing_in_c(pool: ConnectionPool) -> ConnectionPool:
    """``pool``, whose connections (made lazily, so all of them) now pack commands with
    hiredis, whatever class its URL chose (TCP, TLS, Unix socket)."""
    base = pool.connection_class
    if not issubclass(base, _HiredisPacking):
        pool.connection_class = type(f"Hiredis{base.__name__}", (_HiredisPacking, base), {})
    return pool


def connect(url: str, **options: Any) -> Redis:
    """``Redis.from_url(url, **options)`` on a pool that packs commands with hiredis."""
    # from_pool: the client owns the pool and closes it with itself, as from_url does.
    return Redis.from_pool(packing_in_c(ConnectionPool.from_url(url, **options)))
