"""The official openai SDK, unchanged but for base_url, through the gateway."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import openai
import pytest
from genai_prices import Usage, calc_price

from meterline.domain.money import quantize_nano

PLANS = "/api/v1/billing/rate-plans"


async def set_default_plan(gateway, **fields) -> dict:
    async with httpx.AsyncClient(base_url=gateway.url) as c:
        r = await c.post(
            PLANS,
            json={"name": "Plan", "is_default": True, **fields},
            headers={"Authorization": f"Bearer {gateway.live_key}"},
        )
        assert r.status_code == 201, r.text
        return r.json()


def expected_charge(model: str, prompt: int, completion: int, markup: str, fee: str):
    cost = calc_price(
        Usage(input_tokens=prompt, output_tokens=completion), model, provider_id="openai"
    ).total_price
    return cost, quantize_nano(cost * (1 + Decimal(markup) / 100) + Decimal(fee))


def sync_client(gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.openai_url, api_key=gateway.live_key, max_retries=0)


def async_client(gateway, key: str | None = None) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        base_url=gateway.openai_url, api_key=key or gateway.live_key, max_retries=0
    )


async def test_sync_chat_is_metered_with_price_markup_and_fee(gateway):
    await set_default_plan(gateway, markup_percentage="10", flat_rate_per_request="0.001")

    def call():
        return sync_client(gateway).chat.completions.with_raw_response.create(
            model="gpt-4o", messages=[{"role": "user", "content": "hello there"}], user="u1"
        )

    raw = await asyncio.to_thread(call)
    completion = raw.parse()
    assert completion.choices[0].message.content.startswith("Fake reply")
    assert raw.headers["x-meterline-request-id"].startswith("req_")
    rows = await gateway.ledger()
    assert len(rows) == 1
    row = rows[0]
    assert row["end_user_id"] == "u1" and row["event_id"] == raw.headers["x-meterline-request-id"]
    assert (row["prompt_tokens"], row["completion_tokens"]) == (
        completion.usage.prompt_tokens,
        completion.usage.completion_tokens,
    )
    cost, charge = expected_charge(
        "gpt-4o", row["prompt_tokens"], row["completion_tokens"], "10", "0.001"
    )
    assert row["provider_cost"] == cost and row["charge"] == charge
    assert row["provider"] == "openai" and row["estimated"] is False


async def test_async_stream_strips_usage_chunk_unless_asked(gateway, fake):
    client = async_client(gateway)
    stream = await client.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "one two three"}],
        stream=True,
        user="s1",
    )
    chunks = [chunk async for chunk in stream]
    assert chunks and all(c.choices for c in chunks)  # no usage-only chunk reached us
    assert all(getattr(c, "usage", None) is None for c in chunks)
    forwarded = [r for r in fake.requests if r.path == "/v1/chat/completions"][-1]
    assert forwarded.body["stream_options"] == {"include_usage": True}
    rows = await gateway.ledger()
    assert len(rows) == 1 and rows[0]["estimated"] is False
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert rows[0]["completion_tokens"] == len(text.split())

    stream = await client.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "one two three"}],
        stream=True,
        stream_options={"include_usage": True},
        user="s1",
    )
    chunks = [chunk async for chunk in stream]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    rows = await gateway.ledger()
    assert len(rows) == 2
    assert rows[1]["prompt_tokens"] == chunks[-1].usage.prompt_tokens
    assert rows[1]["completion_tokens"] == chunks[-1].usage.completion_tokens


async def test_embeddings_and_responses(gateway):
    client = async_client(gateway)
    emb = await client.embeddings.create(
        model="text-embedding-3-small", input=["a b c", "d e"], user="e1"
    )
    assert len(emb.data) == 2
    resp = await client.responses.create(model="gpt-4o", input="tell me a story", user="e1")
    assert resp.output_text.startswith("Fake reply")
    stream = await client.responses.create(
        model="gpt-4o", input="stream it", user="e1", stream=True
    )
    events = [e async for e in stream]
    completed = next(e for e in events if e.type == "response.completed")
    rows = await gateway.ledger()
    assert [r["metadata"]["operation"] for r in rows] == ["embeddings", "responses", "responses"]
    assert rows[0]["prompt_tokens"] == emb.usage.prompt_tokens
    assert rows[1]["prompt_tokens"] == resp.usage.input_tokens
    assert rows[1]["completion_tokens"] == resp.usage.output_tokens
    assert rows[2]["completion_tokens"] == completed.response.usage.output_tokens
    assert all(r["end_user_id"] == "e1" and not r["estimated"] for r in rows)


async def test_no_user_is_metered_at_project_level(gateway):
    await async_client(gateway).chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "hi"}]
    )
    rows = await gateway.ledger()
    assert len(rows) == 1 and rows[0]["end_user_id"] is None


async def test_header_names_the_end_user(gateway):
    client = openai.AsyncOpenAI(
        base_url=gateway.openai_url,
        api_key=gateway.live_key,
        default_headers={"X-End-User-Id": "hdr-user"},
    )
    await client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "hi"}]
    )
    assert (await gateway.ledger())[0]["end_user_id"] == "hdr-user"


async def test_blocked_and_model_not_allowed_are_403(gateway):
    await set_default_plan(gateway, allowed_models=["gpt-4o"])
    client = async_client(gateway)
    with pytest.raises(openai.PermissionDeniedError) as exc:
        await client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}], user="b"
        )
    assert exc.value.body["code"] == "model_not_allowed"
    async with httpx.AsyncClient(base_url=gateway.url) as c:
        r = await c.patch(
            "/api/v1/billing/end-users/b",
            json={"blocked": True},
            headers={"Authorization": f"Bearer {gateway.live_key}"},
        )
        assert r.status_code == 200
    with pytest.raises(openai.PermissionDeniedError) as exc:
        await client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "x"}], user="b"
        )
    assert exc.value.body["code"] == "user_blocked"
    assert await gateway.ledger() == []


async def test_token_cap_gives_429_with_retry_after_until_midnight(gateway):
    await set_default_plan(gateway, daily_token_limit=5)
    client = async_client(gateway)
    await client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "use up tokens"}], user="t"
    )
    with pytest.raises(openai.RateLimitError) as exc:
        await client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "again"}], user="t"
        )
    assert exc.value.body["code"] == "daily_token_limit_exceeded"
    now = datetime.now(UTC)
    midnight = datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=1)
    retry = int(exc.value.response.headers["retry-after"])
    assert abs(retry - (midnight - now).total_seconds()) <= 2
    assert len(await gateway.ledger()) == 1


async def test_alert_only_plan_goes_through_and_alerts(gateway):
    await set_default_plan(gateway, daily_token_limit=5, overage_action="alert_only")
    client = async_client(gateway)
    for _ in range(3):
        await client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "over and over"}], user="al"
        )
    assert len(await gateway.ledger()) == 3
    async with httpx.AsyncClient(base_url=gateway.url) as c:
        alerts = (
            await c.get(
                "/api/v1/billing/alerts", headers={"Authorization": f"Bearer {gateway.live_key}"}
            )
        ).json()
    assert [a["kind"] for a in alerts["data"] if a["end_user_id"] == "al"] == [
        "daily_token_limit_exceeded"
    ]


async def test_upstream_error_passes_through_unbilled_and_releases(gateway):
    await set_default_plan(gateway, daily_request_limit=1)
    client = async_client(gateway)
    with pytest.raises(openai.InternalServerError):
        await client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "[fake:status=500]"}], user="err"
        )
    assert await gateway.ledger() == []
    # The failed call's reservation was released: the one allowed request is still there.
    ok = await client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "fine"}], user="err"
    )
    assert ok.choices[0].message.content


async def test_client_dropping_a_stream_is_billed_the_upstreams_usage(gateway):
    client = async_client(gateway)
    stream = await client.chat.completions.create(
        model="gpt-4o",
        stream=True,
        user="drop",
        messages=[{"role": "user", "content": "[fake:words=40] [fake:slow=30] go"}],
    )
    seen = 0
    async for _chunk in stream:
        seen += 1
        if seen == 3:
            break
    await stream.close()
    for _ in range(100):
        rows = await gateway.ledger()
        if rows:
            break
        await asyncio.sleep(0.1)
    assert len(rows) == 1
    row = rows[0]
    assert row["estimated"] is False and row["status"] == "client_disconnected"
    assert row["completion_tokens"] == 42  # "Fake reply:" + 40 words, all generated


async def test_upstream_dying_mid_stream_is_billed_estimated(gateway):
    client = async_client(gateway)
    stream = await client.chat.completions.create(
        model="gpt-4o",
        stream=True,
        user="cut",
        messages=[{"role": "user", "content": "[fake:cut=3] [fake:words=20] go"}],
    )
    with pytest.raises(openai.APIError):
        async for _chunk in stream:
            pass
    rows = await gateway.ledger()
    assert len(rows) == 1
    assert rows[0]["estimated"] is True and rows[0]["status"] == "broken"
    assert rows[0]["completion_tokens"] > 0


async def test_test_key_never_touches_live(gateway):
    await set_default_plan(gateway, daily_request_limit=1)
    test_client = async_client(gateway, gateway.test_key)
    await test_client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "t"}], user="same"
    )
    assert await gateway.ledger("live") == []
    assert len(await gateway.ledger("test")) == 1
    live = await async_client(gateway).chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "l"}], user="same"
    )
    assert live.choices  # the live user's one request was untouched by test traffic


async def test_sync_stream_and_rate_limit_headers(gateway):
    await set_default_plan(gateway, daily_request_limit=10, daily_token_limit=1000)

    def call():
        client = sync_client(gateway)
        with client.chat.completions.with_streaming_response.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": "sync stream"}],
            stream=True,
            user="h1",
        ) as response:
            headers = dict(response.headers)
            text = "".join(
                chunk.choices[0].delta.content or "" for chunk in response.parse() if chunk.choices
            )
        return headers, text

    headers, text = await asyncio.to_thread(call)
    assert text.startswith("Fake reply")
    assert headers["x-ratelimit-limit-requests"] == "10"
    assert headers["x-ratelimit-remaining-requests"] == "9"
    assert headers["x-ratelimit-limit-tokens"] == "1000"
    assert int(headers["x-ratelimit-remaining-tokens"]) <= 1000
    assert headers["x-ratelimit-reset-requests"].endswith("s")
    assert len(await gateway.ledger()) == 1
