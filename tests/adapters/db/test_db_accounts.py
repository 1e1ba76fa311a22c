"""Accounts contract: bootstrap, keys, plans, alerts and price overrides."""

from __future__ import annotations

import asyncio
from datetime import UTC
from decimal import Decimal

import pytest

from meterline.domain.entities import AlertRecord, Environment, UserKey
from meterline.domain.plans import Limits, OverageAction, RatePlan
from meterline.ports import NotFound, PlanInUse, PriceOverride

LIVE, TEST = Environment.LIVE, Environment.TEST


async def test_bootstrap(accounts):
    assert await accounts.is_empty()
    assert await accounts.first_project() is None
    org = await accounts.create_organization("Acme")
    assert org.startswith("org_")
    admin = await accounts.create_admin_user(org, "Admin@Example.com", "$argon2id$v=19$x")
    assert admin.startswith("adm_")
    found = await accounts.admin_user_by_email("admin@example.COM")
    assert found == {
        "id": admin,
        "organization_id": org,
        "email": "admin@example.com",
        "password_hash": "$argon2id$v=19$x",
    }
    with pytest.raises(Exception):  # noqa: B017 - driver-specific IntegrityError
        await accounts.create_admin_user(org, "admin@example.com", "other")
    project = await accounts.create_project(org, "Acme AI")
    assert project.id.startswith("proj_")
    assert not await accounts.is_empty()
    assert await accounts.first_project() == project
    assert await accounts.get_project(project.id) == project
    assert await accounts.get_project("proj_missing") is None


async def test_update_project_keeps_decimals_exact(accounts, project):
    updated = await accounts.update_project(
        project.id,
        billing_enabled=False,
        default_markup_percentage=Decimal("12.3456789012345"),
        default_flat_rate_per_request=Decimal("0.000000001"),
        currency="eur",
        name="Renamed",
        model_map={"fast": "groq/llama-3.1-8b"},
    )
    assert updated.billing_enabled is False
    assert updated.default_markup_percentage == Decimal("12.3456789012345")
    assert updated.default_flat_rate_per_request == Decimal("0.000000001")
    assert updated.currency == "EUR"
    assert updated.name == "Renamed"
    assert updated.model_map == {"fast": "groq/llama-3.1-8b"}
    assert await accounts.get_project(project.id) == updated
    with pytest.raises(NotFound):
        await accounts.update_project("proj_missing", name="x")
    with pytest.raises(TypeError):
        await accounts.update_project(project.id, organization_id="org_x")


async def test_api_keys(accounts, project):
    live = await accounts.create_api_key(project.id, LIVE, "hash-live", "mk_live_ab")
    test = await accounts.create_api_key(project.id, TEST, "hash-test", "mk_test_cd")
    assert live.id.startswith("key_")
    assert await accounts.api_key_by_hash("hash-live") == live
    assert (await accounts.api_key_by_hash("hash-test")).environment is TEST
    assert await accounts.api_key_by_hash("nope") is None
    await accounts.revoke_api_key(project.id, live.id)
    await accounts.revoke_api_key(project.id, live.id)  # idempotent
    assert (await accounts.api_key_by_hash("hash-live")).revoked is True
    assert (await accounts.api_key_by_hash("hash-test")).revoked is False
    with pytest.raises(NotFound):
        await accounts.revoke_api_key(project.id, "key_missing")
    with pytest.raises(NotFound):
        await accounts.revoke_api_key("proj_other", test.id)


def _plan(name: str, **kwargs) -> RatePlan:
    return RatePlan(id="", name=name, slug=name.lower(), **kwargs)


async def test_plan_round_trip_every_field(accounts, project):
    plan = _plan(
        "Pro",
        is_default=True,
        overage_action=OverageAction.ALERT_ONLY,
        limits=Limits(
            daily_token_limit=100_000,
            monthly_token_limit=3_000_000,
            daily_request_limit=1000,
            monthly_request_limit=30_000,
            requests_per_minute=60,
            daily_cost_limit_usd=Decimal("1.234567891"),
            monthly_cost_limit_usd=Decimal("25"),
        ),
        markup_percentage=Decimal("33.333333333"),
        flat_rate_per_request=Decimal("0.0005"),
        allowed_models=("gpt-4o*", "anthropic/*"),
    )
    created = await accounts.create_plan(project.id, plan)
    assert created.id.startswith("plan_")
    assert created == plan.__class__(**{**_fields(plan), "id": created.id})
    assert await accounts.get_plan(project.id, created.id) == created
    assert await accounts.get_plan("proj_other", created.id) is None
    bare = await accounts.create_plan(project.id, _plan("Free"))
    got = await accounts.get_plan(project.id, bare.id)
    assert got.limits == Limits() and got.markup_percentage is None
    assert got.flat_rate_per_request is None and got.allowed_models == ()


