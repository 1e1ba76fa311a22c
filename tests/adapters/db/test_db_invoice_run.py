"""The set-based invoice run on SQLite and PostgreSQL: ``period_usage`` equals
``invoice_usage`` user by user (late usage, linked events, voided and overlapping
invoices, both environments), ``Invoicing.generate`` equals the invoices computed one user
at a time and straight from the ledger, and racing runs leave one invoice per user."""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from meterline.adapters.db import SqlInvoices
from meterline.adapters.db import tables as t
from meterline.domain.entities import ApiKey, Environment, UsageEvent
from meterline.domain.invoices import (
    Invoice,
    InvoiceStatus,
    LineUsage,
    compute_lines,
)
from meterline.domain.money import from_nanos
from meterline.services import invoicing as invoicing_module
from meterline.services.auth import AuthContext
from meterline.services.invoicing import GenerateResult, Invoicing

LIVE, TEST = Environment.LIVE, Environment.TEST
OCT = (date(2026, 10, 1), date(2026, 10, 31))
NOV = (date(2026, 11, 1), date(2026, 11, 30))
DEC = (date(2026, 12, 1), date(2026, 12, 31))
MID = (date(2026, 10, 15), date(2026, 11, 14))
OVERLAP = (date(2026, 10, 20), date(2026, 11, 5))
NOW = datetime(2027, 1, 2, tzinfo=UTC)
#: NULL and '' provider/model must end up on one line, as on the per-user path.
MODELS = [
    ("openai", "gpt-4o"),
    ("anthropic", "claude-sonnet-4-5"),
    (None, "local"),
    ("", "local"),
    (None, None),
]


class _Clock:
    def now(self) -> datetime:
        return NOW


@pytest.fixture
def store(db) -> SqlInvoices:
    return SqlInvoices(db.engine)


def _ctx(project, env: Environment = LIVE) -> AuthContext:
    return AuthContext(key=ApiKey("k", project.id, env, "mk_x"), project=project)


def _event(project, rng: random.Random, n: int, start: datetime, days: int) -> UsageEvent:
    provider, model = rng.choice(MODELS)
    user = rng.choice([*(f"u{i:02d}" for i in range(14)), None])
    # users finalized in _history have priced usage only (finalization requires it)
    priced = rng.random() > 0.1 or user in ("u00", "u01", "u02", "u03", "u04")
    cost = rng.randint(1, 9_000_000)  # nano-dollars: lines round to cents many ways
    fee = rng.choice((0, 0, 333_333))
    markup = cost // 7 + fee
    return UsageEvent(
        project_id=project.id,
        environment=TEST if rng.random() < 0.15 else LIVE,
        event_id=f"e{n}",
        end_user_id=user,
        timestamp=start + timedelta(seconds=rng.randrange(days * 86400)),
        model=model,
        provider=provider,
        prompt_tokens=rng.randint(0, 900),
        completion_tokens=rng.randint(0, 300),
        total_tokens=0,
        priced=priced,
        provider_cost=from_nanos(cost) if priced else None,
        markup=from_nanos(markup) if priced else None,
        charge=from_nanos(cost + markup) if priced else None,
        flat_fee=from_nanos(fee) if priced else None,
        fingerprint=f"e{n}",
    )


def _draft(project, user: str, period, usage: list[LineUsage], env=LIVE) -> Invoice:
    return Invoice(
        id="",
        project_id=project.id,
        environment=env,
        end_user_id=user,
        period_start=period[0],
        period_end=period[1],
        status=InvoiceStatus.DRAFT,
        currency="USD",
        lines=compute_lines(usage),
    )


async def _one_by_one(store, project, env, period, users=None) -> GenerateResult:
    """The invoice run as it was before it was set-based: one user at a time, through
    ``users_with_usage``, ``list_invoices``, ``invoice_usage`` and ``save_draft``. Reads
    only (drafts are not saved): the expected result of a run on the same data."""
    result = GenerateResult()
    if users is None:
        users = await store.users_with_usage(project.id, env, *period)
    for user in sorted(set(users)):
        found = await store.list_invoices(
            project.id, env, end_user_id=user, period_start=period[0], period_end=period[1]
        )
        existing = next((i for i in found if (i.period_start, i.period_end) == period), None)
        if existing is not None and existing.status is not InvoiceStatus.DRAFT:
            result.skipped.append(
                {"end_user_id": user, "reason": "finalized", "invoice_id": existing.id}
            )
            continue
        usage = await store.invoice_usage(project.id, env, user, *period)
        if not any(u.requests for u in usage):
            result.skipped.append({"end_user_id": user, "reason": "no_usage"})
            continue
        result.generated.append(_draft(project, user, period, usage, env))
    return result


