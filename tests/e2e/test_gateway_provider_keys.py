"""Per-project provider keys: encrypted at rest, masked when shown, used by the gateway."""

from __future__ import annotations

import httpx
import openai
from sqlalchemy import select

from meterline.adapters.db.tables import provider_credentials


async def test_project_key_is_used_encrypted_and_masked(gateway, fake):
    secret = "sk-project-own-0123456789abcdef"
    headers = {"Authorization": f"Bearer {gateway.live_key}"}
    async with httpx.AsyncClient(base_url=gateway.url, headers=headers) as c:
        r = await c.put("/api/v1/providers/openai", json={"api_key": secret})
        assert r.status_code == 200, r.text
        assert secret not in r.text and r.json()["api_key"].endswith("cdef")
        listed = (await c.get("/api/v1/providers")).json()["data"]
        assert [p["provider"] for p in listed] == ["openai"] and secret not in str(listed)
        assert (await c.put("/api/v1/providers/nope", json={"api_key": "x"})).status_code == 422
        bad_url = await c.put(
            "/api/v1/providers/openai", json={"api_key": "k", "base_url": "ftp://x"}
        )
        assert bad_url.status_code == 422

    async with gateway.container.engine.connect() as conn:
        stored = (await conn.execute(select(provider_credentials))).mappings().all()
    assert len(stored) == 1 and secret not in str(dict(stored[0]))

    client = openai.AsyncOpenAI(base_url=gateway.openai_url, api_key=gateway.live_key)
    await client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "hi"}]
    )
    forwarded = fake.requests_to("/v1/chat/completions")[-1]
    assert forwarded.headers["authorization"] == f"Bearer {secret}"

    async with httpx.AsyncClient(base_url=gateway.url, headers=headers) as c:
        assert (await c.delete("/api/v1/providers/openai")).status_code == 204
        assert (await c.delete("/api/v1/providers/openai")).status_code == 404
    await client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "hi"}]
    )
    forwarded = fake.requests_to("/v1/chat/completions")[-1]
    assert forwarded.headers["authorization"] == "Bearer sk-fake-openai"


async def test_models_lists_what_the_plan_allows(gateway):
    headers = {"Authorization": f"Bearer {gateway.live_key}"}
    async with httpx.AsyncClient(base_url=gateway.url, headers=headers) as c:
        r = await c.post(
            "/api/v1/billing/rate-plans",
            json={"name": "Narrow", "is_default": True, "allowed_models": ["gpt-4o", "claude-*"]},
        )
        assert r.status_code == 201
    client = openai.AsyncOpenAI(base_url=gateway.openai_url, api_key=gateway.live_key)
    models = [m.id async for m in client.models.list()]
    assert models == ["gpt-4o"]


async def test_tools_pass_through_and_come_back(gateway):
    client = openai.AsyncOpenAI(base_url=gateway.openai_url, api_key=gateway.live_key)
    tools = [
        {
            "type": "function",
            "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}},
        }
    ]
    for model in ("gpt-4o", "claude-3-5-sonnet-latest"):
        out = await client.chat.completions.create(
            model=model,
            tools=tools,
            user="tool-user",
            messages=[{"role": "user", "content": "[fake:tool] weather?"}],
        )
        call = out.choices[0].message.tool_calls[0]
        assert call.function.name == "get_weather"
        assert out.choices[0].finish_reason == "tool_calls"
    assert len(await gateway.ledger()) == 2
