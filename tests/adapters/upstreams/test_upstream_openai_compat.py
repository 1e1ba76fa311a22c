"""OpenAICompatible against the fake provider: passthrough, streams, usage, errors."""

from __future__ import annotations

import socket

import anthropic.types
import orjson
import pytest

from meterline.adapters.upstreams import OpenAICompatible, make_http_client
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


def target(fake: FakeUpstream, key: str | None = "sk-test") -> ProviderTarget:
    return ProviderTarget("openai", WireProtocol.OPENAI, fake.openai_base_url, key, "gpt-real")


def chat(text: str, **extra: object) -> dict:
    return {"model": "alias", "messages": [{"role": "user", "content": text}], **extra}


async def collect(upstream: OpenAICompatible, t: ProviderTarget, op: Operation, body: dict):
    return [chunk async for chunk in upstream.stream(t, op, body)]


def payload(chunk: StreamChunk) -> dict:
    return orjson.loads(SSEDecoder().feed(chunk.data)[0].data)


async def test_chat_non_stream(fake: FakeUpstream, http: UpstreamHttp) -> None:
    body = chat("hello there [fake:words=3]", stream=True, stream_options={"x": 1}, user="u1")
    reply = await OpenAICompatible(http).send(target(fake), Operation.CHAT, body)
    assert reply.status == 200
    assert reply.body["choices"][0]["message"]["content"] == "Fake reply: alpha beta gamma"
    assert reply.usage == UpstreamUsage(3, 5, 0)
    sent = fake.requests[-1]
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == "Bearer sk-test"
    assert sent.body["model"] == "gpt-real" and sent.body["user"] == "u1"
    assert "stream" not in sent.body and "stream_options" not in sent.body


async def test_no_auth_header_without_key(fake: FakeUpstream, http: UpstreamHttp) -> None:
    await OpenAICompatible(http).send(target(fake, key=None), Operation.CHAT, chat("x"))
    assert "authorization" not in fake.requests[-1].headers


async def test_chat_stream(fake: FakeUpstream, http: UpstreamHttp) -> None:
    chunks = await collect(
        OpenAICompatible(http), target(fake), Operation.CHAT, chat("hi [fake:words=2]")
    )
    sent = fake.requests[-1].body
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    assert all(c.data.startswith(b"data: ") and c.data.endswith(b"\n\n") for c in chunks)
    assert "".join(c.text for c in chunks) == "Fake reply: alpha beta"
    assert chunks[-1].data == b"data: [DONE]\n\n" and chunks[-1].final
    usage_chunk = chunks[-2]
    assert usage_chunk.usage_only and usage_chunk.usage == UpstreamUsage(2, 4, 0)
    assert payload(usage_chunk)["choices"] == []
    assert [c.usage_only for c in chunks].count(True) == 1
    assert [c.final for c in chunks].count(True) == 1
    assert payload(chunks[0])["model"] == "gpt-real"


async def test_chat_stream_cached_tokens(fake: FakeUpstream, http: UpstreamHttp) -> None:
    body = chat("one two three four [fake:cached=2]")
    chunks = await collect(OpenAICompatible(http), target(fake), Operation.CHAT, body)
    assert chunks[-2].usage == UpstreamUsage(5, 10, 2)


async def test_embeddings(fake: FakeUpstream, http: UpstreamHttp) -> None:
    body = {"model": "alias", "input": ["one two", "three"]}
    reply = await OpenAICompatible(http).send(target(fake), Operation.EMBEDDINGS, body)
    assert fake.requests[-1].path == "/v1/embeddings"
    assert len(reply.body["data"]) == 2
    assert reply.usage == UpstreamUsage(3, 0, 0)


async def test_embeddings_cannot_stream(fake: FakeUpstream, http: UpstreamHttp) -> None:
    with pytest.raises(UpstreamError) as err:
        await collect(OpenAICompatible(http), target(fake), Operation.EMBEDDINGS, {"input": "x"})
    assert err.value.status == 400


async def test_responses(fake: FakeUpstream, http: UpstreamHttp) -> None:
    body = {"model": "alias", "input": "hi there [fake:words=2]"}
    reply = await OpenAICompatible(http).send(target(fake), Operation.RESPONSES, body)
    assert fake.requests[-1].path == "/v1/responses"
    assert reply.usage == UpstreamUsage(3, 4, 0)


async def test_responses_stream(fake: FakeUpstream, http: UpstreamHttp) -> None:
    body = {"model": "alias", "input": "hi there [fake:words=2]"}
    chunks = await collect(OpenAICompatible(http), target(fake), Operation.RESPONSES, body)
    assert "stream_options" not in fake.requests[-1].body
    assert "".join(c.text for c in chunks) == "Fake reply: alpha beta"
    with_usage = [c for c in chunks if c.usage is not None]
    assert len(with_usage) == 1 and with_usage[0].usage == UpstreamUsage(3, 4, 0)
    assert payload(with_usage[0])["type"] == "response.completed"
    assert with_usage[0] is chunks[-1]
    assert not any(c.final or c.usage_only for c in chunks)  # end of stream is final


async def test_messages_on_openai_target(fake: FakeUpstream, http: UpstreamHttp) -> None:
    body = {
        "model": "alias",
        "max_tokens": 50,
        "system": "be nice",
        "messages": [{"role": "user", "content": "hi [fake:words=2]"}],
    }
    reply = await OpenAICompatible(http).send(target(fake), Operation.MESSAGES, body)
    sent = fake.requests[-1]
    assert sent.path == "/v1/chat/completions"
    assert sent.body["messages"][0] == {"role": "system", "content": "be nice"}
    message = anthropic.types.Message.model_validate(reply.body)
    assert message.content[0].text == "Fake reply: alpha beta"
    assert message.stop_reason == "end_turn"
    assert reply.usage == UpstreamUsage(4, 4, 0)


