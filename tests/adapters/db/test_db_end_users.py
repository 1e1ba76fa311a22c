"""End users: atomic first sight, environment isolation, updates, search and pages."""

from __future__ import annotations

import asyncio
from datetime import UTC

import pytest
from sqlalchemy import func, select

from meterline.adapters.db import tables as t
from meterline.domain.entities import Environment, UserKey
from meterline.domain.plans import RatePlan
from meterline.ports import NotFound

LIVE, TEST = Environment.LIVE, Environment.TEST


async def test_get_or_create_is_atomic_under_50_tasks(db, accounts, project):
    plan = await accounts.create_plan(project.id, RatePlan(id="", name="Free", is_default=True))
    key = UserKey(project.id, LIVE, "user_123")
    results = await asyncio.gather(
        *(accounts.get_or_create_end_user(key, plan.id) for _ in range(50))
    )
    assert sum(created for _, created in results) == 1
    assert {user for user, _ in results} == {results[0][0]}
    user = results[0][0]
    assert user.rate_plan_id == plan.id and not user.blocked
    assert user.created_at.tzinfo is UTC
    async with db.engine.connect() as conn:
        rows = (await conn.execute(select(func.count()).select_from(t.end_users))).scalar()
    assert rows == 1
    again, created = await accounts.get_or_create_end_user(key, None)
    assert not created and again == user


async def test_environments_are_isolated(accounts, project):
    live, created_live = await accounts.get_or_create_end_user(
        UserKey(project.id, LIVE, "u1"), None
    )
    test, created_test = await accounts.get_or_create_end_user(
        UserKey(project.id, TEST, "u1"), None
    )
    assert created_live and created_test
    assert live.environment is LIVE and test.environment is TEST
    await accounts.update_end_user(test.key, blocked=True)
    assert not (await accounts.get_end_user(live.key)).blocked
    assert (await accounts.get_end_user(test.key)).blocked
    assert [u.end_user_id for u in (await accounts.list_end_users(project.id, LIVE)).items] == [
        "u1"
    ]


async def test_update_end_user(accounts, project):
    plan = await accounts.create_plan(project.id, RatePlan(id="", name="Pro"))
    key = UserKey(project.id, LIVE, "u1")
    assert await accounts.get_end_user(key) is None
    with pytest.raises(NotFound):
        await accounts.update_end_user(key, blocked=True)
    await accounts.get_or_create_end_user(key, None)
    user = await accounts.update_end_user(
        key,
        rate_plan_id=plan.id,
        blocked=True,
        email="a@b.co",
        name="Ada",
        stripe_customer_id="cus_123",
    )
    assert (user.rate_plan_id, user.blocked, user.email, user.name, user.stripe_customer_id) == (
        plan.id,
        True,
        "a@b.co",
        "Ada",
        "cus_123",
    )
    assert await accounts.get_end_user(key) == user
    user = await accounts.update_end_user(key, blocked=False, email=None)
    assert not user.blocked and user.email is None and user.name == "Ada"
    with pytest.raises(TypeError):
        await accounts.update_end_user(key, project_id="proj_other")


async def _seed_users(accounts, project):
    pro = await accounts.create_plan(project.id, RatePlan(id="", name="Pro"))
    specs = [
        ("alice", "alice@example.com", "Alice Liddell", pro.id, False),
        ("bob", "BOB@corp.io", "Bob", None, True),
        ("carol", None, "Carol 100%_sure", pro.id, True),
        ("dave_corp", "dave@example.com", None, None, False),
        ("erin", None, None, None, False),
    ]
    for uid, email, name, plan_id, blocked in specs:
        key = UserKey(project.id, LIVE, uid)
        await accounts.get_or_create_end_user(key, plan_id)
        await accounts.update_end_user(key, email=email, name=name, blocked=blocked)
    await accounts.get_or_create_end_user(UserKey(project.id, TEST, "alice"), None)
    return pro


async def test_search_and_filters(accounts, project):
    pro = await _seed_users(accounts, project)

    async def ids(**kwargs):
        page = await accounts.list_end_users(project.id, LIVE, **kwargs)
        return [u.end_user_id for u in page.items]

    assert await ids() == ["alice", "bob", "carol", "dave_corp", "erin"]
    assert await ids(search="EXAMPLE") == ["alice", "dave_corp"]
    assert await ids(search="corp") == ["bob", "dave_corp"]
    assert await ids(search="liddell") == ["alice"]
    assert await ids(search="100%_") == ["carol"]  # LIKE wildcards are literal
    assert await ids(search="%") == ["carol"]
    assert await ids(search="_") == ["carol", "dave_corp"]
    assert await ids(rate_plan_id=pro.id) == ["alice", "carol"]
    assert await ids(blocked=True) == ["bob", "carol"]
    assert await ids(blocked=False) == ["alice", "dave_corp", "erin"]
    assert await ids(blocked=True, rate_plan_id=pro.id, search="car") == ["carol"]
    assert await ids(search="nobody") == []


async def test_keyset_pagination(accounts, project):
    for i in range(23):
        await accounts.get_or_create_end_user(UserKey(project.id, LIVE, f"user_{i:03d}"), None)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = await accounts.list_end_users(project.id, LIVE, cursor=cursor, limit=10)
        seen += [u.end_user_id for u in page.items]
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break
        assert "user_" not in cursor  # opaque
    assert pages == 3
    assert seen == [f"user_{i:03d}" for i in range(23)]
    exact = await accounts.list_end_users(project.id, LIVE, limit=23)
    assert len(exact.items) == 23 and exact.next_cursor is None
    with pytest.raises(ValueError):
        await accounts.list_end_users(project.id, LIVE, cursor="!!!not-base64")
