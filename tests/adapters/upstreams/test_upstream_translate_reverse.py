"""Anthropic Messages clients on OpenAI-protocol providers: request, answer, stream."""

from __future__ import annotations

import anthropic
import httpx2
import pytest
from anthropic.types import Message

from meterline.adapters.upstreams.sse import SSEDecoder
from meterline.adapters.upstreams.translate import TranslationError
from meterline.adapters.upstreams.translate_reverse import (
    ChatToAnthropicStream,
    chat_to_message_response,
    messages_to_chat_request,
)
from meterline.ports import UpstreamUsage


def test_request() -> None:
    body = {
        "model": "alias",
        "system": [{"type": "text", "text": "Be brief."}],
        "max_tokens": 100,
        "temperature": 0.5,
        "stop_sequences": ["END"],
        "top_k": 5,
        "metadata": {"user_id": "u1"},
        "tools": [{"name": "f", "description": "d", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "look"},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": "AAA"},
                    },
                    {"type": "image", "source": {"type": "url", "url": "https://x.test/a.png"}},
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "…", "signature": "s"},
                    {"type": "text", "text": "ok"},
                    {"type": "tool_use", "id": "t1", "name": "f", "input": {"a": 1}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "t1", "content": "done"},
                    {"type": "text", "text": "and?"},
                ],
            },
        ],
    }
    assert messages_to_chat_request(body, "gpt-4o") == {
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "look"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAA"}},
                    {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}},
                ],
            },
            {
                "role": "assistant",
                "content": "ok",
                "tool_calls": [
                    {
                        "id": "t1",
                        "type": "function",
                        "function": {"name": "f", "arguments": '{"a":1}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "t1", "content": "done"},
            {"role": "user", "content": [{"type": "text", "text": "and?"}]},
        ],
        "max_tokens": 100,
        "temperature": 0.5,
        "stop": ["END"],
        "tools": [
            {
                "type": "function",
                "function": {"name": "f", "parameters": {"type": "object"}, "description": "d"},
            }
        ],
        "tool_choice": "required",
        "parallel_tool_calls": False,
        "user": "u1",
    }


@pytest.mark.parametrize(
    "body",
    [
        {"messages": []},
        {"messages": [{"role": "user", "content": [{"type": "document"}]}]},
        {"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "web_search_x"}]},
    ],
)
def test_untranslatable(body: dict) -> None:
    with pytest.raises(TranslationError):
        messages_to_chat_request(body, "m")


def test_response() -> None:
    completion = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o",
        "choices": [
            {
                "index": 0,
                "finish_reason": "tool_calls",
                "message": {
                    "role": "assistant",
                    "content": "hi",
                    "tool_calls": [
                        {
                            "id": "c1",
                            "type": "function",
                            "function": {"name": "f", "arguments": '{"x": 1}'},
                        }
                    ],
                },
            }
        ],
        "usage": {
            "prompt_tokens": 10,
            "completion_tokens": 4,
            "prompt_tokens_details": {"cached_tokens": 3},
        },
    }
    out = chat_to_message_response(completion)
    assert out["content"] == [
        {"type": "text", "text": "hi"},
        {"type": "tool_use", "id": "c1", "name": "f", "input": {"x": 1}},
    ]
    assert out["stop_reason"] == "tool_use"
    assert out["usage"] == {"input_tokens": 7, "output_tokens": 4, "cache_read_input_tokens": 3}
    Message.model_validate(out)


def chunk(delta: dict | None = None, finish: str | None = None, usage: dict | None = None) -> dict:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    out = {"id": "c1", "object": "chat.completion.chunk", "model": "gpt-4o", "choices": choices}
    if usage is not None:
        out["usage"] = usage
    return out


def test_stream_round_trip_through_the_anthropic_sdk_accumulator() -> None:
    machine = ChatToAnthropicStream("gpt-4o")
    chunks = []
    for c in [
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": "Hel"}),
        chunk({"content": "lo"}),
        chunk(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "f", "arguments": ""},
                    }
                ]
            }
        ),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"a"'}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": ": 2}"}}]}),
        chunk({}, "tool_calls"),
        chunk(None, usage={"prompt_tokens": 5, "completion_tokens": 9}),
    ]:
        chunks += machine.feed(c)
    chunks += machine.finish()
    events = [SSEDecoder().feed(c.data)[0] for c in chunks]
    assert [e.event for e in events] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert chunks[-1].final and chunks[-1].usage == UpstreamUsage(5, 9)
    assert "".join(c.text for c in chunks) == 'Hello{"a": 2}'
    # the official SDK, reading these bytes as a real response, rebuilds the message
    body = b"".join(c.data for c in chunks)
    transport = httpx2.MockTransport(
        lambda request: httpx2.Response(
            200, headers={"content-type": "text/event-stream"}, content=body
        )
    )
    sdk = anthropic.Anthropic(
        api_key="x", base_url="http://fake", http_client=httpx2.Client(transport=transport)
    )
    with sdk.messages.stream(
        model="m", max_tokens=10, messages=[{"role": "user", "content": "x"}]
    ) as stream:
        message = stream.get_final_message()
    assert message.content[0].text == "Hello"
    assert message.content[1].input == {"a": 2}
    assert message.stop_reason == "tool_use"
    assert message.usage.output_tokens == 9


def test_empty_stream_still_closes_properly() -> None:
    machine = ChatToAnthropicStream("m")
    kinds = [SSEDecoder().feed(c.data)[0].event for c in machine.finish()]
    assert kinds == ["message_start", "message_delta", "message_stop"]
    assert machine.usage is None