def _lines_by_user(invoices) -> dict[str, tuple]:
    return {inv.end_user_id: inv.lines for inv in invoices}


async def _history(store, ledger, project, seed: int) -> list[UsageEvent]:
    """Events over Sep 20 … Dec 10 in both environments, then: October finalized for some
    users (one of them voided afterwards), an overlapping Oct 15 … Nov 14 invoice finalized
    for another, late events after those finalizations, and a November draft."""
    rng = random.Random(seed)
    start = datetime(2026, 9, 20, tzinfo=UTC)
    events = [_event(project, rng, n, start, 81) for n in range(400)]
    await ledger.record_events(events)
    for user in ("u00", "u01", "u02", "u03"):
        usage = await store.invoice_usage(project.id, LIVE, user, *OCT)
        if usage:
            saved = await store.save_draft(_draft(project, user, OCT, usage))
            await store.finalize(project.id, LIVE, saved.id, NOW, "USD")
    october = await store.list_invoices(project.id, LIVE, end_user_id="u02")
    if october and october[0].status is InvoiceStatus.OPEN:
        await store.set_status(project.id, LIVE, october[0].id, InvoiceStatus.VOID)
    usage = await store.invoice_usage(project.id, LIVE, "u04", *MID)
    if usage:
        saved = await store.save_draft(_draft(project, "u04", MID, usage))
        await store.finalize(project.id, LIVE, saved.id, NOW, "USD")
    # u01 also finalizes Oct 20 … Nov 5, overlapping its October: late events of Oct 20 … 31
    # lie in two finalized periods and must be billed once
    usage = await store.invoice_usage(project.id, LIVE, "u01", *OVERLAP)
    saved = await store.save_draft(_draft(project, "u01", OVERLAP, usage))
    await store.finalize(project.id, LIVE, saved.id, NOW, "USD")
    late = [_event(project, rng, n, datetime(2026, 10, 1, tzinfo=UTC), 45) for n in range(400, 520)]
    late += [
        dataclasses.replace(
            late[0],
            event_id=f"l{n}",
            end_user_id="u01",
            fingerprint=f"l{n}",
            timestamp=datetime(2026, 10, 25 + n, tzinfo=UTC),
        )
        for n in range(3)
    ]
    await ledger.record_events(late)
    usage = await store.invoice_usage(project.id, LIVE, "u05", *NOV)
    if usage:
        await store.save_draft(_draft(project, "u05", NOV, usage))
    return events + late


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_period_usage_equals_invoice_usage_user_by_user(
    store, ledger, project, monkeypatch, seed
):
    if seed == 3:  # explicit lists longer than an IN list: one pass, filtered
        monkeypatch.setattr("meterline.adapters.db.invoice_reads.CHUNK", 2)
    await _history(store, ledger, project, seed)
    for env in (LIVE, TEST):
        for period in (OCT, NOV, MID, OVERLAP, DEC, (date(2026, 9, 1), date(2026, 12, 31))):
            got = await store.period_usage(project.id, env, *period)
            assert sorted(got) == await store.users_with_usage(project.id, env, *period)
            for user in [f"u{i:02d}" for i in range(14)]:
                want = await store.invoice_usage(project.id, env, user, *period)
                assert compute_lines(got.get(user, [])) == compute_lines(want), (env, period, user)
            some = ["u00", "u03", "u04", "u07", "nobody"]
            picked = await store.period_usage(project.id, env, *period, some)
            assert picked == {u: lines for u, lines in got.items() if u in some}


