"""Bulk get-or-create of end users: the single-user guarantee, for a batch's users at once."""

from __future__ import annotations

import asyncio
import random

from sqlalchemy import func, select

from meterline.adapters.db import tables as t
from meterline.domain.entities import Environment, UserKey
from meterline.domain.plans import RatePlan

LIVE, TEST = Environment.LIVE, Environment.TEST


async def _rows(db) -> int:
    async with db.engine.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(t.end_users))).scalar()


async def test_creates_the_missing_and_reads_the_existing(db, accounts, project):
    plan = await accounts.create_plan(project.id, RatePlan(id="", name="Free", is_default=True))
    old, _ = await accounts.get_or_create_end_user(UserKey(project.id, LIVE, "old"), None)
    keys = [UserKey(project.id, LIVE, name) for name in ("old", "new1", "new2", "new1")]
    found = await accounts.get_or_create_end_users(keys, plan.id)
    assert set(found) == set(keys)
    assert found[keys[0]] == (old, False)
    assert old.rate_plan_id is None  # an existing user keeps its plan
    for name in ("new1", "new2"):
        user, created = found[UserKey(project.id, LIVE, name)]
        assert created and user.rate_plan_id == plan.id and not user.blocked
        assert user.key == UserKey(project.id, LIVE, name)
        # the single-user path agrees: same row, not created again
        assert await accounts.get_or_create_end_user(user.key, None) == (user, False)
        assert await accounts.get_end_user(user.key) == user
    assert await _rows(db) == 3
    again = await accounts.get_or_create_end_users(keys, None)
    assert {k: v for k, v in again.items()} == {k: (u, False) for k, (u, _) in found.items()}


async def test_empty_batch(accounts, project):
    assert await accounts.get_or_create_end_users([], None) == {}


async def test_environments_are_separate_users(db, accounts, project):
    keys = [UserKey(project.id, LIVE, "u"), UserKey(project.id, TEST, "u")]
    found = await accounts.get_or_create_end_users(keys, None)
    assert all(created for _, created in found.values())
    assert found[keys[0]][0].environment is LIVE and found[keys[1]][0].environment is TEST
    assert await _rows(db) == 2


async def test_large_batch_spans_several_statements(db, accounts, project):
    """More keys than one chunk (the bind-parameter limit), half of them existing."""
    keys = [UserKey(project.id, LIVE, f"user_{i:05d}") for i in range(1_234)]
    first = await accounts.get_or_create_end_users(keys[::2], None)
    assert all(created for _, created in first.values())
    found = await accounts.get_or_create_end_users(keys, None)
    assert len(found) == len(keys)
    assert sum(created for _, created in found.values()) == len(keys) // 2
    assert all(found[k] == (first[k][0], False) for k in keys[::2])
    assert await _rows(db) == len(keys)


async def test_concurrent_overlapping_batches_create_each_user_once(db, accounts, project):
    """Batches racing on the same new users (in different orders, plus single-user calls):
    every user exists once, exactly one caller saw it created, and all agree on the row."""
    plan = await accounts.create_plan(project.id, RatePlan(id="", name="Free", is_default=True))
    names = [f"u{i:03d}" for i in range(300)]
    rng = random.Random(7)
    batches = []
    for _ in range(8):
        picked = rng.sample(names, 200)
        batches.append([UserKey(project.id, LIVE, n) for n in picked])
    singles = [UserKey(project.id, LIVE, n) for n in rng.sample(names, 20)]
    results = await asyncio.gather(
        *(accounts.get_or_create_end_users(b, plan.id) for b in batches),
        *(accounts.get_or_create_end_user(k, plan.id) for k in singles),
    )
    seen: dict[UserKey, list[tuple[object, bool]]] = {}
    for result in results[: len(batches)]:
        for key, pair in result.items():
            seen.setdefault(key, []).append(pair)
    for key, pair in zip(singles, results[len(batches) :], strict=True):
        seen.setdefault(key, []).append(pair)
    touched = {k for b in batches for k in b} | set(singles)
    assert set(seen) == touched
    for key, pairs in seen.items():
        assert sum(created for _, created in pairs) == 1, key
        assert len({user for user, _ in pairs}) == 1, key
    assert await _rows(db) == len(touched)
