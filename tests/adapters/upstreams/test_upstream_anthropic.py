"""AnthropicUpstream against the fake provider: passthrough, translated chat, errors."""

from __future__ import annotations

import orjson
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from meterline.adapters.upstreams import AnthropicUpstream
from meterline.adapters.upstreams.http_client import UpstreamHttp
from meterline.adapters.upstreams.sse import SSEDecoder
from meterline.ports import (
    Operation,
    ProviderTarget,
    StreamChunk,
    UpstreamBroken,
    UpstreamError,
    UpstreamUsage,
    WireProtocol,
)
from meterline.testing.fake_upstream import FakeUpstream


def target(fake: FakeUpstream) -> ProviderTarget:
    return ProviderTarget(
        "anthropic", WireProtocol.ANTHROPIC, fake.anthropic_base_url, "sk-ant", "claude-real"
    )


def messages(text: str, **extra: object) -> dict:
    return {
        "model": "alias",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": text}],
        **extra,
    }


def chat(text: str, **extra: object) -> dict:
    return {"model": "alias", "messages": [{"role": "user", "content": text}], **extra}


async def collect(http: UpstreamHttp, t: ProviderTarget, op: Operation, body: dict):
    return [chunk async for chunk in AnthropicUpstream(http).stream(t, op, body)]


def event_of(chunk: StreamChunk):
    return SSEDecoder().feed(chunk.data)[0]


async def test_messages_passthrough(fake: FakeUpstream, http: UpstreamHttp) -> None:
    body = messages("hello you [fake:words=2]", metadata={"user_id": "u"}, top_k=3)
    reply = await AnthropicUpstream(http).send(target(fake), Operation.MESSAGES, body)
    sent = fake.requests[-1]
    assert sent.path == "/v1/messages"
    assert sent.headers["x-api-key"] == "sk-ant"
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert sent.headers["content-type"] == "application/json"
    assert sent.body == {**body, "model": "claude-real"}
    assert reply.body["type"] == "message"
    assert reply.body["content"][0]["text"] == "Fake reply: alpha beta"
    assert reply.usage == UpstreamUsage(3, 4, 0)


async def test_messages_stream_passthrough(fake: FakeUpstream, http: UpstreamHttp) -> None:
    body = messages("one two three [fake:words=3] [fake:cached=2]")
    chunks = await collect(http, target(fake), Operation.MESSAGES, body)
    assert fake.requests[-1].body["stream"] is True
    events = [event_of(c) for c in chunks]
    assert events[0].event == "message_start" and events[-1].event == "message_stop"
    assert all(c.data.startswith(b"event: ") for c in chunks)
    assert "ping" in [e.event for e in events]  # forwarded as the provider sent it
    assert "".join(c.text for c in chunks) == "Fake reply: alpha beta gamma"
    start = orjson.loads(events[0].data)["message"]["usage"]
    assert start["cache_read_input_tokens"] == 2
    # input from message_start (input + cache read), output from the last message_delta
    assert chunks[-1].final and chunks[-1].usage == UpstreamUsage(5, 5, 2)
    assert chunks[0].usage == UpstreamUsage(5, start["output_tokens"], 2)
    assert [c.final for c in chunks].count(True) == 1


async def test_chat_translated(fake: FakeUpstream, http: UpstreamHttp) -> None:
    body = chat(
        "hi [fake:words=2]",
        max_tokens=20,
        stop="END",
        response_format={"type": "json_object"},
        messages=[
            {"role": "system", "content": "be nice"},
            {"role": "user", "content": "hi [fake:words=2]"},
        ],
    )
    reply = await AnthropicUpstream(http).send(target(fake), Operation.CHAT, body)
    sent = fake.requests[-1].body
    assert sent["system"] == "be nice" and sent["max_tokens"] == 20
    assert sent["stop_sequences"] == ["END"] and "response_format" not in sent
    completion = ChatCompletion.model_validate(reply.body)
    assert completion.choices[0].message.content == "Fake reply: alpha beta"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.prompt_tokens == 4 and completion.usage.completion_tokens == 4
    assert reply.usage == UpstreamUsage(4, 4, 0)


async def test_chat_translated_tool_call(fake: FakeUpstream, http: UpstreamHttp) -> None:
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]
    reply = await AnthropicUpstream(http).send(
        target(fake), Operation.CHAT, chat("[fake:tool]", tools=tools)
    )
    assert fake.requests[-1].body["max_tokens"] == 4096
    completion = ChatCompletion.model_validate(reply.body)
    call = completion.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert orjson.loads(call.function.arguments) == {"city": "Paris"}
    assert completion.choices[0].finish_reason == "tool_calls"


async def test_chat_translated_stream(fake: FakeUpstream, http: UpstreamHttp) -> None:
    chunks = await collect(http, target(fake), Operation.CHAT, chat("hi [fake:words=2]"))
    assert chunks[-1].data == b"data: [DONE]\n\n" and chunks[-1].final
    assert chunks[-2].usage_only and chunks[-2].usage == UpstreamUsage(2, 4, 0)
    assert "".join(c.text for c in chunks) == "Fake reply: alpha beta"
    parsed = [ChatCompletionChunk.model_validate_json(event_of(c).data) for c in chunks[:-1]]
    assert parsed[0].choices[0].delta.role == "assistant"
    assert parsed[-2].choices[0].finish_reason == "stop"
    assert parsed[-1].choices == [] and parsed[-1].usage.total_tokens == 6


