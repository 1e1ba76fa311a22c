"""A recorded Anthropic event sequence → the exact OpenAI chunk sequence."""

from __future__ import annotations

import orjson
import pytest
from openai.types.chat import ChatCompletionChunk

from meterline.adapters.upstreams.sse import SSEDecoder
from meterline.adapters.upstreams.translate_stream import (
    AnthropicStreamError,
    AnthropicToChatStream,
)
from meterline.ports import UpstreamUsage

# Shaped like Anthropic's documented tool-use stream (text block, then a tool_use block).
RECORDED = [
    ("message_start", {"type": "message_start", "message": {
        "id": "msg_014", "type": "message", "role": "assistant", "content": [],
        "model": "claude-sonnet-4", "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": 472, "cache_creation_input_tokens": 0,
                  "cache_read_input_tokens": 20, "output_tokens": 2}}}),
    ("content_block_start", {"type": "content_block_start", "index": 0,
                             "content_block": {"type": "text", "text": ""}}),
    ("ping", {"type": "ping"}),
    ("content_block_delta", {"type": "content_block_delta", "index": 0,
                             "delta": {"type": "text_delta", "text": "Okay"}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 0,
                             "delta": {"type": "text_delta", "text": ", checking."}}),
    ("content_block_stop", {"type": "content_block_stop", "index": 0}),
    ("content_block_start", {"type": "content_block_start", "index": 1, "content_block": {
        "type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {}}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 1,
                             "delta": {"type": "input_json_delta", "partial_json": ""}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 1,
                             "delta": {"type": "input_json_delta", "partial_json": '{"loc'}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 1,
                             "delta": {"type": "input_json_delta", "partial_json": '": "SF"}'}}),
    ("content_block_stop", {"type": "content_block_stop", "index": 1}),
    ("message_delta", {"type": "message_delta",
                       "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                       "usage": {"output_tokens": 89}}),
    ("message_stop", {"type": "message_stop"}),
]  # fmt: skip

HEAD = {"id": "chatcmpl-msg_014", "object": "chat.completion.chunk", "created": 1700000000,
        "model": "claude-sonnet-4"}  # fmt: skip


def delta(d: dict, finish: str | None = None) -> dict:
    return {**HEAD, "choices": [{"index": 0, "delta": d, "logprobs": None,
                                 "finish_reason": finish}]}  # fmt: skip


def run(events: list[tuple[str, dict]]) -> tuple[AnthropicToChatStream, list]:
    machine = AnthropicToChatStream(created=1700000000, model="fallback")
    return machine, [c for name, data in events for c in machine.feed(name, data)]


def test_recorded_sequence_translates_exactly() -> None:
    machine, chunks = run(RECORDED)
    usage = UpstreamUsage(492, 89, 20)
    expected = [
        delta({"role": "assistant", "content": ""}),
        delta({"content": "Okay"}),
        delta({"content": ", checking."}),
        delta({"tool_calls": [{"index": 0, "id": "toolu_01", "type": "function",
                               "function": {"name": "get_weather", "arguments": ""}}]}),
        delta({"tool_calls": [{"index": 0, "function": {"arguments": '{"loc'}}]}),
        delta({"tool_calls": [{"index": 0, "function": {"arguments": '": "SF"}'}}]}),
        delta({}, "tool_calls"),
        {**HEAD, "choices": [], "usage": {"prompt_tokens": 492, "completion_tokens": 89,
                                          "total_tokens": 581,
                                          "prompt_tokens_details": {"cached_tokens": 20}}},
    ]  # fmt: skip
    payloads = [orjson.loads(SSEDecoder().feed(c.data)[0].data) for c in chunks[:-1]]
    assert payloads == expected
    assert chunks[-1].data == b"data: [DONE]\n\n" and chunks[-1].final
    assert [c.usage_only for c in chunks] == [False] * 7 + [True, False]
    assert [c.final for c in chunks] == [False] * 8 + [True]
    assert [c.text for c in chunks[1:3]] == ["Okay", ", checking."]
    assert chunks[0].usage == UpstreamUsage(492, 2, 20)  # prompt known from the start
    assert chunks[-2].usage == usage and machine.usage == usage
    assert machine.done
    for payload in payloads:  # the official SDK accepts every chunk
        ChatCompletionChunk.model_validate(payload)


def test_sdk_accumulates_tool_arguments() -> None:
    _, chunks = run(RECORDED)
    args = ""
    for chunk in chunks[:-1]:
        parsed = ChatCompletionChunk.model_validate_json(SSEDecoder().feed(chunk.data)[0].data)
        for choice in parsed.choices:
            for call in choice.delta.tool_calls or []:
                args += call.function.arguments or ""
    assert orjson.loads(args) == {"loc": "SF"}


def test_two_tools_get_indexes_0_and_1_and_empty_args_become_object() -> None:
    events = [
        RECORDED[0],
        ("content_block_start", {"type": "content_block_start", "index": 0, "content_block":
                                 {"type": "tool_use", "id": "a", "name": "f", "input": {}}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("content_block_start", {"type": "content_block_start", "index": 1, "content_block":
                                 {"type": "tool_use", "id": "b", "name": "g", "input": {}}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 1,
                                 "delta": {"type": "input_json_delta", "partial_json": "{}"}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 1}),
    ]  # fmt: skip
    _, chunks = run(events)
    calls = [orjson.loads(c.data[6:])["choices"][0]["delta"]["tool_calls"][0] for c in chunks[1:]]
    assert [(c["index"], c.get("id"), c["function"]["arguments"]) for c in calls] == [
        (0, "a", ""),
        (0, None, "{}"),
        (1, "b", ""),
        (1, None, "{}"),
    ]


@pytest.mark.parametrize(("reason", "finish"), [("end_turn", "stop"), ("max_tokens", "length")])
def test_finish_reason(reason: str, finish: str) -> None:
    events = [RECORDED[0], ("message_delta", {"type": "message_delta",
                                              "delta": {"stop_reason": reason},
                                              "usage": {"output_tokens": 3}})]  # fmt: skip
    _, chunks = run(events)
    assert orjson.loads(chunks[-1].data[6:])["choices"][0]["finish_reason"] == finish


def test_no_usage_reported_means_no_usage_chunk() -> None:
    events = [
        ("message_start", {"type": "message_start", "message": {"id": "m", "model": "c"}}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"}}),
        ("message_stop", {"type": "message_stop"}),
    ]
    machine, chunks = run(events)
    assert machine.usage is None
    assert all(c.usage is None and not c.usage_only for c in chunks)
    assert chunks[-1].final


def test_zero_usage_is_reported_as_zero() -> None:
    events = [
        ("message_start", {"type": "message_start", "message": {
            "id": "m", "model": "c", "usage": {"input_tokens": 0, "output_tokens": 0}}}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                           "usage": {"output_tokens": 0}}),
        ("message_stop", {"type": "message_stop"}),
    ]  # fmt: skip
    _, chunks = run(events)
    assert chunks[-2].usage_only and chunks[-2].usage == UpstreamUsage(0, 0, 0)


def test_error_event_raises() -> None:
    machine = AnthropicToChatStream(created=0)
    err = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    with pytest.raises(AnthropicStreamError, match="Overloaded"):
        machine.feed("error", err)
