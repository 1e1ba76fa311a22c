"""``UpstreamHttp``: the one pooled HTTP client every provider call goes through.

It is the only module that knows the HTTP library (aiohttp). The provider adapters see
three things: a buffered ``post``, a streamed ``stream``, and one exception,
:class:`TransportError`, that says whether the failure was a timeout. Keeping the
library behind this seam is what let it be swapped: httpx cost about 0.55 ms of
event-loop CPU per gateway call in the benchmark profile (anyio cancel scopes and
httpcore's pool scan on every request); aiohttp parses in C and pools with a dict lookup.

Timeouts map as follows. ``connect_timeout`` bounds opening a socket; ``pool_timeout``
bounds waiting for a pooled connection *and* opening it (aiohttp's ``connect``);
``read_timeout`` bounds the silence between two reads of the answer, so a long stream
that keeps talking is never cut. aiohttp has no separate write timeout: a request body is
small and written at once, and a peer that stops reading it is caught by the read timeout.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp

__all__ = ["Reply", "StreamingReply", "TransportError", "UpstreamHttp"]


class TransportError(Exception):
    """The provider could not be reached, or stopped answering (``timed_out``)."""

    def __init__(self, message: str, *, timed_out: bool) -> None:
        super().__init__(message)
        self.timed_out = timed_out


@dataclass(frozen=True, slots=True)
class Timeouts:
    connect: float
    read: float
    pool: float


@dataclass(frozen=True, slots=True)
class Reply:
    """A provider's whole answer."""

    status: int
    headers: Mapping[str, str]  # case-insensitive
    body: bytes

    @property
    def is_success(self) -> bool:
        return 200 <= self.status < 300


class StreamingReply:
    """A provider's answer whose body is read as it arrives."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.status = response.status
        self.headers: Mapping[str, str] = response.headers

    @property
    def is_success(self) -> bool:
        return 200 <= self.status < 300

    async def read(self) -> bytes:
        with _translated():
            return await self._response.read()

    async def chunks(self) -> AsyncIterator[bytes]:
        """Body bytes as they arrive, never buffering the whole body."""
        iterator = self._response.content.iter_any().__aiter__()
        while True:
            with _translated():
                try:
                    chunk = await iterator.__anext__()
                except StopAsyncIteration:
                    return
            yield chunk


class UpstreamHttp:
    """One pooled client for all providers; close it at shutdown (``aclose()``).

    The aiohttp session is made on first use: it must be created inside the event loop
    that will use it, and the container may be built before a request ever comes.
    """

    def __init__(
        self,
        *,
        connect_timeout: float = 10.0,
        read_timeout: float = 600.0,
        pool_timeout: float = 30.0,
        max_connections: int = 1000,
        keepalive_expiry: float = 60.0,
    ) -> None:
        self.timeout = Timeouts(connect=connect_timeout, read=read_timeout, pool=pool_timeout)
        self.max_connections = max_connections
        self.keepalive_expiry = keepalive_expiry
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        session = self._session
        if session is None or session.closed:
            session = self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=self.max_connections,
                    limit_per_host=0,
                    keepalive_timeout=self.keepalive_expiry,
                ),
                timeout=aiohttp.ClientTimeout(
                    total=None,
                    connect=self.timeout.pool + self.timeout.connect,
                    sock_connect=self.timeout.connect,
                    sock_read=self.timeout.read,
                ),
                # A stray HTTP(S)_PROXY must not silently reroute provider traffic.
                trust_env=False,
                # Provider cookies are never stored or sent back.
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return session

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> Reply:
        """POST and read the whole answer."""
        with _translated():
            async with self._client().post(
                url, data=body, headers=headers, allow_redirects=False
            ) as response:
                return Reply(response.status, response.headers, await response.read())

    @asynccontextmanager
    async def stream(
        self, url: str, body: bytes, headers: Mapping[str, str]
    ) -> AsyncIterator[StreamingReply]:
        """POST and read the answer as it arrives. On exit the connection goes back to
        the pool if the body was read to its end, and is closed otherwise."""
        with _translated():
            async with self._client().post(
                url, data=body, headers=headers, allow_redirects=False
            ) as response:
                yield StreamingReply(response)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class _translated:
    """aiohttp's failures as :class:`TransportError` (a timeout says so)."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        if exc is None or not isinstance(exc, aiohttp.ClientError | asyncio.TimeoutError):
            return
        timed_out = isinstance(exc, asyncio.TimeoutError)
        raise TransportError(str(exc) or type(exc).__name__, timed_out=timed_out) from exc
