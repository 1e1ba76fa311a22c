"""The official anthropic SDK through the gateway, and Claude models via the openai SDK."""

from __future__ import annotations

import anthropic
import openai
import pytest


def client(gateway) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=gateway.url, api_key=gateway.live_key, max_retries=0)


MODEL = "claude-3-5-sonnet-latest"


async def test_messages_non_stream(gateway, fake):
    message = await client(gateway).messages.create(
        model=MODEL,
        max_tokens=100,
        messages=[{"role": "user", "content": "hello claude"}],
        metadata={"user_id": "a1"},
    )
    assert message.content[0].text.startswith("Fake reply")
    forwarded = [r for r in fake.requests if r.path == "/v1/messages"][-1]
    assert forwarded.headers["x-api-key"] == "sk-fake-anthropic"  # the provider key, not ours
    rows = await gateway.ledger()
    assert len(rows) == 1
    row = rows[0]
    assert row["provider"] == "anthropic" and row["end_user_id"] == "a1"
    assert (row["prompt_tokens"], row["completion_tokens"]) == (
        message.usage.input_tokens,
        message.usage.output_tokens,
    )
    assert row["priced"] is True and row["provider_cost"] > 0


async def test_messages_stream(gateway):
    async with client(gateway).messages.stream(
        model=MODEL,
        max_tokens=100,
        messages=[{"role": "user", "content": "stream please"}],
        metadata={"user_id": "a2"},
    ) as stream:
        text = "".join([t async for t in stream.text_stream])
        final = await stream.get_final_message()
    assert text.startswith("Fake reply")
    rows = await gateway.ledger()
    assert len(rows) == 1 and rows[0]["estimated"] is False
    assert rows[0]["prompt_tokens"] == final.usage.input_tokens
    assert rows[0]["completion_tokens"] == final.usage.output_tokens


async def test_rate_limit_reaches_the_anthropic_sdk_as_its_own_error(gateway):
    import httpx

    async with httpx.AsyncClient(base_url=gateway.url) as c:
        r = await c.post(
            "/api/v1/billing/rate-plans",
            json={"name": "One", "is_default": True, "daily_request_limit": 1},
            headers={"Authorization": f"Bearer {gateway.live_key}"},
        )
        assert r.status_code == 201
    c = client(gateway)
    await c.messages.create(
        model=MODEL,
        max_tokens=10,
        metadata={"user_id": "lim"},
        messages=[{"role": "user", "content": "1"}],
    )
    with pytest.raises(anthropic.RateLimitError) as exc:
        await c.messages.create(
            model=MODEL,
            max_tokens=10,
            metadata={"user_id": "lim"},
            messages=[{"role": "user", "content": "2"}],
        )
    assert "daily_request_limit_exceeded" in str(exc.value)
    assert int(exc.value.response.headers["retry-after"]) >= 1


async def test_claude_through_the_openai_sdk_is_translated(gateway):
    oa = openai.AsyncOpenAI(base_url=gateway.openai_url, api_key=gateway.live_key)
    completion = await oa.chat.completions.create(
        model=MODEL,
        messages=[
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hi from openai"},
        ],
        user="x1",
    )
    assert completion.choices[0].message.content.startswith("Fake reply")
    stream = await oa.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "stream"}], user="x1", stream=True
    )
    chunks = [c async for c in stream]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    rows = await gateway.ledger()
    assert [r["provider"] for r in rows] == ["anthropic", "anthropic"]
    assert rows[0]["prompt_tokens"] == completion.usage.prompt_tokens
