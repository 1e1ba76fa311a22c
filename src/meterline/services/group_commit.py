"""Group commit: concurrent ledger writes of one process share a transaction.

Each gateway call must make its usage durable before it answers, and a transaction costs
far more than the rows in it (a connection checkout, BEGIN, COMMIT, and on SQLite the
single writer lock). So callers queue their events and await them; one flusher writes
everything queued so far in a single ``record_events`` call, then hands each caller its
own outcomes. At concurrency 1 the queue holds one call and nothing waits; under load,
calls that arrive during a flush ride in the next one.

Nothing is acknowledged before its transaction commits, and outcomes are exactly those of
writing the calls one after another in queue order: the ledger judges a repeated event id
inside one batch against its first occurrence, as if it came in a later call. If a shared
transaction fails, every call in it is retried alone, so one bad write cannot fail the
others. A caller cancelled before its flush starts writes nothing.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from typing import Protocol

from meterline.domain.entities import UsageEvent
from meterline.ports import RecordOutcome

__all__ = ["EventWriter", "GroupCommit"]

#: Events per shared transaction (the ledger chunks larger inserts itself).
MAX_EVENTS_PER_FLUSH = 2000


class EventWriter(Protocol):
    async def record_events(self, events: Sequence[UsageEvent]) -> list[RecordOutcome]: ...


_Pending = tuple[list[UsageEvent], "asyncio.Future[list[RecordOutcome]]"]


class GroupCommit:
    """An :class:`EventWriter` that batches concurrent calls into shared transactions."""

    def __init__(self, ledger: EventWriter, *, max_events: int = MAX_EVENTS_PER_FLUSH) -> None:
        self._ledger = ledger
        self._max = max(1, max_events)
        self._queue: deque[_Pending] = deque()
        self._flusher: asyncio.Task[None] | None = None

    async def record_events(self, events: Sequence[UsageEvent]) -> list[RecordOutcome]:
        if not events:
            return []
        future: asyncio.Future[list[RecordOutcome]] = asyncio.get_running_loop().create_future()
        self._queue.append((list(events), future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_all(), name="ledger-group-commit")
        return await future

    async def _flush_all(self) -> None:
        batch: list[_Pending] = []
        try:
            while batch := self._take():
                await self._flush(batch)
        except BaseException as exc:  # cancelled at shutdown: nobody may wait forever
            stopped = RuntimeError("ledger writer stopped; the write may not have happened")
            for _, future in [*batch, *self._queue]:
                _resolve(future, stopped)
            self._queue.clear()
            if not isinstance(exc, Exception):
                raise

    def _take(self) -> list[_Pending]:
        """The queued calls for one transaction, skipping callers already gone."""
        batch: list[_Pending] = []
        size = 0
        while self._queue:
            events, future = self._queue[0]
            if future.done():  # cancelled while queued: not written
                self._queue.popleft()
                continue
            if batch and size + len(events) > self._max:
                break
            self._queue.popleft()
            batch.append((events, future))
            size += len(events)
        return batch

    async def _flush(self, batch: list[_Pending]) -> None:
        events = [event for call, _ in batch for event in call]
        try:
            outcomes = await self._ledger.record_events(events)
        except Exception as exc:
            if len(batch) == 1:
                _resolve(batch[0][1], exc)
                return
            for call, future in batch:  # isolate the failure: each call alone
                try:
                    _resolve(future, await self._ledger.record_events(call))
                except Exception as alone:
                    _resolve(future, alone)
            return
        start = 0
        for call, future in batch:
            _resolve(future, outcomes[start : start + len(call)])
            start += len(call)


def _resolve(
    future: asyncio.Future[list[RecordOutcome]], result: list[RecordOutcome] | Exception
) -> None:
    if future.done():  # the caller was cancelled mid-flush; its rows are written anyway
        return
    if isinstance(result, Exception):
        future.set_exception(result)
    else:
        future.set_result(result)
