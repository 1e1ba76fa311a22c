"""Authorization matrix: every ``/api/v1/**`` and ``/v1/**`` route of ``app.routes`` ×
(no key, malformed key, revoked key, another project's keys, the other environment's
key). Bad keys get 401; nobody reads or changes data of another project or environment.
Also: keys are stored only as hashes, provider secrets only encrypted."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from reliability_support import EVENTS, App
from sqlalchemy import select

from meterline.adapters.db.tables import metadata
from meterline.domain.entities import Environment
from meterline.services.bootstrap import create_key

#: Routes that take no project key by design (Stripe signs them; covered by Stripe tests).
KEYLESS = {"/api/v1/stripe/webhook", "/api/v1/stripe/callback"}
#: Path parameters that name a record of one project and environment.
OWNED = {"plan_id", "end_user_id", "invoice_id"}
#: Routes whose records belong to the project as a whole (shared by live and test).
PROJECT_LEVEL = re.compile(r"/rate-plans|/providers|/config|/prices|/stripe/")
LIVE_USER, TEST_USER = "alice-sentinel-live", "tess-sentinel-test"
LIVE_COST, TEST_COST = "123.456789", "98.7654321"
A_URL = "http://sentinel-a.invalid/v1"


def api_routes(app: Any) -> list[tuple[str, str]]:
    """(method, path) of every API route, through included routers too."""
    out = []
    for route in app.routes:
        contexts = getattr(route, "effective_route_contexts", None)
        for r in contexts() if contexts else [route]:
            methods = getattr(getattr(r, "route", r), "methods", None) or ()
            if r.path.startswith(("/api/v1/", "/v1/")):
                out += [(m, r.path) for m in sorted(methods) if m != "HEAD"]
    return out


def _fill(path: str, ids: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)(?::path)?\}", lambda m: ids.get(m.group(1), "gpt-4o"), path)


def _body(path: str) -> dict[str, Any]:
    if path.startswith("/v1/"):
        return {"model": "gpt-4o", "input": "hi", "max_tokens": 5,
                "messages": [{"role": "user", "content": "hi"}]}  # fmt: skip
    return {"blocked": True, "name": "hijacked", "end_user_id": "probe", "api_key": "sk-x1234567",
            "period_start": "2026-11-01", "period_end": "2026-11-30"}  # fmt: skip


async def _seed(a: App) -> dict[str, str]:
    """A's live and test data, with sentinels that must never show up elsewhere."""
    h = a.auth()
    plan = await a.client.post(
        "/api/v1/billing/rate-plans", json={"name": "Plan Sentinel A"}, headers=h
    )
    assert plan.status_code == 201, plan.text
    for env, user, cost in (("live", LIVE_USER, LIVE_COST), ("test", TEST_USER, TEST_COST)):
        event = {"end_user_id": user, "event_id": f"evt-{user}", "model": "gpt-4o",
                 "prompt_tokens": 7, "completion_tokens": 7, "cost_usd": cost}  # fmt: skip
        r = await a.client.post(EVENTS, json=event, headers=a.auth(env))
        assert r.status_code == 200 and r.json()["recorded"] == 1, r.text
    r = await a.client.put(
        "/api/v1/providers/groq", json={"api_key": "sk-sentinel-a-123456",
                           "base_url": A_URL}, headers=h)  # fmt: skip
    assert r.status_code == 200, r.text
    ids = {"plan_id": plan.json()["id"], "end_user_id": LIVE_USER, "provider": "groq"}
    now = datetime.now(UTC)
    period = {"period_start": now.replace(day=1).date().isoformat(),
              "period_end": now.date().isoformat()}  # fmt: skip
    for env, name in (("live", "invoice_id"), ("test", "test_invoice_id")):
        inv = await a.client.post("/api/v1/billing/invoices", json=period, headers=a.auth(env))
        found = re.search(r'"id"\s*:\s*"(in[^"]+)"', inv.text) if inv.status_code < 300 else None
        ids[name] = found.group(1) if found else f"in_missing_{env}"
    return ids


