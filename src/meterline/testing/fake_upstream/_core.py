"""Shared pieces of the fake upstream: directives, token counting, replies, SSE and recording."""

from __future__ import annotations

import asyncio
import itertools
import re
import threading
from collections.abc import AsyncGenerator, Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, SupportsIndex

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

DEFAULT_WORDS = 8
GREEK = (
    "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu "
    "nu xi omicron pi rho sigma tau upsilon phi chi psi omega"
).split()
TOOL_NAME = "get_weather"
TOOL_ARGUMENTS = '{"city": "Paris"}'
# How the tool call's arguments are streamed; also its completion token count.
TOOL_ARGUMENT_PIECES = ('{"', "city", '":', ' "', "Paris", '"}')
TOOL_COMPLETION_TOKENS = len(TOOL_ARGUMENT_PIECES)
TEXT_PART_TYPES = frozenset({"text", "input_text", "output_text"})
MALFORMED_BODY = b'{"id": "fake-malformed", "choices": [{"message": '
MALFORMED_SSE = b"data: {this is not json\n\n"

_DIRECTIVE = re.compile(r"\[fake:([a-z_]+)(?:=([^\]]*))?\]")
_INT_DIRECTIVES = frozenset(
    {"status", "words", "slow", "cut", "timeout", "cached", "reasoning", "retry_after"}
)
_FLAG_DIRECTIVES = frozenset({"no_usage", "zero_usage", "tool", "malformed"})
_ids = itertools.count(1)


def next_id(prefix: str) -> str:
    return f"{prefix}fake{next(_ids):08d}"


class DirectiveError(ValueError):
    """A ``[fake:...]`` directive the server does not understand (answered with a 400)."""


@dataclass(frozen=True, slots=True)
class Directives:
    status: int | None = None
    words: int = DEFAULT_WORDS
    slow_ms: int = 0
    cut: int | None = None
    timeout_ms: int = 0
    cached: int = 0
    reasoning: int = 0
    retry_after: int | None = None
    no_usage: bool = False
    zero_usage: bool = False
    tool: bool = False
    malformed: bool = False

    @property
    def slow(self) -> float:
        return self.slow_ms / 1000


NO_DIRECTIVES = Directives()


def parse_directives(text: str) -> Directives:
    """The directives found in ``text`` (cheap when there are none)."""
    if "[fake:" not in text:
        return NO_DIRECTIVES
    kw: dict[str, Any] = {}
    for name, value in _DIRECTIVE.findall(text):
        if name in _FLAG_DIRECTIVES:
            kw[name] = True
            continue
        if name not in _INT_DIRECTIVES:
            raise DirectiveError(f"unknown fake directive [fake:{name}]")
        try:
            number = int(value)
        except ValueError:
            raise DirectiveError(f"[fake:{name}=...] needs an integer, got {value!r}") from None
        if number < 0 or (name == "status" and not 200 <= number <= 599):
            raise DirectiveError(f"[fake:{name}={value}] is out of range")
        key = {"slow": "slow_ms", "timeout": "timeout_ms"}.get(name, name)
        kw[key] = number
    return Directives(**kw) if kw else NO_DIRECTIVES


# --- token counting -------------------------------------------------------------------------


def content_words(content: object) -> int:
    """Words of a message content: a string, or the text parts of a list of parts."""
    if isinstance(content, str):
        return len(content.split())
    n = 0
    if isinstance(content, list):
        for part in content:
            if not isinstance(part, dict):
                continue
            kind = part.get("type")
            if kind in TEXT_PART_TYPES:
                text = part.get("text")
                if isinstance(text, str):
                    n += len(text.split())
            elif kind == "tool_result":
                n += content_words(part.get("content"))
    return n


def content_text(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            p["text"]
            for p in content
            if isinstance(p, dict)
            and p.get("type") in TEXT_PART_TYPES
            and isinstance(p.get("text"), str)
        )
    return ""


def messages_words(messages: object) -> int:
    if not isinstance(messages, list):
        return 0
    return sum(content_words(m.get("content")) for m in messages if isinstance(m, dict))


def last_user_text(messages: object) -> str:
    if isinstance(messages, list):
        for m in reversed(messages):
            if isinstance(m, dict) and m.get("role") == "user":
                return content_text(m.get("content"))
    return ""


@dataclass(frozen=True, slots=True)
class Usage:
    prompt: int
    completion: int
    cached: int = 0
    reasoning: int = 0

    @property
    def total(self) -> int:
        return self.prompt + self.completion


