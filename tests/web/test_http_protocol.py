"""The HTTP protocol ``meterline serve`` runs: uvicorn's httptools protocol whose writes
of one event-loop pass leave as one. Unit tests of the transport on a recording fake,
then a real uvicorn server counting what reaches its sockets."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from meterline.testing.server import free_port
from meterline.web.http_protocol import CoalescingHttpToolsProtocol, WriteCoalescingTransport


class Recording(asyncio.Transport):
    """A transport that records what is done to it."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, Any]] = []
        self.closing = False

    def write(self, data: Any) -> None:
        self.calls.append(("write", bytes(data)))

    def close(self) -> None:
        self.calls.append(("close", None))
        self.closing = True

    def abort(self) -> None:
        self.calls.append(("abort", None))
        self.closing = True

    def write_eof(self) -> None:
        self.calls.append(("write_eof", None))

    def is_closing(self) -> bool:
        return self.closing

    def pause_reading(self) -> None:
        self.calls.append(("pause_reading", None))

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 5)}.get(name, default)

    def get_write_buffer_size(self) -> int:
        return 7


async def test_writes_of_one_pass_leave_together_at_the_next() -> None:
    real = Recording()
    transport = WriteCoalescingTransport(real, asyncio.get_running_loop())
    transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
    transport.write(b"")
    transport.writelines([b"{", bytearray(b'"a":1'), memoryview(b"}")])
    assert real.calls == []  # held until the pass ends
    assert transport.get_write_buffer_size() == 7 + 19 + 7
    await asyncio.sleep(0)
    assert real.calls == [("write", b'HTTP/1.1 200 OK\r\n\r\n{"a":1}')]
    transport.write(b"chunk 1")
    await asyncio.sleep(0)
    transport.write(b"chunk 2")
    await asyncio.sleep(0)
    assert real.calls[1:] == [("write", b"chunk 1"), ("write", b"chunk 2")]  # not held back


async def test_close_and_eof_send_what_is_pending_first_and_abort_drops_it() -> None:
    loop = asyncio.get_running_loop()
    real = Recording()
    transport = WriteCoalescingTransport(real, loop)
    transport.write(b"last words")
    transport.close()
    assert real.calls == [("write", b"last words"), ("close", None)]
    await asyncio.sleep(0)
    assert len(real.calls) == 2  # nothing sent twice

    real = Recording()
    transport = WriteCoalescingTransport(real, loop)
    transport.write(b"body")
    transport.write_eof()
    assert real.calls == [("write", b"body"), ("write_eof", None)]

    real = Recording()
    transport = WriteCoalescingTransport(real, loop)
    transport.write(b"never")
    transport.abort()
    await asyncio.sleep(0)
    assert real.calls == [("abort", None)]


async def test_nothing_is_written_once_the_connection_is_gone() -> None:
    real = Recording()
    transport = WriteCoalescingTransport(real, asyncio.get_running_loop())
    transport.write(b"too late")
    real.closing = True  # the peer went away during this pass
    await asyncio.sleep(0)
    assert real.calls == []
    assert transport.is_closing()


async def test_everything_else_is_the_wrapped_transports() -> None:
    real = Recording()
    transport = WriteCoalescingTransport(real, asyncio.get_running_loop())
    assert transport.get_extra_info("peername") == ("127.0.0.1", 5)
    assert transport.get_extra_info("sslcontext", "none") == "none"
    transport.pause_reading()
    assert real.calls == [("pause_reading", None)]


# ---------------------------------------------------------------- a real server


class CountingProtocol(CoalescingHttpToolsProtocol):
    """Counts the writes that reach the socket's own transport (class-wide: the server
    builds one protocol per connection)."""

    writes: list[bytes] = []

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        real_write = transport.write

        def counted(data: Any) -> None:
            CountingProtocol.writes.append(bytes(data))
            real_write(data)

        transport.write = counted  # type: ignore[method-assign]
        super().connection_made(transport)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    if scope["path"] == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for part in (b"one", b"two", b"three"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
            await asyncio.sleep(0.02)  # the chunks come apart in time, as a provider's do
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return
    body = b'{"ok":true}'
    headers = [(b"content-type", b"application/json"), (b"content-length", b"11")]
    if scope["path"] == "/close":
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture
async def server() -> Any:
    import uvicorn

    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, http=CountingProtocol, lifespan="off", log_level="warning"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    CountingProtocol.writes = []
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task


async def test_each_response_reaches_the_socket_in_one_write(server: str) -> None:
    async with httpx.AsyncClient(base_url=server) as client:
        for _ in range(5):  # one kept-alive connection
            r = await client.get("/json")
            assert r.status_code == 200 and r.json() == {"ok": True}
        r = await client.get("/close")
        assert r.json() == {"ok": True} and r.headers["connection"] == "close"
    assert len(CountingProtocol.writes) == 6
    assert all(w.startswith(b"HTTP/1.1 200 OK\r\n") for w in CountingProtocol.writes)
    assert all(w.endswith(b'\r\n\r\n{"ok":true}') for w in CountingProtocol.writes)


async def test_a_stream_still_leaves_chunk_by_chunk(server: str) -> None:
    async with httpx.AsyncClient(base_url=server) as client:
        async with client.stream("GET", "/stream") as r:
            parts = [part async for part in r.aiter_raw()]
    assert b"".join(parts) == b"onetwothree"
    # head with the first chunk (same pass), then each chunk when it came, then the end
    assert len(CountingProtocol.writes) == 4
    assert CountingProtocol.writes[0].startswith(b"HTTP/1.1 200 OK")
    assert CountingProtocol.writes[0].endswith(b"3\r\none\r\n")
    assert CountingProtocol.writes[1:] == [b"3\r\ntwo\r\n", b"5\r\nthree\r\n", b"0\r\n\r\n"]