def _fields(plan: RatePlan) -> dict:
    return {name: getattr(plan, name) for name in plan.__slots__}


async def test_single_default_plan(accounts, project):
    free = await accounts.create_plan(project.id, _plan("Free", is_default=True))
    assert (await accounts.default_plan(project.id)).id == free.id
    pro = await accounts.create_plan(project.id, _plan("Pro", is_default=True))
    assert (await accounts.default_plan(project.id)).id == pro.id
    assert [p.is_default for p in await accounts.list_plans(project.id)] == [False, True]
    free2 = await accounts.update_plan(project.id, _with(free, is_default=True, name="Free+"))
    assert free2.name == "Free+" and free2.is_default
    plans = {p.id: p for p in await accounts.list_plans(project.id)}
    assert plans[free.id].is_default and not plans[pro.id].is_default
    with pytest.raises(NotFound):
        await accounts.update_plan(project.id, _with(free, id="plan_missing"))


async def test_concurrent_default_changes_leave_one_default(accounts, project):
    await asyncio.gather(
        *(accounts.create_plan(project.id, _plan(f"P{i}", is_default=True)) for i in range(10))
    )
    defaults = [p for p in await accounts.list_plans(project.id) if p.is_default]
    assert len(defaults) == 1


def _with(plan: RatePlan, **changes) -> RatePlan:
    return RatePlan(**{**_fields(plan), **changes})


async def test_delete_plan(accounts, project):
    plan = await accounts.create_plan(project.id, _plan("Pro"))
    other = await accounts.create_plan(project.id, _plan("Other"))
    key = UserKey(project.id, TEST, "u1")
    await accounts.get_or_create_end_user(key, plan.id)
    with pytest.raises(PlanInUse):
        await accounts.delete_plan(project.id, plan.id)
    assert await accounts.plan_user_counts(project.id, TEST) == {plan.id: 1}
    assert await accounts.plan_user_counts(project.id, LIVE) == {}
    await accounts.update_end_user(key, rate_plan_id=other.id)
    await accounts.delete_plan(project.id, plan.id)
    assert await accounts.get_plan(project.id, plan.id) is None
    with pytest.raises(NotFound):
        await accounts.delete_plan(project.id, plan.id)
    with pytest.raises(NotFound):
        await accounts.delete_plan("proj_other", other.id)


async def test_alerts_once_per_window(accounts, project):
    alert = AlertRecord(project.id, LIVE, "daily_token_limit", "u1", "2025-01-02", "over")
    results = await asyncio.gather(*(accounts.record_alert(alert) for _ in range(10)))
    assert sorted(results) == [False] * 9 + [True]
    assert await accounts.record_alert(_alert(alert, window="2025-01-03"))
    assert await accounts.record_alert(_alert(alert, environment=TEST))
    assert await accounts.record_alert(_alert(alert, end_user_id=None))
    assert not await accounts.record_alert(_alert(alert, end_user_id=None))
    listed = await accounts.list_alerts(project.id, LIVE)
    assert len(listed) == 3
    assert all(a.id and a.created_at.tzinfo is UTC for a in listed)
    assert {a.end_user_id for a in listed} == {"u1", None}
    assert len(await accounts.list_alerts(project.id, LIVE, limit=1)) == 1
    assert len(await accounts.list_alerts(project.id, TEST)) == 1


def _alert(alert: AlertRecord, **changes) -> AlertRecord:
    return AlertRecord(**{**{n: getattr(alert, n) for n in alert.__slots__}, **changes})


async def test_price_overrides(accounts, project):
    assert await accounts.price_overrides(project.id) == []
    first = PriceOverride(
        model="my-model", input_per_mtok=Decimal("0.15"), output_per_mtok=Decimal("0.6")
    )
    await accounts.set_price_override(project.id, first)
    replaced = PriceOverride(
        model="my-model",
        input_per_mtok=Decimal("0.123456789012"),
        output_per_mtok=Decimal("7"),
        cached_input_per_mtok=Decimal("0.075"),
    )
    await accounts.set_price_override(project.id, replaced)
    scoped = PriceOverride(model="my-model", provider="openai", input_per_mtok=Decimal("1"))
    await accounts.set_price_override(project.id, scoped)
    assert await accounts.price_overrides(project.id) == [replaced, scoped]