@pytest.mark.parametrize("seed", [4, 5])
async def test_generate_equals_one_user_at_a_time(store, ledger, project, seed):
    await _history(store, ledger, project, seed)
    run = Invoicing(store, _Clock())
    seen: set[str] = set()
    for env, period, users in (
        (LIVE, NOV, None),
        (LIVE, OCT, None),
        (TEST, NOV, None),
        (LIVE, MID, ["u04", "u05", "u06", "nobody"]),
        (LIVE, NOV, ["u00", "u05", "nobody"]),
    ):
        want = await _one_by_one(store, project, env, period, users)
        got = await run.generate(_ctx(project, env), *period, users)
        assert got.skipped == want.skipped and got.errors == want.errors == []
        assert [i.end_user_id for i in got.generated] == [i.end_user_id for i in want.generated]
        assert _lines_by_user(got.generated) == _lines_by_user(want.generated)
        seen.update(s["reason"] for s in got.skipped)
        seen.update("late" for i in got.generated for ln in i.lines if ln.late)
        for inv in got.generated:
            assert inv.status is InvoiceStatus.DRAFT and inv.id and inv.created_at is not None
            assert inv.environment is env and inv.period_start == period[0]
            stored = await store.get_invoice(project.id, env, inv.id)
            assert stored is not None and stored.lines == inv.lines
            assert stored.total_cents == inv.total_cents
        again = await run.generate(_ctx(project, env), *period, users)  # idempotent
        assert [i.id for i in again.generated] == [i.id for i in got.generated]
        assert _lines_by_user(again.generated) == _lines_by_user(got.generated)
    assert seen == {"finalized", "no_usage", "late"}  # the data reaches every path
    counts = await _invoice_counts(store)
    assert counts and max(counts.values()) == 1


async def test_generate_equals_the_ledger_summed_by_hand(store, ledger, project):
    """No history: each invoice is the events of its user and period, summed in Python."""
    rng = random.Random(9)
    events = [_event(project, rng, n, datetime(2026, 11, 25, tzinfo=UTC), 12) for n in range(300)]
    await ledger.record_events(events)
    sums: dict[str, dict[tuple[str, str], list]] = defaultdict(dict)
    for e in events:
        if e.environment is not LIVE or e.end_user_id is None:
            continue
        if not DEC[0] <= e.timestamp.date() <= DEC[1]:
            continue
        key = (e.provider or "", e.model or "")
        acc = sums[e.end_user_id].setdefault(key, [0, 0, 0, Decimal(0), Decimal(0), 0, 0])
        acc[0] += 1
        acc[1] += e.prompt_tokens
        acc[2] += e.completion_tokens
        acc[3] += e.charge or 0
        acc[4] += e.flat_fee or 0
        acc[5] += 0 if e.priced else 1
        acc[6] += e.provider_cost or 0
    got = await Invoicing(store, _Clock()).generate(_ctx(project), *DEC)
    assert [i.end_user_id for i in got.generated] == sorted(sums)
    for inv in got.generated:
        by_key = {(ln.provider, ln.model): ln for ln in inv.lines}
        assert set(by_key) == set(sums[inv.end_user_id])
        for key, (n, prompt, completion, charge, fees, unpriced, cost) in sums[
            inv.end_user_id
        ].items():
            line = by_key[key]
            assert (line.requests, line.prompt_tokens, line.completion_tokens) == (
                n,
                prompt,
                completion,
            )
            assert (line.charge, line.flat_fees, line.provider_cost) == (charge, fees, cost)
            assert line.unpriced_requests == unpriced and not line.late
            cents = int(charge * 100 + (Decimal("0.5") if charge >= 0 else Decimal("-0.5")))
            assert line.amount_cents == cents  # rounded once per line, half away from zero
        assert inv.total_cents == sum(ln.amount_cents for ln in inv.lines)


async def _invoice_counts(store) -> dict[tuple, int]:
    async with store.engine.connect() as conn:
        key = (t.invoices.c.environment, t.invoices.c.end_user_id, t.invoices.c.period_start)
        rows = (await conn.execute(select(*key, func.count()).group_by(*key))).all()
    return {tuple(r[:3]): r[3] for r in rows}


async def _line_count(store) -> int:
    async with store.engine.connect() as conn:
        query = select(func.count()).select_from(t.invoice_lines)
        return int((await conn.execute(query)).scalar_one())


