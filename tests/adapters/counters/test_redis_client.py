"""The hiredis packer sends exactly the bytes redis-py's own Python packer sends, and the
client built on it talks to a real Redis."""

from __future__ import annotations

import pytest
from counters_testkit import redis_url
from hypothesis import given
from hypothesis import strategies as st
from redis.asyncio import Connection, ConnectionPool
from redis.exceptions import DataError

from meterline.adapters.counters.redis_client import connect, packing_in_c

_ARG = st.one_of(
    st.text(max_size=40),
    st.binary(max_size=40),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
)


def _packed(connection: Connection, *args: object) -> bytes:
    return b"".join(connection.pack_command(*args))


def _pair() -> tuple[Connection, Connection]:
    pool = packing_in_c(ConnectionPool())
    return Connection(), pool.make_connection()


@given(st.lists(_ARG, max_size=25))
def test_same_bytes_as_the_python_packer(args: list[object]) -> None:
    python, in_c = _pair()
    for command in ("EVALSHA", "CONFIG GET", b"SCRIPT EXISTS"):
        assert _packed(in_c, command, *args) == _packed(python, command, *args)


def test_bytes_like_arguments_and_refusals() -> None:
    python, in_c = _pair()
    view = memoryview(b"abc")
    assert _packed(in_c, "SET", bytearray(b"k"), view) == _packed(python, "SET", b"k", b"abc")
    for refused in (object(), True, None):
        with pytest.raises(DataError):
            python.pack_command("SET", "k", refused)
        with pytest.raises(DataError):
            in_c.pack_command("SET", "k", refused)


def test_packing_is_mixed_in_once() -> None:
    pool = packing_in_c(packing_in_c(ConnectionPool()))
    assert pool.connection_class.__mro__[2] is Connection


async def test_connect_talks_to_redis() -> None:
    client = connect(redis_url())
    try:
        await client.set("meterline:test:redis_client", "é" * 3, px=5_000)
        assert (await client.get("meterline:test:redis_client")).decode() == "é" * 3
        script = client.register_script("return {KEYS[1], ARGV[1], ARGV[2]}")
        assert await script(keys=["k"], args=[12, b"\x00\xff"]) == [b"k", b"12", b"\x00\xff"]
    finally:
        await client.aclose()
