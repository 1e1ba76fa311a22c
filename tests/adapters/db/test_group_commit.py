"""Group commit over a real ledger (SQLite and PostgreSQL): concurrent calls share
transactions, and each caller still gets exactly the outcome of writing alone."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from collections.abc import Sequence

from sqlalchemy import func, select
from test_db_ledger import CONFLICT, DUP, REC, count_events, event

from meterline.adapters.db import tables as t
from meterline.domain.entities import UsageEvent
from meterline.ports import RecordOutcome
from meterline.services.group_commit import GroupCommit


class CountingLedger:
    """The real ledger, counting its transactions (one per ``record_events`` call)."""

    def __init__(self, ledger) -> None:
        self.ledger = ledger
        self.calls: list[int] = []

    async def record_events(self, events: Sequence[UsageEvent]) -> list[RecordOutcome]:
        self.calls.append(len(events))
        return await self.ledger.record_events(events)


async def test_concurrent_calls_share_transactions_and_all_commit(db, ledger, project):
    counting = CountingLedger(ledger)
    writer = GroupCommit(counting)
    n = 300
    outcomes = await asyncio.gather(
        *(writer.record_events([event(project, f"e{i}", user=f"u{i % 7}")]) for i in range(n))
    )
    assert [o.status for (o,) in outcomes] == [REC] * n
    assert [o.event.event_id for (o,) in outcomes] == [f"e{i}" for i in range(n)]
    assert await count_events(db) == n
    assert sum(counting.calls) == n
    assert len(counting.calls) < n / 10  # shared: far fewer transactions than calls
    async with db.engine.connect() as conn:
        requests = (await conn.execute(select(func.sum(t.usage_daily_rollups.c.requests)))).scalar()
    assert requests == n  # the rollups saw every event once


async def test_one_call_alone_is_one_transaction(ledger, project):
    counting = CountingLedger(ledger)
    writer = GroupCommit(counting)
    for i in range(3):
        ((outcome,),) = [await writer.record_events([event(project, f"s{i}")])]
        assert outcome.status is REC
    assert counting.calls == [1, 1, 1]


async def test_repeats_across_calls_in_one_flush_are_judged_like_sequential_calls(
    db, ledger, project
):
    writer = GroupCommit(ledger)
    same = event(project, "dup")
    changed = event(project, "dup", prompt_tokens=999, fingerprint="other")
    results = await asyncio.gather(
        writer.record_events([same]),
        writer.record_events([same]),
        writer.record_events([changed]),
        writer.record_events([event(project, "x"), same]),
    )
    statuses = [[o.status for o in r] for r in results]
    assert statuses == [[REC], [DUP], [CONFLICT], [REC, DUP]]
    assert await count_events(db) == 2


async def test_a_failing_call_does_not_fail_the_others_in_its_flush(db, ledger, project):
    counting = CountingLedger(ledger)
    writer = GroupCommit(counting)
    bad = dataclasses.replace(event(project, "bad"), project_id="proj_does_not_exist")
    calls = [writer.record_events([event(project, f"ok{i}")]) for i in range(20)]
    calls.insert(10, writer.record_events([bad]))
    results = await asyncio.gather(*calls, return_exceptions=True)
    failures = [r for r in results if isinstance(r, BaseException)]
    assert len(failures) == 1 and results[10] is failures[0]  # only the bad one
    assert Counter(o.status for r in results if isinstance(r, list) for o in r) == {REC: 20}
    assert await count_events(db) == 20


async def test_a_caller_cancelled_before_its_flush_writes_nothing(db, ledger, project):
    gate = asyncio.Event()

    class Slow(CountingLedger):
        async def record_events(self, events):
            await gate.wait()
            return await super().record_events(events)

    writer = GroupCommit(Slow(ledger))
    first = asyncio.create_task(writer.record_events([event(project, "first")]))
    await asyncio.sleep(0.01)  # the first flush is in flight, waiting on the gate
    queued = asyncio.create_task(writer.record_events([event(project, "gone")]))
    kept = asyncio.create_task(writer.record_events([event(project, "kept")]))
    await asyncio.sleep(0.01)
    queued.cancel()
    gate.set()
    assert (await first)[0].status is REC and (await kept)[0].status is REC
    assert queued.cancelled()
    async with db.engine.connect() as conn:
        ids = set((await conn.execute(select(t.usage_events.c.event_id))).scalars())
    assert ids == {"first", "kept"}
