"""OpenAI chat → Anthropic Messages requests, and Anthropic answers → chat completions."""

from __future__ import annotations

import orjson
import pytest
from openai.types.chat import ChatCompletion

from meterline.adapters.upstreams.translate import (
    TranslationError,
    anthropic_usage,
    chat_to_messages_request,
    message_to_chat_response,
    openai_chat_usage,
)
from meterline.ports import UpstreamUsage

PNG = "iVBORw0KGgo="


def test_minimal_request_gets_default_max_tokens_and_target_model() -> None:
    body = {"model": "claude-alias", "messages": [{"role": "user", "content": "hi"}]}
    assert chat_to_messages_request(body, "claude-sonnet-4") == {
        "model": "claude-sonnet-4",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
        "max_tokens": 4096,
    }


def test_full_request() -> None:
    body = {
        "model": "x",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [{"type": "text", "text": "Use tools."}]},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in these?"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                    {"type": "image_url", "image_url": {"url": "https://x.test/cat.jpg"}},
                ],
            },
            {
                "role": "assistant",
                "content": "Let me look.",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "lookup", "arguments": '{"q": "cat"}'},
                    },
                    {
                        "id": "call_2",
                        "type": "function",
                        "function": {"name": "now", "arguments": ""},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "a cat"},
            {
                "role": "tool",
                "tool_call_id": "call_2",
                "content": [{"type": "text", "text": "noon"}],
            },
            {"role": "user", "content": "thanks"},
        ],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "lookup",
                    "description": "Search",
                    "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
                },
            },
            {"type": "function", "function": {"name": "now"}},
        ],
        "tool_choice": {"type": "function", "function": {"name": "lookup"}},
        "parallel_tool_calls": False,
        "max_completion_tokens": 99,
        "max_tokens": 5,
        "temperature": 1.5,
        "top_p": 0.9,
        "stop": "END",
        "stream": True,
        "stream_options": {"include_usage": True},
        "response_format": {"type": "json_object"},
        "seed": 1,
        "user": "user_123",
    }
    assert chat_to_messages_request(body, "claude") == {
        "model": "claude",
        "system": "Be brief.\n\nUse tools.",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in these?"},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": PNG},
                    },
                    {"type": "image", "source": {"type": "url", "url": "https://x.test/cat.jpg"}},
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Let me look."},
                    {"type": "tool_use", "id": "call_1", "name": "lookup", "input": {"q": "cat"}},
                    {"type": "tool_use", "id": "call_2", "name": "now", "input": {}},
                ],
            },
            {
                "role": "user",  # both tool results and the next user turn: one turn
                "content": [
                    {"type": "tool_result", "tool_use_id": "call_1", "content": "a cat"},
                    {
                        "type": "tool_result",
                        "tool_use_id": "call_2",
                        "content": [{"type": "text", "text": "noon"}],
                    },
                    {"type": "text", "text": "thanks"},
                ],
            },
        ],
        "max_tokens": 99,
        "temperature": 1,
        "top_p": 0.9,
        "stop_sequences": ["END"],
        "tools": [
            {
                "name": "lookup",
                "description": "Search",
                "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}},
            },
            {"name": "now", "input_schema": {"type": "object", "properties": {}}},
        ],
        "tool_choice": {"type": "tool", "name": "lookup", "disable_parallel_tool_use": True},
        "metadata": {"user_id": "user_123"},
        "stream": True,
    }


@pytest.mark.parametrize(
    ("choice", "expected"),
    [("auto", {"type": "auto"}), ("required", {"type": "any"}), ("none", {"type": "none"})],
)
def test_tool_choice(choice: str, expected: dict) -> None:
    body = {
        "messages": [{"role": "user", "content": "x"}],
        "tools": [{"type": "function", "function": {"name": "f"}}],
        "tool_choice": choice,
    }
    assert chat_to_messages_request(body, "m")["tool_choice"] == expected


def test_legacy_functions() -> None:
    body = {
        "messages": [
            {"role": "user", "content": "x"},
            {
                "role": "assistant",
                "content": None,
                "function_call": {"name": "f", "arguments": "{}"},
            },
            {"role": "function", "name": "f", "content": "42"},
        ],
        "functions": [{"name": "f", "parameters": {"type": "object"}}],
        "function_call": {"name": "f"},
    }
    out = chat_to_messages_request(body, "m")
    assert out["tools"] == [{"name": "f", "input_schema": {"type": "object"}}]
    assert out["tool_choice"] == {"type": "tool", "name": "f"}
    use, result = out["messages"][1]["content"][0], out["messages"][2]["content"][0]
    assert use["type"] == "tool_use" and result["type"] == "tool_result"
    assert use["id"] == result["tool_use_id"]