async def test_messages_stream_on_openai_target(fake: FakeUpstream, http: UpstreamHttp) -> None:
    body = {
        "model": "a",
        "max_tokens": 50,
        "messages": [{"role": "user", "content": "x [fake:tool]"}],
    }
    chunks = await collect(OpenAICompatible(http), target(fake), Operation.MESSAGES, body)
    events = [SSEDecoder().feed(c.data)[0] for c in chunks]
    assert events[0].event == "message_start" and events[-1].event == "message_stop"
    assert chunks[-1].final and chunks[-1].usage == UpstreamUsage(2, 6, 0)
    tool = [e for e in events if e.event == "content_block_start"][-1]
    assert orjson.loads(tool.data)["content_block"]["name"] == "get_weather"
    args = "".join(
        orjson.loads(e.data)["delta"].get("partial_json", "")
        for e in events
        if e.event == "content_block_delta"
    )
    assert orjson.loads(args) == {"city": "Paris"}


# ---------------------------------------------------------------- errors


async def test_provider_error_passes_through(fake: FakeUpstream, http: UpstreamHttp) -> None:
    with pytest.raises(UpstreamError) as err:
        await OpenAICompatible(http).send(target(fake), Operation.CHAT, chat("[fake:status=500]"))
    assert err.value.status == 500
    assert isinstance(err.value.body["error"]["message"], str)


async def test_stream_error_before_output(fake: FakeUpstream, http: UpstreamHttp) -> None:
    with pytest.raises(UpstreamError) as err:
        await collect(
            OpenAICompatible(http), target(fake), Operation.CHAT, chat("[fake:status=429]")
        )
    assert err.value.status == 429 and "message" in err.value.body["error"]


async def test_error_for_messages_client_is_anthropic_shaped(
    fake: FakeUpstream, http: UpstreamHttp
) -> None:
    body = {"max_tokens": 5, "messages": [{"role": "user", "content": "[fake:status=503]"}]}
    with pytest.raises(UpstreamError) as err:
        await OpenAICompatible(http).send(target(fake), Operation.MESSAGES, body)
    assert err.value.status == 503
    assert err.value.body["type"] == "error" and err.value.body["error"]["type"] == "api_error"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_connection_refused_is_502(http: UpstreamHttp) -> None:
    t = ProviderTarget("x", WireProtocol.OPENAI, f"http://127.0.0.1:{free_port()}/v1", None, "m")
    with pytest.raises(UpstreamError) as err:
        await OpenAICompatible(http).send(t, Operation.CHAT, chat("x"))
    assert err.value.status == 502
    assert err.value.body["error"]["code"] == "upstream_502"
    with pytest.raises(UpstreamError) as err:
        await collect(OpenAICompatible(http), t, Operation.CHAT, chat("x"))
    assert err.value.status == 502


async def test_timeout_is_504(fake: FakeUpstream) -> None:
    client = make_http_client(read_timeout=0.2)
    try:
        with pytest.raises(UpstreamError) as err:
            await OpenAICompatible(client).send(
                target(fake), Operation.CHAT, chat("[fake:timeout=1500]")
            )
    finally:
        await client.aclose()
    assert err.value.status == 504


async def test_slow_stream_times_out_as_broken(fake: FakeUpstream) -> None:
    client = make_http_client(read_timeout=0.3)
    seen = []
    try:
        with pytest.raises(UpstreamBroken):
            async for chunk in OpenAICompatible(client).stream(
                target(fake), Operation.CHAT, chat("[fake:slow=1000]")
            ):
                seen.append(chunk)
    finally:
        await client.aclose()
    assert seen  # the role chunk came before the stall


async def test_cut_stream_is_broken(fake: FakeUpstream, http: UpstreamHttp) -> None:
    seen: list[StreamChunk] = []
    with pytest.raises(UpstreamBroken):
        async for chunk in OpenAICompatible(http).stream(
            target(fake), Operation.CHAT, chat("[fake:cut=3]")
        ):
            seen.append(chunk)
    assert "".join(c.text for c in seen) == "Fake reply: alpha"
    assert not any(c.final for c in seen)


async def test_malformed_reply(fake: FakeUpstream, http: UpstreamHttp) -> None:
    with pytest.raises(UpstreamError) as err:
        await OpenAICompatible(http).send(target(fake), Operation.CHAT, chat("[fake:malformed]"))
    assert err.value.status == 502
    with pytest.raises(UpstreamBroken):
        await collect(
            OpenAICompatible(http), target(fake), Operation.CHAT, chat("[fake:malformed]")
        )


async def test_missing_usage_is_none(fake: FakeUpstream, http: UpstreamHttp) -> None:
    upstream = OpenAICompatible(http)
    reply = await upstream.send(target(fake), Operation.CHAT, chat("[fake:no_usage]"))
    assert reply.usage is None
    chunks = await collect(upstream, target(fake), Operation.CHAT, chat("[fake:no_usage]"))
    assert all(c.usage is None and not c.usage_only for c in chunks) and chunks[-1].final


async def test_zero_usage_stays_zero(fake: FakeUpstream, http: UpstreamHttp) -> None:
    upstream = OpenAICompatible(http)
    reply = await upstream.send(target(fake), Operation.CHAT, chat("[fake:zero_usage]"))
    assert reply.usage == UpstreamUsage(0, 0, 0)
    chunks = await collect(upstream, target(fake), Operation.CHAT, chat("[fake:zero_usage]"))
    assert chunks[-2].usage_only and chunks[-2].usage == UpstreamUsage(0, 0, 0)
