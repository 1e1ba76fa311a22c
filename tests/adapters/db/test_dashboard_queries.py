"""The dashboard's end-user table in SQL, on SQLite and PostgreSQL: search, plan and
blocked filters, sorting, page totals, and the "over limit" filter (issue 6), whose
rule is the admission rule: the effective plan's day/month token, request and
provider-cost limits, reached when ``used >= limit``."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from meterline.adapters.db import tables as t
from meterline.adapters.db.dashboard_queries import SqlDashboardQueries
from meterline.domain.entities import Environment, UserKey
from meterline.domain.plans import Limits, RatePlan

LIVE, TEST = Environment.LIVE, Environment.TEST
TODAY = date(2026, 11, 15)
YESTERDAY = TODAY - timedelta(days=1)
LAST_MONTH = date(2026, 10, 31)
TOMORROW = TODAY + timedelta(days=1)
DOLLAR = 1_000_000_000  # nanos


@pytest.fixture
def queries(db) -> SqlDashboardQueries:
    return SqlDashboardQueries(db.engine)


async def user(accounts, project, end_user_id, plan=None, env=LIVE, **changes):
    """An end user on ``plan`` (a RatePlan, or None for no plan of its own)."""
    key = UserKey(project.id, env, end_user_id)
    await accounts.get_or_create_end_user(key, plan.id if plan else None)
    if changes:
        await accounts.update_end_user(key, **changes)


async def usage(
    db,
    project,
    end_user_id,
    day=TODAY,
    *,
    tokens=0,
    requests=0,
    cost=0,
    charge=0,
    env=LIVE,
    model="gpt-4o-mini",
):
    """One rollup row (``cost`` and ``charge`` in nanos)."""
    async with db.engine.begin() as conn:
        await conn.execute(
            t.usage_daily_rollups.insert().values(
                project_id=project.id,
                environment=env.value,
                end_user_id=end_user_id,
                model=model,
                provider="openai",
                day=day,
                requests=requests,
                prompt_tokens=tokens,
                completion_tokens=0,
                total_tokens=tokens,
                provider_cost_nanos=cost,
                markup_nanos=charge - cost,
                charge_nanos=charge,
                unpriced_requests=0,
            )
        )


async def ids(queries, project, env=LIVE, **kw):
    table = await queries.end_user_table(project.id, env, today=TODAY, **kw)
    return [r.user.end_user_id for r in table.rows]


async def over_and_within(queries, project, env=LIVE, **kw):
    over = await queries.end_user_table(project.id, env, today=TODAY, over_limit=True, **kw)
    within = await queries.end_user_table(project.id, env, today=TODAY, over_limit=False, **kw)
    assert over.total == len(over.rows) and within.total == len(within.rows)
    everyone = await queries.end_user_table(project.id, env, today=TODAY, **kw)
    assert over.total + within.total == everyone.total  # exact complement
    return [r.user.end_user_id for r in over.rows], [r.user.end_user_id for r in within.rows]


# ---------------------------------------------------------------- search, filters, sorting


async def test_search_matches_id_email_and_name_case_insensitively(queries, accounts, project):
    await user(accounts, project, "alice", email="Alice@Example.com", name="Alice A")
    await user(accounts, project, "bob", email="bob@corp.io", name="Robert")
    await user(accounts, project, "a_b")
    await user(accounts, project, "axb")
    assert await ids(queries, project, search="EXAMPLE") == ["alice"]
    assert await ids(queries, project, search="robert") == ["bob"]
    assert await ids(queries, project, search="a_b") == ["a_b"]  # _ is not a wildcard
    assert await ids(queries, project, search="%") == []
    assert await ids(queries, project) == ["a_b", "alice", "axb", "bob"]


async def test_plan_and_blocked_filters(queries, accounts, project):
    free = await accounts.create_plan(project.id, RatePlan(id="", name="Free", is_default=True))
    pro = await accounts.create_plan(project.id, RatePlan(id="", name="Pro"))
    await user(accounts, project, "u1", free)
    await user(accounts, project, "u2", pro, blocked=True)
    await user(accounts, project, "u3", pro)
    assert await ids(queries, project, rate_plan_id=pro.id) == ["u2", "u3"]
    assert await ids(queries, project, rate_plan_id=free.id) == ["u1"]
    assert await ids(queries, project, blocked=True) == ["u2"]
    assert await ids(queries, project, blocked=False) == ["u1", "u3"]
    assert await ids(queries, project, rate_plan_id=pro.id, blocked=False) == ["u3"]


async def test_sorts_by_this_months_sums_with_id_as_tie_break(db, queries, accounts, project):
    for name in ("a", "b", "c", "d"):
        await user(accounts, project, name)
    await usage(db, project, "a", tokens=10, requests=5, charge=3 * DOLLAR)
    await usage(db, project, "b", YESTERDAY, tokens=30, requests=1, charge=1 * DOLLAR)
    await usage(db, project, "c", tokens=10, requests=2, charge=2 * DOLLAR)
    # outside this month's window (before it, after today): never counted
    await usage(db, project, "d", LAST_MONTH, tokens=999, requests=999, charge=999 * DOLLAR)
    await usage(db, project, "d", TOMORROW, tokens=999, requests=999, charge=999 * DOLLAR)
    assert await ids(queries, project, sort="tokens") == ["b", "a", "c", "d"]
    assert await ids(queries, project, sort="requests") == ["a", "c", "b", "d"]
    assert await ids(queries, project, sort="revenue") == ["a", "c", "b", "d"]
    assert await ids(queries, project, sort="id") == ["a", "b", "c", "d"]
    with pytest.raises(ValueError):
        await queries.end_user_table(project.id, LIVE, today=TODAY, sort="cost")


async def test_rows_carry_today_and_month_sums(db, queries, accounts, project):
    await user(accounts, project, "u")
    await usage(db, project, "u", tokens=7, requests=1, cost=2, charge=3)
    await usage(db, project, "u", tokens=5, requests=1, cost=4, charge=6, model="other")
    await usage(db, project, "u", YESTERDAY, tokens=100, requests=2, cost=10, charge=20)
    [row] = (await queries.end_user_table(project.id, LIVE, today=TODAY)).rows
    assert (row.today.total_tokens, row.today.requests) == (12, 2)
    assert (row.month.total_tokens, row.month.requests) == (112, 4)
    assert row.today.provider_cost == Decimal("0.000000006")
    assert row.month.charge == Decimal("0.000000029")


async def test_pages_keep_the_total_of_all_matches(db, queries, accounts, project):
    for i in range(7):
        await user(accounts, project, f"u{i}", blocked=i % 2 == 1)
        await usage(db, project, f"u{i}", tokens=i)
    page = await queries.end_user_table(project.id, LIVE, today=TODAY, offset=0, limit=3)
    assert page.total == 7 and [r.user.end_user_id for r in page.rows] == ["u0", "u1", "u2"]
    page = await queries.end_user_table(
        project.id, LIVE, today=TODAY, sort="tokens", offset=3, limit=3
    )
    assert page.total == 7 and [r.user.end_user_id for r in page.rows] == ["u3", "u2", "u1"]
    page = await queries.end_user_table(
        project.id, LIVE, today=TODAY, blocked=False, offset=2, limit=3
    )
    assert page.total == 4 and [r.user.end_user_id for r in page.rows] == ["u4", "u6"]
    page = await queries.end_user_table(project.id, LIVE, today=TODAY, offset=50)
    assert page.total == 7 and page.rows == []


# ---------------------------------------------------------------- over limit

#: (limit field, cap, what the usage counts, is it a daily window?)
KINDS = [
    ("daily_token_limit", 100, "tokens", True),
    ("monthly_token_limit", 100, "tokens", False),
    ("daily_request_limit", 100, "requests", True),
    ("monthly_request_limit", 100, "requests", False),
    ("daily_cost_limit_usd", Decimal("1"), "cost", True),
    ("monthly_cost_limit_usd", Decimal("1"), "cost", False),
]


@pytest.mark.parametrize(("field", "cap", "kind", "daily"), KINDS, ids=[k[0] for k in KINDS])
async def test_over_limit_for_each_limit_kind(
    db, queries, accounts, project, field, cap, kind, daily
):
    plan = await accounts.create_plan(
        project.id, RatePlan(id="", name="Capped", limits=Limits(**{field: cap}))
    )
    used = 100 if kind != "cost" else DOLLAR  # exactly the cap

    async def on(name, day, amount):
        await usage(db, project, name, day, **{kind: amount})

    for name in ("at", "above", "below", "split", "earlier", "last-month", "future", "idle"):
        await user(accounts, project, name, plan)
    await on("at", TODAY, used)
    await on("above", TODAY, used * 3)
    await on("below", TODAY, used - 1)
    await on("split", TODAY, used // 2)  # two days of this month make up the cap
    await on("split", YESTERDAY, used - used // 2)
    await on("earlier", YESTERDAY, used)  # this month, not today
    await on("last-month", LAST_MONTH, used * 5)
    await on("future", TOMORROW, used * 5)
    over, within = await over_and_within(queries, project)
    expected = ["above", "at"] if daily else ["above", "at", "earlier", "split"]
    assert over == expected
    everyone = {"at", "above", "below", "split", "earlier", "last-month", "future", "idle"}
    assert within == sorted(everyone - set(expected))


async def test_any_one_reached_limit_is_enough(db, queries, accounts, project):
    limits = Limits(
        daily_token_limit=1000,
        monthly_request_limit=10,
        daily_cost_limit_usd=Decimal("5"),
        requests_per_minute=0,  # not a day/month limit: never makes anyone "over"
    )
    plan = await accounts.create_plan(project.id, RatePlan(id="", name="Mixed", limits=limits))
    for name in ("requests-only", "nothing"):
        await user(accounts, project, name, plan)
    await usage(db, project, "requests-only", YESTERDAY, tokens=10, requests=10, cost=1)
    await usage(db, project, "nothing", tokens=999, requests=9, cost=5 * DOLLAR - 1)
    assert await over_and_within(queries, project) == (["requests-only"], ["nothing"])


async def test_cost_caps_count_provider_cost_not_charge(db, queries, accounts, project):
    limits = Limits(daily_cost_limit_usd=Decimal("1"), monthly_cost_limit_usd=Decimal("3"))
    plan = await accounts.create_plan(project.id, RatePlan(id="", name="Cost", limits=limits))
    for name in ("marked-up", "costly", "monthly-costly"):
        await user(accounts, project, name, plan)
    await usage(db, project, "marked-up", cost=DOLLAR // 2, charge=50 * DOLLAR)
    await usage(db, project, "costly", cost=DOLLAR, charge=DOLLAR)
    await usage(db, project, "monthly-costly", YESTERDAY, cost=3 * DOLLAR, charge=3 * DOLLAR)
    over, within = await over_and_within(queries, project)
    assert over == ["costly", "monthly-costly"] and within == ["marked-up"]


async def test_users_without_a_plan_fall_back_to_the_default(db, queries, accounts, project):
    default = await accounts.create_plan(
        project.id,
        RatePlan(id="", name="Free", is_default=True, limits=Limits(daily_token_limit=100)),
    )
    unlimited = await accounts.create_plan(project.id, RatePlan(id="", name="Unlimited"))
    org = await accounts.create_organization("Other")
    other = await accounts.create_project(org, "Other app")
    foreign = await accounts.create_plan(other.id, RatePlan(id="", name="Foreign"))
    await user(accounts, project, "no-plan")  # falls back to Free
    await user(accounts, project, "on-free", default)
    await user(accounts, project, "on-unlimited", unlimited)  # own plan wins, even unlimited
    await user(accounts, project, "foreign-plan", foreign)  # not this project's: default
    for name in ("no-plan", "on-free", "on-unlimited", "foreign-plan"):
        await usage(db, project, name, tokens=100)
    over, within = await over_and_within(queries, project)
    assert over == ["foreign-plan", "no-plan", "on-free"] and within == ["on-unlimited"]


async def test_the_current_default_plan_is_the_one_that_counts(db, queries, accounts, project):
    await accounts.create_plan(
        project.id, RatePlan(id="", name="Old", is_default=True, limits=Limits(daily_token_limit=1))
    )
    await user(accounts, project, "u")
    await usage(db, project, "u", tokens=50)
    assert await over_and_within(queries, project) == (["u"], [])
    await accounts.create_plan(
        project.id,
        RatePlan(id="", name="New", is_default=True, limits=Limits(daily_token_limit=99)),
    )
    assert await over_and_within(queries, project) == ([], ["u"])


async def test_users_with_no_plan_at_all_are_never_over(db, queries, accounts, project):
    await accounts.create_plan(project.id, RatePlan(id="", name="Not default"))
    await user(accounts, project, "planless")
    await usage(db, project, "planless", tokens=10**12, requests=10**9, cost=10**15)
    assert await over_and_within(queries, project) == ([], ["planless"])


async def test_over_limit_is_per_environment_and_project(db, queries, accounts, project):
    plan = await accounts.create_plan(
        project.id,
        RatePlan(id="", name="Free", is_default=True, limits=Limits(monthly_request_limit=5)),
    )
    for env in (LIVE, TEST):
        await user(accounts, project, "same-id", plan, env=env)
    await user(accounts, project, "test-heavy", plan, env=TEST)
    await usage(db, project, "same-id", requests=5, env=LIVE)
    await usage(db, project, "test-heavy", requests=5, env=TEST)
    await usage(db, project, "same-id", requests=4, env=TEST)
    org = await accounts.create_organization("Other")
    other = await accounts.create_project(org, "Other app")
    await usage(db, other, "test-heavy", requests=50, env=LIVE)  # another project's usage
    assert await over_and_within(queries, project, LIVE) == (["same-id"], [])
    assert await over_and_within(queries, project, TEST) == (["test-heavy"], ["same-id"])


async def test_over_limit_combines_with_filters_sort_and_pages(db, queries, accounts, project):
    plan = await accounts.create_plan(
        project.id,
        RatePlan(id="", name="Free", is_default=True, limits=Limits(daily_request_limit=1)),
    )
    for i in range(6):
        await user(accounts, project, f"u{i}", plan, blocked=i == 4)
        await usage(db, project, f"u{i}", requests=1 if i < 5 else 0, tokens=i)
    page = await queries.end_user_table(
        project.id, LIVE, today=TODAY, over_limit=True, sort="tokens", offset=1, limit=2
    )
    assert page.total == 5 and [r.user.end_user_id for r in page.rows] == ["u3", "u2"]
    page = await queries.end_user_table(
        project.id, LIVE, today=TODAY, over_limit=True, blocked=False, search="U", limit=10
    )
    assert page.total == 4 and [r.user.end_user_id for r in page.rows] == ["u0", "u1", "u2", "u3"]
    page = await queries.end_user_table(
        project.id, LIVE, today=TODAY, over_limit=False, rate_plan_id=plan.id
    )
    assert page.total == 1 and [r.user.end_user_id for r in page.rows] == ["u5"]