def test_stop_list_and_empty_assistant_dropped() -> None:
    body = {
        "messages": [
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": ""},
            {"role": "user", "content": "b"},
        ],
        "stop": ["x", "y"],
        "temperature": 0.2,
    }
    out = chat_to_messages_request(body, "m")
    assert out["stop_sequences"] == ["x", "y"]
    assert out["temperature"] == 0.2
    assert out["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}
    ]


@pytest.mark.parametrize(
    "body",
    [
        {"messages": []},
        {"messages": [{"role": "user", "content": "x"}], "n": 2},
        {"messages": [{"role": "wizard", "content": "x"}]},
        {"messages": [{"role": "user", "content": [{"type": "input_audio"}]}]},
        {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
        {
            "messages": [
                {"role": "user", "content": [{"type": "image_url", "image_url": "data:a,b"}]}
            ]
        },
        {
            "messages": [
                {
                    "role": "assistant",
                    "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "{bad"}}],
                }
            ]
        },
        {
            "messages": [
                {
                    "role": "assistant",
                    "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "[1]"}}],
                }
            ]
        },
    ],
)
def test_untranslatable_requests_raise(body: dict) -> None:
    with pytest.raises(TranslationError):
        chat_to_messages_request(body, "m")


MESSAGE = {
    "id": "msg_01",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4",
    "content": [
        {"type": "thinking", "thinking": "hmm", "signature": "s"},
        {"type": "text", "text": "Looking it up. "},
        {"type": "text", "text": "One moment."},
        {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"q": "cat", "n": 2}},
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 10,
        "cache_creation_input_tokens": 5,
        "cache_read_input_tokens": 100,
        "output_tokens": 7,
    },
}


def test_response_with_tool_use() -> None:
    out = message_to_chat_response(MESSAGE, created=1700000000)
    assert out == {
        "id": "chatcmpl-msg_01",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "claude-sonnet-4",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Looking it up. One moment.",
                    "refusal": None,
                    "tool_calls": [
                        {
                            "id": "toolu_1",
                            "type": "function",
                            "function": {"name": "lookup", "arguments": '{"q":"cat","n":2}'},
                        }
                    ],
                },
                "logprobs": None,
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {
            "prompt_tokens": 115,
            "completion_tokens": 7,
            "total_tokens": 122,
            "prompt_tokens_details": {"cached_tokens": 100},
        },
    }
    parsed = ChatCompletion.model_validate(out)
    call = parsed.choices[0].message.tool_calls[0]
    assert orjson.loads(call.function.arguments) == {"q": "cat", "n": 2}


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        (None, "stop"),
    ],
)
def test_finish_reasons(stop_reason: str | None, finish: str) -> None:
    message = {
        "id": "m",
        "model": "c",
        "content": [{"type": "text", "text": "hi"}],
        "stop_reason": stop_reason,
        "usage": {"input_tokens": 1, "output_tokens": 1},
    }
    out = message_to_chat_response(message, created=0)
    assert out["choices"][0]["finish_reason"] == finish
    ChatCompletion.model_validate(out)


def test_tool_only_answer_has_null_content_and_no_usage_stays_absent() -> None:
    message = {
        "id": "m",
        "model": "c",
        "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}],
        "stop_reason": "tool_use",
    }
    out = message_to_chat_response(message, created=0)
    assert out["choices"][0]["message"]["content"] is None
    assert out["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] == "{}"
    assert "usage" not in out
    ChatCompletion.model_validate(out)


def test_usage_zero_is_not_missing() -> None:
    assert anthropic_usage({"input_tokens": 0, "output_tokens": 0}) == UpstreamUsage(0, 0, 0)
    assert anthropic_usage(None) is None
    assert openai_chat_usage({"prompt_tokens": 0, "completion_tokens": 0}) == UpstreamUsage(0, 0)
    assert openai_chat_usage(None) is None
    assert openai_chat_usage(
        {"prompt_tokens": 9, "completion_tokens": 2, "prompt_tokens_details": {"cached_tokens": 4}}
    ) == UpstreamUsage(9, 2, 4)