@pytest.mark.parametrize("with_drafts", [False, True])
async def test_two_runs_racing_make_one_invoice_per_user(
    store, ledger, project, monkeypatch, with_drafts
):
    monkeypatch.setattr(invoicing_module, "SAVE_CHUNK", 4)  # many small transactions
    users = [f"r{i:02d}" for i in range(23)]
    await ledger.record_events(
        [
            UsageEvent(
                project_id=project.id,
                environment=LIVE,
                event_id=f"{u}-{k}",
                end_user_id=u,
                timestamp=datetime(2026, 10, 3 + k, tzinfo=UTC),
                model=("gpt-4o", "gpt-4o-mini")[k % 2],
                provider="openai",
                provider_cost=Decimal("0.0031"),
                markup=Decimal("0.0012"),
                charge=Decimal("0.0043"),
                fingerprint=f"{u}-{k}",
            )
            for u in users
            for k in range(3)
        ]
    )
    run = Invoicing(store, _Clock())
    if with_drafts:
        await run.generate(_ctx(project), *OCT, users[::2])
    a, b = await asyncio.gather(
        run.generate(_ctx(project), *OCT), run.generate(_ctx(project), *OCT)
    )
    counts = await _invoice_counts(store)
    assert sorted(u for (_, u, _) in counts) == users and set(counts.values()) == {1}
    assert await _line_count(store) == 2 * len(users)  # no duplicated lines either
    for result in (a, b):
        assert result.skipped == [] and result.errors == []
        assert [i.end_user_id for i in result.generated] == users
    assert [i.id for i in a.generated] == [i.id for i in b.generated]
    stored = {i.end_user_id: i for i in await store.list_invoices(project.id, LIVE)}
    for inv in a.generated:
        assert stored[inv.end_user_id].lines == inv.lines
        # gpt-4o: 2 × 0.0043 = 0.0086 → 1 cent; gpt-4o-mini: 0.0043 → 0 cents
        assert stored[inv.end_user_id].total_cents == 1


async def test_save_drafts_racing_on_the_same_keys(store, ledger, project):
    usage = [LineUsage("openai", "gpt-4o", 2, 10, 5, Decimal("0.01"), Decimal(0), Decimal("0.01"))]
    drafts = [_draft(project, f"k{i:03d}", OCT, usage) for i in range(120)]
    results = await asyncio.gather(*(store.save_drafts(drafts) for _ in range(3)))
    ids = [[inv.id for inv in r] for r in results]
    assert ids[0] == ids[1] == ids[2] and len(set(ids[0])) == 120
    assert set((await _invoice_counts(store)).values()) == {1}
    assert await _line_count(store) == 120


async def test_save_drafts_replaces_drafts_and_never_finalized(store, ledger, project):
    await ledger.record_events(
        [
            UsageEvent(
                project_id=project.id,
                environment=LIVE,
                event_id="f1",
                end_user_id="fin",
                timestamp=datetime(2026, 10, 9, tzinfo=UTC),
                model="gpt-4o",
                provider="openai",
                provider_cost=Decimal("0.5"),
                markup=Decimal("0.1"),
                charge=Decimal("0.6"),
                fingerprint="f1",
            )
        ]
    )
    usage = await store.invoice_usage(project.id, LIVE, "fin", *OCT)
    fin = await store.save_draft(_draft(project, "fin", OCT, usage))
    await store.finalize(project.id, LIVE, fin.id, NOW, "USD")
    first = await store.save_draft(_draft(project, "old", OCT, usage))
    other = [LineUsage("x", "y", 1, 1, 1, Decimal("0.02"), Decimal(0), Decimal("0.02"))]
    saved = await store.save_drafts(
        [
            _draft(project, "new", OCT, usage),
            _draft(project, "fin", OCT, other),
            _draft(project, "old", OCT, other),
        ]
    )
    assert saved[1] is None
    assert saved[2] is not None and saved[2].id == first.id
    assert saved[2].created_at == first.created_at and saved[2].lines == compute_lines(other)
    assert (await store.get_invoice(project.id, LIVE, first.id)).total_cents == 2
    assert (await store.get_invoice(project.id, LIVE, fin.id)).status is InvoiceStatus.OPEN
    assert saved[0] is not None and saved[0].total_cents == 60
    await store.delete_drafts(project.id, LIVE, ["new", "fin", "old"], *OCT)
    left = await store.list_invoices(project.id, LIVE)
    assert [i.id for i in left] == [fin.id]


async def test_environments_never_mix(store, ledger, project):
    await _history(store, ledger, project, 6)
    live = await Invoicing(store, _Clock()).generate(_ctx(project, LIVE), *NOV)
    test = await Invoicing(store, _Clock()).generate(_ctx(project, TEST), *NOV)
    assert {i.environment for i in live.generated} == {LIVE}
    assert {i.environment for i in test.generated} == {TEST}
    assert _lines_by_user(test.generated) == _lines_by_user(
        (await _one_by_one(store, project, TEST, NOV)).generated
    )