async def test_chat_translated_stream_tool(fake: FakeUpstream, http: UpstreamHttp) -> None:
    chunks = await collect(http, target(fake), Operation.CHAT, chat("[fake:tool]"))
    parsed = [ChatCompletionChunk.model_validate_json(event_of(c).data) for c in chunks[:-1]]
    args = "".join(
        call.function.arguments or ""
        for p in parsed
        for choice in p.choices
        for call in choice.delta.tool_calls or []
    )
    assert orjson.loads(args) == {"city": "Paris"}
    assert parsed[-2].choices[0].finish_reason == "tool_calls"


# ---------------------------------------------------------------- errors


async def test_error_for_chat_is_openai_shaped(fake: FakeUpstream, http: UpstreamHttp) -> None:
    with pytest.raises(UpstreamError) as err:
        await AnthropicUpstream(http).send(target(fake), Operation.CHAT, chat("[fake:status=500]"))
    assert err.value.status == 500
    assert set(err.value.body["error"]) >= {"message", "type", "code"}
    assert err.value.body["error"]["code"] == "upstream_500"


async def test_error_for_messages_passes_through(fake: FakeUpstream, http: UpstreamHttp) -> None:
    with pytest.raises(UpstreamError) as err:
        await collect(http, target(fake), Operation.MESSAGES, messages("[fake:status=529]"))
    assert err.value.status == 529
    assert err.value.body["type"] == "error" and "message" in err.value.body["error"]


@pytest.mark.parametrize("op", [Operation.EMBEDDINGS, Operation.RESPONSES])
async def test_unsupported_operations(
    fake: FakeUpstream, http: UpstreamHttp, op: Operation
) -> None:
    with pytest.raises(UpstreamError) as err:
        await AnthropicUpstream(http).send(target(fake), op, {"input": "x"})
    assert err.value.status == 400 and "does not support" in err.value.body["error"]["message"]
    with pytest.raises(UpstreamError):
        await collect(http, target(fake), op, {"input": "x"})


async def test_untranslatable_chat_is_400(fake: FakeUpstream, http: UpstreamHttp) -> None:
    with pytest.raises(UpstreamError) as err:
        await AnthropicUpstream(http).send(target(fake), Operation.CHAT, chat("x", n=3))
    assert err.value.status == 400
    assert err.value.body["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize("op", [Operation.CHAT, Operation.MESSAGES])
async def test_cut_stream_is_broken(fake: FakeUpstream, http: UpstreamHttp, op: Operation) -> None:
    body = chat("[fake:cut=3]") if op is Operation.CHAT else messages("[fake:cut=3]")
    seen: list[StreamChunk] = []
    with pytest.raises(UpstreamBroken):
        async for chunk in AnthropicUpstream(http).stream(target(fake), op, body):
            seen.append(chunk)
    assert "".join(c.text for c in seen) == "Fake reply: alpha"
    assert seen[0].usage is not None  # the prompt is known even though the stream broke


async def test_malformed(fake: FakeUpstream, http: UpstreamHttp) -> None:
    with pytest.raises(UpstreamError) as err:
        await AnthropicUpstream(http).send(
            target(fake), Operation.MESSAGES, messages("[fake:malformed]")
        )
    assert err.value.status == 502 and err.value.body["type"] == "error"
    with pytest.raises(UpstreamBroken):  # garbage after the first event: output had started
        await collect(http, target(fake), Operation.CHAT, chat("[fake:malformed]"))


@pytest.mark.parametrize("op", [Operation.CHAT, Operation.MESSAGES])
async def test_missing_vs_zero_usage(fake: FakeUpstream, http: UpstreamHttp, op: Operation) -> None:
    upstream = AnthropicUpstream(http)
    make = chat if op is Operation.CHAT else messages
    assert (await upstream.send(target(fake), op, make("[fake:no_usage]"))).usage is None
    zero = await upstream.send(target(fake), op, make("[fake:zero_usage]"))
    assert zero.usage == UpstreamUsage(0, 0, 0)
    missing = await collect(http, target(fake), op, make("[fake:no_usage]"))
    assert all(c.usage is None and not c.usage_only for c in missing) and missing[-1].final
    zeros = await collect(http, target(fake), op, make("[fake:zero_usage]"))
    assert zeros[-1].final and zeros[-1].usage == UpstreamUsage(0, 0, 0)


async def test_official_openai_sdk_reads_the_translated_stream(
    fake: FakeUpstream, http: UpstreamHttp
) -> None:
    import httpx2
    import openai

    chunks = await collect(http, target(fake), Operation.CHAT, chat("[fake:tool]"))
    body = b"".join(c.data for c in chunks)
    transport = httpx2.MockTransport(
        lambda request: httpx2.Response(
            200, headers={"content-type": "text/event-stream"}, content=body
        )
    )
    sdk = openai.OpenAI(
        api_key="x", base_url="http://gateway/v1", http_client=httpx2.Client(transport=transport)
    )
    with sdk.chat.completions.stream(
        model="m",
        messages=[{"role": "user", "content": "x"}],
        tools=[{"type": "function", "function": {"name": "get_weather", "parameters": {}}}],
    ) as stream:
        final = stream.get_final_completion()
    call = final.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert orjson.loads(call.function.arguments) == {"city": "Paris"}
    assert final.usage.completion_tokens == 6
