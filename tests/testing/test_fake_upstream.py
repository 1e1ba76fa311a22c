"""The fake upstream speaks OpenAI and Anthropic well enough for the official SDKs."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest

from meterline.testing.fake_upstream import (
    EMBEDDING_DIM,
    TOOL_COMPLETION_TOKENS,
    FakeUpstream,
    reply_text,
    running_fake_upstream,
)

REPLY = "Fake reply: alpha beta gamma delta epsilon zeta eta theta"
REPLY_TOKENS = 10
# What an SDK raises on a stream cut mid-body: some versions wrap the transport error.
BROKEN_STREAM: tuple[type[Exception], ...] = (
    anthropic.APIConnectionError,
    openai.APIConnectionError,
    httpx.TransportError,
)
try:
    import httpx2  # the HTTP client vendored by recent SDK versions

    BROKEN_STREAM += (httpx2.TransportError,)
except ImportError:  # pragma: no cover
    pass


@pytest.fixture(scope="module")
def server() -> Iterator[FakeUpstream]:
    with running_fake_upstream() as fake:
        yield fake


@pytest.fixture
def fake(server: FakeUpstream) -> FakeUpstream:
    server.clear()
    return server


@pytest.fixture
def oai(fake: FakeUpstream) -> openai.OpenAI:
    return openai.OpenAI(base_url=fake.openai_base_url, api_key="sk-test", max_retries=0)


@pytest.fixture
def aoai(fake: FakeUpstream) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=fake.openai_base_url, api_key="sk-test", max_retries=0)


@pytest.fixture
def ant(fake: FakeUpstream) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=fake.anthropic_base_url, api_key="ak-test", max_retries=0)


@pytest.fixture
def aant(fake: FakeUpstream) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(
        base_url=fake.anthropic_base_url, api_key="ak-test", max_retries=0
    )


def user(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


# --- OpenAI chat ----------------------------------------------------------------------------


def test_urls(fake: FakeUpstream) -> None:
    assert fake.url.startswith("http://127.0.0.1:") and not fake.url.endswith("/")
    assert fake.openai_base_url == fake.url + "/v1"
    assert fake.anthropic_base_url == fake.url
    assert reply_text(8) == REPLY


def test_chat_non_stream(oai: openai.OpenAI, fake: FakeUpstream) -> None:
    resp = oai.chat.completions.create(
        model="gpt-4o-mini",
        messages=[
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": [{"type": "text", "text": "hello there world"}]},
        ],
        user="alice",
    )
    assert resp.model == "gpt-4o-mini"
    assert resp.choices[0].message.content == REPLY
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage is not None
    assert (resp.usage.prompt_tokens, resp.usage.completion_tokens) == (6, REPLY_TOKENS)
    assert resp.usage.total_tokens == 6 + REPLY_TOKENS
    [rec] = fake.requests
    assert rec.path == "/v1/chat/completions"
    assert rec.headers["authorization"] == "Bearer sk-test"
    assert rec.body is not None and rec.body["user"] == "alice"


def test_chat_stream_without_usage(oai: openai.OpenAI) -> None:
    chunks = list(
        oai.chat.completions.create(model="m", messages=user("hi [fake:words=3]"), stream=True)
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(c.object == "chat.completion.chunk" and c.usage is None for c in chunks)
    assert all(c.choices for c in chunks)
    content = [c.choices[0].delta.content for c in chunks[1:] if c.choices[0].delta.content]
    assert content == ["Fake", " reply:", " alpha", " beta", " gamma"]
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_chat_stream_include_usage(oai: openai.OpenAI) -> None:
    chunks = list(
        oai.chat.completions.create(
            model="m",
            messages=user("one two three"),
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    *body, last = chunks
    assert all(c.usage is None and c.choices for c in body)
    assert last.choices == []
    assert last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (3, REPLY_TOKENS)
    text = "".join(c.choices[0].delta.content or "" for c in body)
    assert text == REPLY


async def test_chat_async(aoai: openai.AsyncOpenAI) -> None:
    resp = await aoai.chat.completions.create(model="m", messages=user("hi"))
    assert resp.choices[0].message.content == REPLY
    stream = await aoai.chat.completions.create(
        model="m", messages=user("hi"), stream=True, stream_options={"include_usage": True}
    )
    text, usage = "", None
    async for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
        usage = chunk.usage or usage
    assert text == REPLY
    assert usage is not None and usage.completion_tokens == REPLY_TOKENS


def test_chat_tool_call(oai: openai.OpenAI) -> None:
    resp = oai.chat.completions.create(
        model="m",
        messages=user("weather? [fake:tool]"),
        tools=[{"type": "function", "function": {"name": "get_weather", "parameters": {}}}],
    )
    choice = resp.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.type == "function"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    assert resp.usage is not None and resp.usage.completion_tokens == TOOL_COMPLETION_TOKENS

    chunks = list(oai.chat.completions.create(model="m", messages=user("[fake:tool]"), stream=True))
    calls = [tc for c in chunks for tc in (c.choices[0].delta.tool_calls or [])]
    assert calls[0].function is not None and calls[0].function.name == "get_weather"
    args = "".join((tc.function.arguments or "") for tc in calls if tc.function)
    assert json.loads(args) == {"city": "Paris"}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


# --- OpenAI embeddings, responses, models ------------------------------------------------------


def test_embeddings(oai: openai.OpenAI) -> None:
    resp = oai.embeddings.create(model="text-embedding-3-small", input="a b c")  # base64 default
    assert len(resp.data) == 1 and len(resp.data[0].embedding) == EMBEDDING_DIM
    assert resp.usage.prompt_tokens == 3 and resp.usage.total_tokens == 3
    floats = oai.embeddings.create(model="e", input=["one", "two words"], encoding_format="float")
    assert [d.index for d in floats.data] == [0, 1]
    assert floats.data[0].embedding == pytest.approx(resp.data[0].embedding, abs=1e-6)
    assert floats.usage.prompt_tokens == 3
    assert floats.model == "e"


def test_responses_non_stream(oai: openai.OpenAI) -> None:
    resp = oai.responses.create(
        model="gpt-4.1-mini", input="four words of input", instructions="Be brief"
    )
    assert resp.output_text == REPLY
    assert resp.model == "gpt-4.1-mini"
    assert resp.usage is not None
    assert resp.usage.input_tokens == 6
    assert resp.usage.output_tokens == REPLY_TOKENS
    assert resp.usage.total_tokens == 6 + REPLY_TOKENS
    assert resp.usage.input_tokens_details.cached_tokens == 0
    assert resp.usage.output_tokens_details.reasoning_tokens == 0
    listed = oai.responses.create(
        model="m", input=[{"role": "user", "content": "two words [fake:words=1]"}]
    )
    assert listed.output_text == "Fake reply: alpha"
    assert listed.usage is not None and listed.usage.input_tokens == 3


def test_responses_stream(oai: openai.OpenAI) -> None:
    events = list(oai.responses.create(model="m", input="hi [fake:cached=1]", stream=True))
    types = [e.type for e in events]
    assert types[0] == "response.created" and types[-1] == "response.completed"
    assert types.count("response.output_text.delta") == REPLY_TOKENS
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == REPLY
    done = events[-1]
    assert done.type == "response.completed"
    usage = done.response.usage
    assert usage is not None and usage.input_tokens == 2 and usage.output_tokens == REPLY_TOKENS
    assert usage.input_tokens_details.cached_tokens == 1

    with oai.responses.stream(model="m", input="hello [fake:reasoning=4]") as stream:
        text = "".join(e.delta for e in stream if e.type == "response.output_text.delta")
        final = stream.get_final_response()
    assert text == REPLY and final.output_text == REPLY
    assert final.usage is not None
    assert final.usage.output_tokens == REPLY_TOKENS + 4
    assert final.usage.output_tokens_details.reasoning_tokens == 4


def test_responses_tool(oai: openai.OpenAI) -> None:
    resp = oai.responses.create(model="m", input="[fake:tool]")
    [item] = resp.output
    assert item.type == "function_call" and item.name == "get_weather"
    with oai.responses.stream(model="m", input="[fake:tool]") as stream:
        final = stream.get_final_response()
    assert final.output[0].type == "function_call"


def test_models(oai: openai.OpenAI, ant: anthropic.Anthropic) -> None:
    ids = [m.id for m in oai.models.list()]
    assert "gpt-4o-mini" in ids
    assert "claude-sonnet-4-5" in [m.id for m in ant.models.list()]


# --- Anthropic ------------------------------------------------------------------------------


def test_anthropic_non_stream(ant: anthropic.Anthropic, fake: FakeUpstream) -> None:
    msg = ant.messages.create(
        model="claude-3-5-haiku-latest",
        max_tokens=100,
        system="Be nice",
        messages=[{"role": "user", "content": [{"type": "text", "text": "hello world"}]}],
    )
    assert msg.model == "claude-3-5-haiku-latest"
    assert msg.content[0].type == "text" and msg.content[0].text == REPLY
    assert msg.stop_reason == "end_turn"
    assert (msg.usage.input_tokens, msg.usage.output_tokens) == (4, REPLY_TOKENS)
    [rec] = fake.requests
    assert rec.path == "/v1/messages" and "anthropic-version" in rec.headers
    # Depending on the SDK version the key travels as x-api-key or as a bearer token.
    assert "ak-test" in rec.headers.get("x-api-key", rec.headers.get("authorization", ""))


def test_anthropic_stream(ant: anthropic.Anthropic) -> None:
    with ant.messages.stream(
        model="claude", max_tokens=100, messages=user("three words here [fake:words=4]")
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Fake reply: alpha beta gamma delta"
    assert final.usage.output_tokens == 6
    assert final.usage.input_tokens == 4
    assert final.stop_reason == "end_turn"


def test_anthropic_raw_stream_events(ant: anthropic.Anthropic) -> None:
    events = list(ant.messages.create(model="c", max_tokens=9, messages=user("hi"), stream=True))
    types = [e.type for e in events]  # the SDK drops ping events
    assert types[:2] == ["message_start", "content_block_start"]
    assert types[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert types.count("content_block_delta") == REPLY_TOKENS
    start, delta = events[0], events[-2]
    assert start.type == "message_start" and start.message.usage.output_tokens == 1
    assert start.message.usage.input_tokens == 1
    assert delta.type == "message_delta" and delta.usage.output_tokens == REPLY_TOKENS
    assert delta.delta.stop_reason == "end_turn"


def test_anthropic_wire_format(fake: FakeUpstream) -> None:
    body = {"model": "c", "max_tokens": 9, "stream": True, "messages": user("[fake:words=1]")}
    text = httpx.post(fake.url + "/v1/messages", json=body).text
    frames = text.split("\n\n")
    assert frames.pop() == ""
    names = []
    for frame in frames:
        event, data = frame.split("\n")
        assert event.startswith("event: ") and data.startswith("data: ")
        names.append(event.removeprefix("event: "))
        assert json.loads(data.removeprefix("data: "))["type"] == names[-1]
    assert names == [
        "message_start",
        "content_block_start",
        "ping",
        *["content_block_delta"] * 3,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]


async def test_anthropic_async(aant: anthropic.AsyncAnthropic) -> None:
    async with aant.messages.stream(model="c", max_tokens=9, messages=user("hi")) as stream:
        final = await stream.get_final_message()
    assert final.content[0].type == "text" and final.content[0].text == REPLY
    msg = await aant.messages.create(model="c", max_tokens=9, messages=user("[fake:tool]"))
    assert msg.stop_reason == "tool_use"
    assert msg.content[0].type == "tool_use" and msg.content[0].input == {"city": "Paris"}


def test_anthropic_tool_stream(ant: anthropic.Anthropic) -> None:
    with ant.messages.stream(model="c", max_tokens=9, messages=user("[fake:tool]")) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    block = final.content[0]
    assert block.type == "tool_use" and block.name == "get_weather"
    assert block.input == {"city": "Paris"}


# --- directives -----------------------------------------------------------------------------


def test_status_directive(oai: openai.OpenAI, ant: anthropic.Anthropic, fake: FakeUpstream) -> None:
    with pytest.raises(openai.RateLimitError) as oe:
        oai.chat.completions.create(model="m", messages=user("[fake:status=429]"))
    assert oe.value.code == "rate_limit_exceeded"
    with pytest.raises(anthropic.RateLimitError) as ae:
        ant.messages.create(model="c", max_tokens=5, messages=user("[fake:status=429]"))
    assert ae.value.body == {
        "type": "error",
        "error": {"type": "rate_limit_error", "message": "Fake upstream error 429 ([fake:status])"},
    }
    with pytest.raises(openai.InternalServerError):
        oai.chat.completions.create(model="m", messages=user("[fake:status=503]"), stream=True)
    with pytest.raises(anthropic.InternalServerError):
        ant.messages.create(
            model="c", max_tokens=5, messages=user("[fake:status=529]"), stream=True
        )
    with pytest.raises(openai.RateLimitError):
        oai.embeddings.create(model="e", input="[fake:status=429]")
    with pytest.raises(openai.AuthenticationError):
        oai.responses.create(model="m", input="[fake:status=401]")
    r = httpx.post(
        fake.openai_base_url + "/chat/completions",
        json={"model": "m", "messages": user("[fake:status=429] [fake:retry_after=7]")},
    )
    assert r.status_code == 429 and r.headers["retry-after"] == "7"
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"} and err["param"] is None


def test_cut_directive(oai: openai.OpenAI, ant: anthropic.Anthropic) -> None:
    got: list[str] = []
    with pytest.raises(openai.APIConnectionError):
        for chunk in oai.chat.completions.create(
            model="m",
            messages=user("[fake:cut=3]"),
            stream=True,
            stream_options={"include_usage": True},
        ):
            if chunk.choices and chunk.choices[0].delta.content:
                got.append(chunk.choices[0].delta.content)
    assert got == ["Fake", " reply:", " alpha"]

    texts: list[str] = []
    with pytest.raises(BROKEN_STREAM):
        with ant.messages.stream(model="c", max_tokens=9, messages=user("[fake:cut=3]")) as s:
            texts.extend(s.text_stream)
    assert texts == ["Fake", " reply:", " alpha"]

    events: list[str] = []
    with pytest.raises(openai.APIConnectionError):
        for event in oai.responses.create(model="m", input="[fake:cut=2]", stream=True):
            events.append(event.type)
    assert events.count("response.output_text.delta") == 2
    assert "response.completed" not in events


def test_no_usage_directive(
    oai: openai.OpenAI, ant: anthropic.Anthropic, fake: FakeUpstream
) -> None:
    resp = oai.chat.completions.create(model="m", messages=user("[fake:no_usage]"))
    assert resp.usage is None and resp.choices[0].message.content == REPLY
    chunks = list(
        oai.chat.completions.create(
            model="m",
            messages=user("[fake:no_usage]"),
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert all(c.choices and c.usage is None for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"
    resp2 = oai.responses.create(model="m", input="[fake:no_usage]")
    assert resp2.usage is None
    raw = httpx.post(
        fake.url + "/v1/messages",
        json={"model": "c", "max_tokens": 5, "messages": user("[fake:no_usage]")},
    ).json()
    assert "usage" not in raw
    events = list(
        ant.messages.create(model="c", max_tokens=5, messages=user("[fake:no_usage]"), stream=True)
    )
    delta = next(e for e in events if e.type == "message_delta")
    assert "usage" not in delta.model_dump(exclude_unset=True)
    assert events[-1].type == "message_stop"


def test_zero_usage_directive(oai: openai.OpenAI, ant: anthropic.Anthropic) -> None:
    resp = oai.chat.completions.create(model="m", messages=user("hi [fake:zero_usage]"))
    assert resp.usage is not None
    assert (resp.usage.prompt_tokens, resp.usage.completion_tokens, resp.usage.total_tokens) == (
        0,
        0,
        0,
    )
    with ant.messages.stream(model="c", max_tokens=5, messages=user("[fake:zero_usage]")) as s:
        final = s.get_final_message()
    assert (final.usage.input_tokens, final.usage.output_tokens) == (0, 0)


def test_cached_and_reasoning(oai: openai.OpenAI, ant: anthropic.Anthropic) -> None:
    resp = oai.chat.completions.create(
        model="m", messages=user("a b c d [fake:cached=2] [fake:reasoning=5]")
    )
    u = resp.usage
    assert u is not None and u.prompt_tokens == 6 and u.completion_tokens == REPLY_TOKENS + 5
    assert u.prompt_tokens_details is not None and u.prompt_tokens_details.cached_tokens == 2
    assert u.completion_tokens_details is not None
    assert u.completion_tokens_details.reasoning_tokens == 5
    msg = ant.messages.create(model="c", max_tokens=5, messages=user("a b c [fake:cached=2]"))
    assert (msg.usage.input_tokens, msg.usage.cache_read_input_tokens) == (2, 2)


def test_malformed_directive(oai: openai.OpenAI, fake: FakeUpstream) -> None:
    r = httpx.post(
        fake.openai_base_url + "/chat/completions", json={"messages": user("[fake:malformed]")}
    )
    assert r.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        r.json()
    with pytest.raises(json.JSONDecodeError):
        for _ in oai.chat.completions.create(
            model="m", messages=user("[fake:malformed]"), stream=True
        ):
            pass
    r2 = httpx.post(
        fake.url + "/v1/messages",
        json={"messages": user("[fake:malformed]"), "stream": True, "max_tokens": 5},
    )
    assert r2.status_code == 200 and "data: {this is not json" in r2.text


def test_slow_and_timeout_directives(oai: openai.OpenAI) -> None:
    t0 = time.monotonic()
    oai.chat.completions.create(model="m", messages=user("[fake:slow=100]"))
    assert time.monotonic() - t0 >= 0.1
    t0 = time.monotonic()
    list(
        oai.chat.completions.create(
            model="m", messages=user("[fake:slow=20] [fake:words=3]"), stream=True
        )
    )
    assert time.monotonic() - t0 >= 0.1  # 5 content chunks x 20 ms
    with pytest.raises(openai.APITimeoutError):
        oai.with_options(timeout=0.2).chat.completions.create(
            model="m", messages=user("[fake:timeout=1000]")
        )


def test_directive_only_from_last_user_message(oai: openai.OpenAI) -> None:
    resp = oai.chat.completions.create(
        model="m",
        messages=[
            {"role": "user", "content": "[fake:status=500]"},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": "fine [fake:words=2]"},
        ],
    )
    assert resp.choices[0].message.content == "Fake reply: alpha beta"
    assert resp.usage is not None and resp.usage.prompt_tokens == 4


def test_unknown_directive_is_a_400(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="stauts"):
        oai.chat.completions.create(model="m", messages=user("[fake:stauts=429]"))


def test_requests_are_recorded(fake: FakeUpstream, oai: openai.OpenAI) -> None:
    oai.models.list()
    httpx.post(fake.url + "/nope", content=b"not json")
    assert [(r.method, r.path) for r in fake.requests] == [("GET", "/v1/models"), ("POST", "/nope")]
    assert fake.requests[0].body is None and fake.requests[1].body is None
    assert fake.requests_to("/v1/models")[0].headers["authorization"] == "Bearer sk-test"
    fake.clear()
    assert len(fake.requests) == 0


def test_command_line_server() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "meterline.testing.fake_upstream", "--port", str(port), "--fast"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "fake upstream CLI did not start"
                time.sleep(0.05)
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="x", max_retries=0)
        assert (
            client.chat.completions.create(model="m", messages=user("hi"))
            .choices[0]
            .message.content
            == REPLY
        )
    finally:
        proc.terminate()
        proc.wait(10)