def compute_usage(prompt_words: int, completion_words: int, d: Directives) -> Usage | None:
    """Usage as reported, or None under ``[fake:no_usage]``."""
    if d.no_usage:
        return None
    if d.zero_usage:
        return Usage(0, 0)
    prompt = max(1, prompt_words)
    return Usage(prompt, completion_words + d.reasoning, min(d.cached, prompt), d.reasoning)


# --- replies ------------------------------------------------------------------------------


@lru_cache(maxsize=256)
def reply_pieces(words: int) -> tuple[str, ...]:
    """The reply split in streamed pieces, one per word: ``"Fake"``, ``" reply:"``, ``" alpha"``…"""
    tokens = ["Fake", "reply:", *(GREEK[i % len(GREEK)] for i in range(words))]
    return (tokens[0], *(" " + t for t in tokens[1:]))


@lru_cache(maxsize=256)
def reply_text(words: int) -> str:
    return "".join(reply_pieces(words))


def reply_tokens(d: Directives) -> int:
    return TOOL_COMPLETION_TOKENS if d.tool else d.words + 2


# --- HTTP helpers --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, repr=False)
class RecordedRequest:
    """One request as the fake upstream received it (headers lower-cased)."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any] | None
    method: str = "POST"

    def __repr__(self) -> str:
        return f"RecordedRequest({self.method} {self.path}, body={self.body!r})"


class RequestLog(list[RecordedRequest]):
    """A list of recorded requests that the server thread appends to under a lock."""

    def __init__(self, items: Iterable[RecordedRequest] = ()) -> None:
        super().__init__(items)
        self._lock = threading.RLock()

    def append(self, item: RecordedRequest) -> None:
        with self._lock:
            super().append(item)

    def clear(self) -> None:
        with self._lock:
            super().clear()

    def snapshot(self) -> list[RecordedRequest]:
        with self._lock:
            return list.copy(self)

    def __iter__(self) -> Iterator[RecordedRequest]:
        with self._lock:
            return iter(list.copy(self))

    def __getitem__(self, index: SupportsIndex | slice) -> Any:
        with self._lock:
            return super().__getitem__(index)

    def for_path(self, path: str) -> list[RecordedRequest]:
        return [r for r in self if r.path == path]


async def read_json(request: Request) -> dict[str, Any] | None:
    """Parse and record the request body (None when it is not a JSON object)."""
    raw = await request.body()
    body: dict[str, Any] | None = None
    if raw:
        try:
            parsed = orjson.loads(raw)
        except orjson.JSONDecodeError:
            parsed = None
        if isinstance(parsed, dict):
            body = parsed
    log: RequestLog | None = request.app.state.request_log
    if log is not None:
        log.append(RecordedRequest(request.url.path, dict(request.headers), body, request.method))
    return body


def json_response(
    obj: object, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(orjson.dumps(obj), status, headers, "application/json")


def malformed_response() -> Response:
    return Response(MALFORMED_BODY, 200, None, "application/json")


class Cut(Exception):
    """Raised by an SSE generator to drop the connection without finishing the response."""


_SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
]


class SSEResponse(Response):
    """Stream SSE bytes; on :class:`Cut` return mid-body so the server drops the connection."""

    media_type = "text/event-stream"

    def __init__(self, chunks: AsyncGenerator[bytes, None]) -> None:  # no body: no super()
        self.chunks = chunks
        self.status_code = 200
        self.background = None
        self.raw_headers = list(_SSE_HEADERS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        gone = asyncio.Event()

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            gone.set()

        watcher = asyncio.create_task(watch())
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            try:
                async for chunk in self.chunks:
                    if gone.is_set():
                        return
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            except Cut:
                # Returning with the body unfinished makes uvicorn close the transport: the
                # client sees a broken chunked stream (no usage, no [DONE] / message_stop).
                return
            except asyncio.CancelledError:
                return  # server shutting down mid-stream: drop the connection quietly
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            watcher.cancel()
            await self.chunks.aclose()


def sse_data(obj: object) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"


def sse_event(name: str, obj: object) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(obj) + b"\n\n"


async def pause(seconds: float) -> None:
    if seconds > 0:
        await asyncio.sleep(seconds)


ErrorFormatter = Callable[[int, str, int | None], Response]


async def prelude(d: Directives, error: ErrorFormatter, stream: bool) -> Response | None:
    """Apply timeout / status / (non-stream) slow directives; an error response or None."""
    if d.timeout_ms:
        await asyncio.sleep(d.timeout_ms / 1000)
    if d.status is not None:
        return error(d.status, f"Fake upstream error {d.status} ([fake:status])", d.retry_after)
    if not stream and d.slow_ms:
        await asyncio.sleep(d.slow)
    return None