async def test_authorization_matrix_has_no_leak(app: App):
    a = app
    ids = await _seed(a)
    accounts = a.container.accounts
    org_b = await accounts.create_organization("B")
    project_b = await accounts.create_project(org_b, "B")
    b_live = (await create_key(accounts, project_b.id, Environment.LIVE)).plaintext
    b_test = (await create_key(accounts, project_b.id, Environment.TEST)).plaintext
    revoked = await create_key(accounts, a.project_id, Environment.LIVE)
    key_id = next(
        k.id for k in await accounts.list_api_keys(a.project_id) if k.prefix == revoked.prefix
    )
    await accounts.revoke_api_key(a.project_id, key_id)
    a.container.auth.invalidate_keys()

    routes = api_routes(a.client._transport.app)  # type: ignore[attr-defined]
    assert len(routes) >= 30, routes
    live_secrets = [LIVE_USER, LIVE_COST, "evt-" + LIVE_USER, ids["invoice_id"]]
    foreign_secrets = [
        *live_secrets,
        TEST_USER,
        TEST_COST,
        "Plan Sentinel A",
        A_URL,
        ids["plan_id"],
    ]
    bad_keys = {"none": None, "malformed": "mk_live_not-a-real-key", "garbage": "Bearer-ish x",
                "revoked": revoked.plaintext, "wrong-prefix": "sk-" + a.live_key[8:]}  # fmt: skip
    # (probe name, key, data it must never see, may it write project-level records?)
    probes = [("project B live", b_live, foreign_secrets, True),
              ("project B test", b_test, foreign_secrets, True),
              ("A test key on live data", a.test_key, live_secrets, False),
              ("A live key on test data", a.live_key, [TEST_USER, TEST_COST], False)]  # fmt: skip
    failures: list[str] = []
    checked = 0
    for method, path in routes:
        url = _fill(path, ids)
        body = _body(path) if method in ("POST", "PUT", "PATCH") else None
        if path not in KEYLESS:
            for name, key in bad_keys.items():
                headers = {"Authorization": f"Bearer {key}"} if key else {}
                r = await a.client.request(method, url, json=body, headers=headers)
                checked += 1
                if r.status_code != 401:
                    failures.append(f"{name}: {method} {path} -> {r.status_code}")
        for name, key, secrets, may_write in probes:
            owned = [p for p in OWNED if "{" + p in path]
            if name.startswith("A live") and owned:
                test_ids = {"end_user_id": TEST_USER, "invoice_id": ids["test_invoice_id"]}
                url_probe = _fill(path, {**ids, **test_ids})
            else:
                url_probe = url
            if method != "GET" and PROJECT_LEVEL.search(path) and not may_write:
                continue  # the project's own shared records: writing them is allowed
            if name.startswith("A") and "plan_id" in owned:
                continue  # plans are shared by both environments of a project
            r = await a.client.request(
                method, url_probe, json=body, headers={"Authorization": f"Bearer {key}"}
            )
            checked += 1
            if r.status_code >= 500:
                failures.append(f"{name}: {method} {path} -> {r.status_code} {r.text[:200]}")
            elif (
                owned
                and r.status_code < 300
                and not (name.startswith("A") and owned == ["plan_id"])
            ):
                failures.append(f"{name}: {method} {path} reached a record -> {r.status_code}")
            elif r.status_code < 300:
                leaked = [s for s in secrets if s in r.text]
                if leaked:
                    failures.append(f"{name}: {method} {path} leaked {leaked}")
    assert not failures, "\n".join(failures)
    assert checked > 300

    # Nothing of A changed under the probes.
    plan = await a.client.get(f"/api/v1/billing/rate-plans/{ids['plan_id']}", headers=a.auth())
    assert plan.status_code == 200 and plan.json()["name"] == "Plan Sentinel A"
    alice = await a.client.get(f"/api/v1/billing/end-users/{LIVE_USER}", headers=a.auth())
    assert alice.status_code == 200 and alice.json()["blocked"] is False
    creds = (await a.client.get("/api/v1/providers", headers=a.auth())).json()["data"]
    assert any(c.get("base_url") == A_URL for c in creds)
    for env, user in (("live", LIVE_USER), ("test", TEST_USER)):
        rows = {r["event_id"]: r for r in await a.ledger(env)}
        assert rows[f"evt-{user}"]["end_user_id"] == user  # the seeded usage is intact


async def test_keys_hashed_and_provider_secrets_encrypted_at_rest(app: App):
    secret = "sk-proj-RAWSECRETabcdef0123456789"
    r = await app.client.put(
        "/api/v1/providers/anthropic", json={"api_key": secret}, headers=app.auth()
    )
    assert r.status_code == 200 and secret not in r.text
    dump: list[str] = []
    async with app.container.engine.connect() as conn:
        for table in metadata.sorted_tables:  # every table, not just the obvious ones
            rows = (await conn.execute(select(table))).all()
            dump += [repr(tuple(row)) for row in rows]
    raw = "\n".join(dump)
    assert app.live_key[:12] in raw or "mk_live" in raw  # the prefix is kept, for display
    for plaintext in (app.live_key, app.test_key, secret, secret[8:24], app.live_key[-16:]):
        assert plaintext not in raw
