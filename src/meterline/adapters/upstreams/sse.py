"""Server-sent events, parsed incrementally and written back out.

Providers stream answers as SSE. The gateway must forward each event as soon as it
arrives (never buffer the whole body) and must read usage out of some of them, so the
decoder works on arbitrary network chunks: an event, a line, even a UTF-8 character may
be split across two reads. Line endings ``\\n``, ``\\r\\n`` and ``\\r`` are all accepted
(the SSE spec allows each), comment lines (``: ping``) are dropped, and ``data:`` lines
of one event are joined with ``\\n`` as the spec says.

Events are re-encoded rather than copied byte for byte: that normalises line endings and
drops comments, which is what a client expects from the gateway anyway.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

__all__ = ["SSEDecoder", "SSEEvent", "encode_event", "encode_json_event"]


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One dispatched event: its ``event:`` name (``""`` when absent) and joined data."""

    event: str
    data: str

    def json(self) -> Any:
        """The data parsed as JSON; raises ``orjson.JSONDecodeError`` when it is not."""
        return orjson.loads(self.data)

    def encode(self) -> bytes:
        """The event as bytes to forward (``event:`` line only when it had a name)."""
        return encode_event(self.data, self.event)


def encode_event(data: str, event: str = "") -> bytes:
    """``[event: X\\n]data: …\\n\\n``; multi-line data becomes several ``data:`` lines."""
    head = f"event: {event}\n" if event else ""
    lines = "".join(f"data: {line}\n" for line in data.split("\n"))
    return (head + lines + "\n").encode()


def encode_json_event(payload: Any, event: str = "") -> bytes:
    """Encode ``payload`` as compact JSON into one SSE event."""
    return encode_event(orjson.dumps(payload).decode(), event)


class SSEDecoder:
    """Feed raw bytes with :meth:`feed`; get complete events back. Call :meth:`close`
    at end of stream to flush an event that lacked its final blank line."""

    __slots__ = ("_buffer", "_data", "_event", "_pending_cr")

    def __init__(self) -> None:
        self._buffer = b""
        self._pending_cr = False  # last chunk ended in "\r": a following "\n" belongs to it
        self._event = ""
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        if self._pending_cr and chunk.startswith(b"\n"):
            chunk = chunk[1:]
        self._pending_cr = False
        self._buffer += chunk
        out: list[SSEEvent] = []
        while True:
            line, found = self._take_line()
            if not found:
                break
            event = self._line(line)
            if event is not None:
                out.append(event)
        return out

    def close(self) -> list[SSEEvent]:
        """Flush what is left: a trailing line without newline, then a pending event."""
        out: list[SSEEvent] = []
        if self._buffer:
            line, self._buffer = self._buffer, b""
            event = self._line(line)
            if event is not None:
                out.append(event)
        event = self._line(b"")
        if event is not None:
            out.append(event)
        return out

    def _take_line(self) -> tuple[bytes, bool]:
        buf = self._buffer
        lf, cr = buf.find(b"\n"), buf.find(b"\r")
        if lf < 0 and cr < 0:
            return b"", False
        if cr < 0 or (0 <= lf < cr):
            self._buffer = buf[lf + 1 :]
            return buf[:lf], True
        # a "\r": either "\r\n" or a lone "\r"; at the buffer's end we cannot yet tell
        line = buf[:cr]
        if cr + 1 < len(buf):
            self._buffer = buf[cr + 2 :] if buf[cr + 1 : cr + 2] == b"\n" else buf[cr + 1 :]
        else:
            self._buffer = b""
            self._pending_cr = True
        return line, True

    def _line(self, raw: bytes) -> SSEEvent | None:
        if not raw:  # blank line: dispatch
            if not self._data:
                self._event = ""
                return None
            event = SSEEvent(self._event, "\n".join(self._data))
            self._event, self._data = "", []
            return event
        line = raw.decode("utf-8", errors="replace")
        if line.startswith(":"):
            return None  # comment / keep-alive
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        # "id" and "retry" are meaningless between provider and gateway: ignored
        return None
