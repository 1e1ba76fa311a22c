"""SSE decoding survives whatever way the network slices the bytes."""

from __future__ import annotations

import pytest

from meterline.adapters.upstreams.sse import (
    SSEDecoder,
    SSEEvent,
    encode_event,
    encode_json_event,
)

STREAM = (
    (
        b": keep-alive comment\n"
        b"event: message_start\n"
        b'data: {"type":"message_start"}\n'
        b"\n"
        b"event: ping\r\n"
        b'data: {"type": "ping"}\r\n'
        b"\r\n"
        b"data: first line\n"
        b"data: second line\n"
        b"id: 7\n"
        b"retry: 10\n"
        b"\n"
    )
    + 'data: {"text":"héllo ✓"}\r\r'.encode()
    + b"data: [DONE]\n\n"
)

EXPECTED = [
    SSEEvent("message_start", '{"type":"message_start"}'),
    SSEEvent("ping", '{"type": "ping"}'),
    SSEEvent("", "first line\nsecond line"),
    SSEEvent("", '{"text":"héllo ✓"}'),
    SSEEvent("", "[DONE]"),
]


def decode_in_pieces(data: bytes, size: int) -> list[SSEEvent]:
    decoder = SSEDecoder()
    events: list[SSEEvent] = []
    for i in range(0, len(data), size):
        events += decoder.feed(data[i : i + size])
    return events + decoder.close()


def test_whole_stream_at_once() -> None:
    assert decode_in_pieces(STREAM, len(STREAM)) == EXPECTED


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 13, 64])
def test_any_split_gives_the_same_events(size: int) -> None:
    # byte-by-byte splits cut "\r\n" pairs and multi-byte UTF-8 characters in half
    assert decode_in_pieces(STREAM, size) == EXPECTED


def test_every_two_way_split() -> None:
    for cut in range(len(STREAM)):
        decoder = SSEDecoder()
        events = decoder.feed(STREAM[:cut]) + decoder.feed(STREAM[cut:]) + decoder.close()
        assert events == EXPECTED, cut


def test_events_are_dispatched_as_soon_as_complete() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b'data: {"a":1}\n') == []
    assert decoder.feed(b"\n") == [SSEEvent("", '{"a":1}')]
    assert decoder.feed(b"data: x") == []
    assert decoder.close() == [SSEEvent("", "x")]  # no trailing blank line: flushed


def test_comments_and_empty_events_yield_nothing() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b": ping\n\n: ping\n\nevent: lonely\n\n") == []
    assert decoder.feed(b"data: y\n\n") == [SSEEvent("", "y")]  # stale event name dropped


def test_field_without_space_and_without_value() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data:tight\ndata\n\n") == [SSEEvent("", "tight\n")]


def test_encode_round_trip() -> None:
    assert encode_event("[DONE]") == b"data: [DONE]\n\n"
    assert encode_event("a\nb", "x") == b"event: x\ndata: a\ndata: b\n\n"
    assert encode_json_event({"type": "ping"}, "ping") == b'event: ping\ndata: {"type":"ping"}\n\n'
    for event in EXPECTED:
        assert SSEDecoder().feed(event.encode()) == [event]
