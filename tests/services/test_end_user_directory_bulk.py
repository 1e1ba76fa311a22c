"""EndUserDirectory.get_or_create_many: one store call per batch, cache semantics kept."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from meterline.domain.entities import EndUser, Environment, UserKey
from meterline.domain.plans import RatePlan
from meterline.services.end_users import EndUserDirectory
from meterline.services.plans import PlanResolver

LIVE = Environment.LIVE
NOW = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class FakeAccounts:
    """The end-user part of ``ports.Accounts``, in memory, counting store calls."""

    users: dict[UserKey, EndUser] = field(default_factory=dict)
    bulk_calls: list[list[UserKey]] = field(default_factory=list)
    single_reads: int = 0
    gate: asyncio.Event | None = None

    async def list_plans(self, project_id: str) -> list[RatePlan]:
        return [RatePlan(id="plan_free", name="Free", is_default=True)]

    async def get_end_user(self, key: UserKey) -> EndUser | None:
        self.single_reads += 1
        return self.users.get(key)

    async def get_or_create_end_user(
        self, key: UserKey, default_plan_id: str | None
    ) -> tuple[EndUser, bool]:
        found = await self.get_or_create_end_users([key], default_plan_id)
        return found[key]

    async def get_or_create_end_users(
        self, keys: Sequence[UserKey], default_plan_id: str | None
    ) -> dict[UserKey, tuple[EndUser, bool]]:
        self.bulk_calls.append(list(keys))
        read = {key: self.users[key] for key in keys if key in self.users}
        if self.gate is not None:  # the read above, answered after a pause
            await self.gate.wait()
        out: dict[UserKey, tuple[EndUser, bool]] = {}
        for key in keys:
            if key in read:
                out[key] = (read[key], False)
            else:
                user = EndUser(
                    key.project_id,
                    key.environment,
                    key.end_user_id,
                    default_plan_id,
                    created_at=NOW,
                )
                self.users[key] = user
                out[key] = (user, True)
        return out


def directory(accounts: FakeAccounts) -> EndUserDirectory:
    plans = PlanResolver(accounts, cache_ttl_seconds=60)  # type: ignore[arg-type]
    return EndUserDirectory(accounts, plans, cache_ttl_seconds=60)  # type: ignore[arg-type]


def keys(*names: str) -> list[UserKey]:
    return [UserKey("p", LIVE, n) for n in names]


async def test_one_store_call_for_the_batch_then_served_from_the_cache() -> None:
    accounts = FakeAccounts()
    users = directory(accounts)
    first = await users.get_or_create_many(keys("a", "b", "a", "c"))
    assert set(first) == set(keys("a", "b", "c"))
    assert all(u.rate_plan_id == "plan_free" for u in first.values())  # the default plan
    assert len(accounts.bulk_calls) == 1 and len(accounts.bulk_calls[0]) == 3
    again = await users.get_or_create_many(keys("a", "b", "c"))
    assert again == first and len(accounts.bulk_calls) == 1
    # the single-user path sees the same cached users
    assert await users.get_or_create(keys("b")[0]) == (first[keys("b")[0]], False)
    assert accounts.single_reads == 0


async def test_only_uncached_users_go_to_the_store() -> None:
    accounts = FakeAccounts()
    users = directory(accounts)
    await users.get_or_create_many(keys("a"))
    await users.get_or_create_many(keys("a", "b"))
    assert accounts.bulk_calls[-1] == keys("b")


async def test_a_change_is_seen_by_the_next_batch() -> None:
    accounts = FakeAccounts()
    users = directory(accounts)
    key = keys("a")[0]
    await users.get_or_create_many([key])
    accounts.users[key] = replace(accounts.users[key], blocked=True)
    await users.changed(key)
    assert (await users.get_or_create_many([key]))[key].blocked


async def test_an_invalidation_during_the_load_is_not_undone() -> None:
    """A block landing while the batch reads must not be hidden by a stale cached copy."""
    accounts = FakeAccounts(users={keys("a")[0]: EndUser("p", LIVE, "a", None, created_at=NOW)})
    accounts.gate = asyncio.Event()
    users = directory(accounts)
    key = keys("a")[0]
    loading = asyncio.create_task(users.get_or_create_many([key]))
    await asyncio.sleep(0.01)
    accounts.users[key] = replace(accounts.users[key], blocked=True)
    await users.changed(key)
    accounts.gate.set()
    assert not (await loading)[key].blocked  # read before the write: returned, not cached
    assert (await users.get_or_create_many([key]))[key].blocked
