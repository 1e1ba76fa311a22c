"""InvoiceStore contract on SQLite and PostgreSQL: drafts, finalization, links, numbering,
late usage, unpriced usage and repricing."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from meterline.adapters.db import SqlInvoices, SqlRepricer
from meterline.adapters.db import tables as t
from meterline.domain.entities import Environment, UsageEvent
from meterline.domain.invoices import Invoice, InvoiceStatus, compute_lines
from meterline.ports import (
    InvalidTransition,
    InvoiceFinalized,
    RepricedEvent,
    UnpricedUsage,
)

LIVE = Environment.LIVE
D = Decimal
OCT = (date(2026, 10, 1), date(2026, 10, 31))
NOV = (date(2026, 11, 1), date(2026, 11, 30))
NOW = datetime(2026, 12, 2, tzinfo=UTC)


@pytest.fixture
def store(db) -> SqlInvoices:
    return SqlInvoices(db.engine)


def ev(project, event_id, *, user="u1", at=None, cost="0.001", model="gpt-4o", priced=True):
    c = D(cost)
    money = {"provider_cost": c, "markup": c / 2, "charge": c * D("1.5")} if priced else {}
    return UsageEvent(
        project_id=project.id,
        environment=LIVE,
        event_id=event_id,
        end_user_id=user,
        timestamp=at or datetime(2026, 10, 5, 12, tzinfo=UTC),
        model=model,
        provider="openai",
        prompt_tokens=10,
        completion_tokens=5,
        total_tokens=15,
        priced=priced,
        fingerprint=event_id,
        **money,
    )


async def draft(store, project, user="u1", period=OCT) -> Invoice:
    usage = await store.invoice_usage(project.id, LIVE, user, *period)
    inv = Invoice(
        id="",
        project_id=project.id,
        environment=LIVE,
        end_user_id=user,
        period_start=period[0],
        period_end=period[1],
        status=InvoiceStatus.DRAFT,
        currency="USD",
        lines=compute_lines(usage),
    )
    return await store.save_draft(inv)


async def links(db) -> int:
    async with db.engine.connect() as conn:
        q = select(func.count()).select_from(t.invoice_event_links)
        return (await conn.execute(q)).scalar_one()


async def test_draft_replace_keeps_id(store, ledger, project):
    await ledger.record_events([ev(project, "a")])
    first = await draft(store, project)
    assert first.lines[0].requests == 1
    await ledger.record_events([ev(project, "b", cost="0.004")])
    second = await draft(store, project)
    assert second.id == first.id
    got = await store.get_invoice(project.id, LIVE, first.id)
    assert got.lines[0].requests == 2 and got.lines[0].charge == D("0.0075")
    assert got.total_cents == 1
    assert len(await store.list_invoices(project.id, LIVE)) == 1


async def test_finalize_links_numbers_and_freezes(db, store, ledger, project):
    await ledger.record_events([ev(project, "a", user="u1"), ev(project, "b", user="u2")])
    d1, d2 = await draft(store, project, "u1"), await draft(store, project, "u2")
    # usage arriving after the draft is included at finalization
    await ledger.record_events([ev(project, "c", user="u1", cost="0.01")])
    f1 = await store.finalize(project.id, LIVE, d1.id, NOW, "USD")
    f2 = await store.finalize(project.id, LIVE, d2.id, NOW, "USD")
    assert (f1.number, f2.number) == ("ML-000001", "ML-000002")
    assert f1.status is InvoiceStatus.OPEN and f1.finalized_at == NOW
    assert f1.lines[0].requests == 2 and f1.total_cents == 2  # 0.0165 → 2 cents
    assert await links(db) == 3
    with pytest.raises(InvalidTransition):
        await store.finalize(project.id, LIVE, d1.id, NOW, "USD")
    with pytest.raises(InvoiceFinalized):
        await draft(store, project, "u1")
    assert await store.invoice_usage(project.id, LIVE, "u1", *OCT) == []
    assert (await store.get_invoice(project.id, LIVE, f1.id)) == f1
    events = await store.invoice_events(project.id, LIVE, f1)
    assert sorted(e.event_id for e in events) == ["a", "c"]


async def test_numbers_are_sequential_under_concurrency(store, ledger, project):
    users = [f"u{i}" for i in range(10)]
    await ledger.record_events([ev(project, f"e{u}", user=u) for u in users])
    drafts = [await draft(store, project, u) for u in users]
    done = await asyncio.gather(
        *(store.finalize(project.id, LIVE, d.id, NOW, "USD") for d in drafts)
    )
    assert sorted(f.number for f in done) == [f"ML-{i:06d}" for i in range(1, 11)]


async def test_concurrent_finalize_of_overlapping_drafts_never_double_links(
    db, store, ledger, project
):
    await ledger.record_events(
        [ev(project, f"e{i}", at=datetime(2026, 10, 20, tzinfo=UTC)) for i in range(20)]
    )
    a = await draft(store, project, period=OCT)
    b = await draft(store, project, period=(date(2026, 10, 15), date(2026, 11, 14)))
    fa, fb = await asyncio.gather(
        store.finalize(project.id, LIVE, a.id, NOW, "USD"),
        store.finalize(project.id, LIVE, b.id, NOW, "USD"),
    )
    billed = sum(ln.requests for inv in (fa, fb) for ln in inv.lines)
    assert billed == 20 and await links(db) == 20


async def test_late_usage_goes_to_the_next_invoice(store, ledger, project):
    await ledger.record_events([ev(project, "oct")])
    october = await store.finalize(project.id, LIVE, (await draft(store, project)).id, NOW, "USD")
    await ledger.record_events(
        [
            ev(project, "late", at=datetime(2026, 10, 30, tzinfo=UTC), cost="0.02"),
            ev(project, "nov", at=datetime(2026, 11, 3, tzinfo=UTC)),
        ]
    )
    assert await store.users_with_usage(project.id, LIVE, *NOV) == ["u1"]
    nov = await draft(store, project, period=NOV)
    assert [(ln.late, ln.requests) for ln in nov.lines] == [(False, 1), (True, 1)]
    fin = await store.finalize(project.id, LIVE, nov.id, NOW, "USD")
    assert [ln.late for ln in fin.lines] == [False, True]
    assert await store.get_invoice(project.id, LIVE, october.id) == october
    # an event in a never-invoiced period is not pulled forward
    await ledger.record_events([ev(project, "sep", at=datetime(2026, 9, 3, tzinfo=UTC))])
    assert (
        await store.invoice_usage(project.id, LIVE, "u1", date(2026, 12, 1), date(2026, 12, 31))
        == []
    )


async def test_status_transitions(store, ledger, project):
    await ledger.record_events([ev(project, "a")])
    d = await draft(store, project)
    with pytest.raises(InvalidTransition):
        await store.set_status(project.id, LIVE, d.id, InvoiceStatus.OPEN)
    with pytest.raises(InvalidTransition):
        await store.set_status(project.id, LIVE, d.id, InvoiceStatus.VOID)
    await store.finalize(project.id, LIVE, d.id, NOW, "USD")
    u = await store.set_status(project.id, LIVE, d.id, InvoiceStatus.UNCOLLECTIBLE)
    assert u.status is InvoiceStatus.UNCOLLECTIBLE
    p = await store.set_status(project.id, LIVE, d.id, InvoiceStatus.PAID, stripe_invoice_id="in_1")
    assert p.status is InvoiceStatus.PAID and p.stripe_invoice_id == "in_1"
    assert (await store.invoice_by_stripe_id("in_1")).id == d.id
    for target in (InvoiceStatus.VOID, InvoiceStatus.OPEN, InvoiceStatus.DRAFT):
        with pytest.raises(InvalidTransition):
            await store.set_status(project.id, LIVE, d.id, target)


async def test_unpriced_blocks_finalize_until_repriced(db, store, ledger, project):
    await ledger.record_events(
        [ev(project, "p"), ev(project, "x", model="mystery-1", priced=False)]
    )
    d = await draft(store, project)
    assert [ln.unpriced_requests for ln in d.lines if ln.model == "mystery-1"] == [1]
    with pytest.raises(UnpricedUsage) as info:
        await store.finalize(project.id, LIVE, d.id, NOW, "USD")
    assert info.value.models == ("mystery-1",) and "mystery-1" in str(info.value)
    assert await links(db) == 0  # rolled back
    repricer = SqlRepricer(db.engine)
    [unpriced] = await repricer.unpriced_events(project.id, LIVE)
    assert unpriced.model == "mystery-1"
    n = await repricer.reprice_events(
        project.id, LIVE, [RepricedEvent(unpriced.pk, D("0.002"), D("0.001"), D("0.003"))]
    )
    assert n == 1
    assert (
        await repricer.reprice_events(
            project.id, LIVE, [RepricedEvent(unpriced.pk, D("9"), D("9"), D("18"))]
        )
        == 0
    )  # priced once, never again
    report = await ledger.revenue(project.id, LIVE, *OCT)
    assert report.totals.charge == D("0.0045") and report.totals.unpriced_requests == 0
    await draft(store, project)
    fin = await store.finalize(project.id, LIVE, d.id, NOW, "USD")
    assert sum(ln.charge for ln in fin.lines) == D("0.0045")
    assert await repricer.count_unpriced(project.id, LIVE) == 0
