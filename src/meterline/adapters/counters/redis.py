"""Redis counters: exact admission across any number of gateway replicas.

Each operation is one Lua script (one round trip, atomic on the server), run by EVALSHA
and loaded again after a SCRIPT FLUSH or a restart. Calls made while another is in
flight share a pipeline (``script_pipeline``): one round trip for all of them.

The admit script mirrors :func:`meterline.domain.limits.exceeded_limits` (same order,
same ``>=``); the shared contract suite, including a property test against
:class:`~meterline.adapters.counters.memory.MemoryCounters`, holds it to the Python rule.

Calendar math never runs in Lua: Python passes the current day/month keys, the
Retry-After of each window and the TTLs. All of a user's keys share one Cluster hash
tag, a hash of (project, environment, end user) — end user ids are arbitrary strings
and may contain braces themselves.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterator, Sequence
from datetime import datetime
from importlib import resources
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from meterline.adapters.counters._support import (
    MINUTE_MS,
    Windows,
    WindowsMemo,
    cap_nanos,
    from_ms,
    to_ms,
)
from meterline.adapters.counters.script_pipeline import ScriptPipeline, run_together
from meterline.domain.entities import UserKey
from meterline.domain.limits import Allow, Decision, Deny, DenyReason, UsageSnapshot
from meterline.domain.money import from_nanos
from meterline.domain.plans import Limits
from meterline.domain.windows import day_key, month_key
from meterline.ports import (
    AdmitResult,
    CountersUnavailable,
    Reservation,
    SeedNeeded,
    Settlement,
    WindowTotals,
)

#: Failures that mean "Redis cannot be reached" (not a bug in a script).
_UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError)

__all__ = ["RedisCounters"]

#: Keys outlive their window a little, so replicas with skewed clocks still agree.
GRACE_MS = 3_600_000
MINUTE_TTL_MS = MINUTE_MS + 5_000
#: Reservations without an expiry are dropped with their hash after this long idle.
RESERVATION_TTL_MS = 2 * 86_400_000

#: Reason codes returned by admit.lua, in ``exceeded_limits`` order.
_REASONS = {
    1: DenyReason.REQUESTS_PER_MINUTE_EXCEEDED,
    2: DenyReason.DAILY_TOKEN_LIMIT_EXCEEDED,
    3: DenyReason.MONTHLY_TOKEN_LIMIT_EXCEEDED,
    4: DenyReason.DAILY_REQUEST_LIMIT_EXCEEDED,
    5: DenyReason.MONTHLY_REQUEST_LIMIT_EXCEEDED,
    6: DenyReason.DAILY_COST_LIMIT_EXCEEDED,
    7: DenyReason.MONTHLY_COST_LIMIT_EXCEEDED,
}
#: Users whose key prefix is remembered (a few MB at most); then the memo starts over.
_MAX_CACHED_BASES = 50_000
_SEED_NEEDED = -1
_DUPLICATE = -2
_STATE_LEN = 10


def _lua(name: str) -> str:
    here = resources.files(__package__)
    return here.joinpath("common.lua").read_text() + "\n" + here.joinpath(name).read_text()


def _opt(value: object) -> str:
    return "" if value is None else str(value)


def _flag(value: bool) -> str:
    return "1" if value else "0"


def _snapshot(state: list[Any]) -> UsageSnapshot:
    """Build the snapshot from the script's raw figures, summing held amounts exactly."""
    d_req, d_tok, d_cost, m_req, m_tok, m_cost, h_tok, h_cost, n = (int(v) for v in state[:9])
    oldest = state[9]
    return UsageSnapshot(
        daily_tokens=d_tok + h_tok,
        monthly_tokens=m_tok + h_tok,
        daily_requests=d_req,
        monthly_requests=m_req,
        daily_cost=from_nanos(d_cost + h_cost),
        monthly_cost=from_nanos(m_cost + h_cost),
        minute_requests=n,
        minute_oldest=_from_score(oldest) if oldest else None,
        reserved_tokens=h_tok,
        reserved_cost=from_nanos(h_cost),
    )


def _from_score(score: str | bytes) -> datetime:
    """A sorted-set score of whole milliseconds (Redis prints it without exponent)."""
    return from_ms(int(score))


@contextlib.contextmanager
def _reachable() -> Iterator[None]:
    """An unreachable Redis becomes the port's CountersUnavailable, so admission can
    apply the configured failure mode without knowing about Redis."""
    try:
        yield
    except _UNREACHABLE as exc:
        raise CountersUnavailable(f"Redis unreachable: {type(exc).__name__}") from exc


def _merged(items: Sequence[Settlement], w: Windows) -> list[tuple[Settlement, int]]:
    """Fold events without a reservation that a settle treats alike — same user, same
    windows, same rolling-minute instant (or none) — into one call with their request
    count and summed usage: a batch of usage events is mostly a few users' events,
    and each script call costs its packing and its run. Settles of one user commute,
    except through their reservations, which stay one call each."""
    merged: dict[tuple[Any, ...], list[Any]] = {}
    calls: list[tuple[Settlement, int]] = []
    for item in items:
        if item.reservation_id:
            calls.append((item, 1))
            continue
        at_ms = to_ms(item.at)
        minute = at_ms if at_ms > w.now_ms - MINUTE_MS else None
        group = (item.key, w.is_today(at_ms), w.is_this_month(at_ms), minute)
        acc = merged.get(group)
        if acc is None:
            merged[group] = [item, item.tokens, item.cost_nanos, 1]
        else:
            acc[1] += item.tokens
            acc[2] += item.cost_nanos
            acc[3] += 1
    for first, tokens, cost, n in merged.values():
        calls.append((first if n == 1 else Settlement(first.key, first.at, tokens, cost), n))
    return calls


class RedisCounters:
    """:class:`meterline.ports.Counters` on Redis (standalone or Cluster)."""

    def __init__(self, redis: Redis, prefix: str = "ml") -> None:
        if "{" in prefix or "}" in prefix:
            raise ValueError("prefix must not contain braces (it would change the hash tag)")
        self._redis = redis
        self._prefix = prefix
        #: Each user's key prefix (a hash), remembered: a batch settles hundreds of users.
        self._bases: dict[UserKey, str] = {}
        self._windows = WindowsMemo()
        self._admit_lua = redis.register_script(_lua("admit.lua"))
        self._snapshot_lua = redis.register_script(_lua("snapshot.lua"))
        self._seed_lua = redis.register_script(_lua("seed.lua"))
        self._settle_lua = redis.register_script(_lua("settle.lua"))
        self._release_lua = redis.register_script(_lua("release.lua"))
        self._scripts = ScriptPipeline(redis)

    def _base(self, key: UserKey) -> str:
        base = self._bases.get(key)
        if base is None:
            ident = json.dumps([key.project_id, str(key.environment), key.end_user_id])
            tag = hashlib.sha1(ident.encode(), usedforsecurity=False).hexdigest()[:20]
            base = f"{self._prefix}:{{{tag}}}"
            if len(self._bases) >= _MAX_CACHED_BASES:
                self._bases.clear()
            self._bases[key] = base
        return base

    def _keys(self, key: UserKey, w: Windows) -> list[str]:
        base = self._base(key)
        return [
            f"{base}:d:{w.day}",
            f"{base}:m:{w.month}",
            f"{base}:min",
            f"{base}:res",
            f"{base}:rexp",
            f"{base}:idx",
            f"{base}:gen",
        ]

    @staticmethod
    def _head(w: Windows) -> list[str | int]:
        return [w.now_ms, w.day, w.month]

    async def seed_version(self, key: UserKey) -> int:
        name = f"{self._base(key)}:gen"
        with _reachable():
            await self._redis.set(name, 0, nx=True, px=MINUTE_TTL_MS)  # "a seed is under way"
            value = await self._redis.get(name)
        return int(value or 0)

    async def seed(
        self, key: UserKey, totals: WindowTotals, now: datetime, *, version: int | None = None
    ) -> bool:
        w = self._windows.at(now)
        reply = await self._run(
            self._seed_lua,
            keys=self._keys(key, w),
            args=[
                *self._head(w),
                _flag(day_key(totals.day) == w.day),
                _flag(month_key(totals.day) == w.month),
                totals.daily_requests,
                totals.daily_tokens,
                totals.daily_cost_nanos,
                totals.monthly_requests,
                totals.monthly_tokens,
                totals.monthly_cost_nanos,
                w.day_left_ms + GRACE_MS,
                w.month_left_ms + GRACE_MS,
                _opt(version),
            ],
        )
        return int(reply) == 1

    async def snapshot(self, key: UserKey, now: datetime) -> UsageSnapshot:
        w = self._windows.at(now)
        reply = await self._run(
            self._snapshot_lua, keys=self._keys(key, w), args=[*self._head(w), w.now_ms - MINUTE_MS]
        )
        if int(reply[0]) == _SEED_NEEDED:
            raise SeedNeeded
        return _snapshot(reply[1:])

    async def admit(
        self,
        key: UserKey,
        limits: Limits,
        *,
        alert_only: bool,
        now: datetime,
        reservation: Reservation | None = None,
    ) -> AdmitResult:
        w = self._windows.at(now)
        res = reservation or Reservation("")
        if reservation is not None and not reservation.id:
            raise ValueError("reservation id must not be empty")
        expires = -1 if res.expires_at is None else to_ms(res.expires_at)
        res_ttl = max(RESERVATION_TTL_MS, expires - w.now_ms + GRACE_MS)
        reply = await self._run(
            self._admit_lua,
            keys=self._keys(key, w),
            args=[
                *self._head(w),
                w.now_ms - MINUTE_MS,
                w.day_wait,
                w.month_wait,
                _opt(limits.requests_per_minute),
                _opt(limits.daily_token_limit),
                _opt(limits.monthly_token_limit),
                _opt(limits.daily_request_limit),
                _opt(limits.monthly_request_limit),
                _opt(
                    None
                    if limits.daily_cost_limit_usd is None
                    else cap_nanos(limits.daily_cost_limit_usd)
                ),
                _opt(
                    None
                    if limits.monthly_cost_limit_usd is None
                    else cap_nanos(limits.monthly_cost_limit_usd)
                ),
                _flag(alert_only),
                res.id,
                res.tokens,
                res.cost_nanos,
                expires,
                MINUTE_TTL_MS,
                res_ttl,
            ],
        )
        status = int(reply[0])
        if status == _SEED_NEEDED:
            raise SeedNeeded
        if status == _DUPLICATE:
            raise ValueError(f"reservation {res.id!r} is already held")
        usage = _snapshot(reply[1 : 1 + _STATE_LEN])
        flat = [int(v) for v in reply[1 + _STATE_LEN :]]
        exceeded = [
            (_REASONS[code], wait) for code, wait in zip(flat[::2], flat[1::2], strict=True)
        ]
        decision: Decision
        if status == 1:
            decision = Allow(alerts=tuple(reason for reason, _ in exceeded))
        else:
            decision = Deny(exceeded[0][0], max(wait for _, wait in exceeded))
        return AdmitResult(decision, usage)

    async def settle(
        self,
        key: UserKey,
        *,
        now: datetime,
        at: datetime,
        tokens: int,
        cost_nanos: int,
        reservation_id: str | None = None,
    ) -> bool:
        w = self._windows.at(now)
        item = Settlement(key, at, tokens, cost_nanos, reservation_id)
        keys, args = self._settle_call(item, w)
        reply = await self._run(self._settle_lua, keys=keys, args=args)
        return int(reply) == 1

    def _settle_call(
        self, item: Settlement, w: Windows, requests: int = 1
    ) -> tuple[list[str], list[Any]]:
        """The settle script's keys and arguments."""
        at_ms = to_ms(item.at)
        return (
            self._keys(item.key, w),
            [
                *self._head(w),
                item.reservation_id or "",
                item.tokens,
                item.cost_nanos,
                _flag(w.is_today(at_ms)),
                _flag(w.is_this_month(at_ms)),
                at_ms,
                _flag(at_ms > w.now_ms - MINUTE_MS),
                MINUTE_TTL_MS,
                requests,
            ],
        )

    async def settle_many(self, items: Sequence[Settlement], *, now: datetime) -> list[bool]:
        """One pipeline (not a transaction: each script is atomic on its own, and one
        user's keys share a slot) — one round trip for a batch of usage events."""
        if not items:
            return []
        w = self._windows.at(now)
        calls = _merged(items, w)
        with _reachable():
            replies = await run_together(
                self._redis,
                [
                    (self._settle_lua, *self._settle_call(item, w, requests))
                    for item, requests in calls
                ],
            )
        # Calls with a reservation come first, one per item, in item order.
        settled = iter(int(reply) == 1 for (item, _), reply in zip(calls, replies, strict=True))
        return [next(settled) if item.reservation_id else False for item in items]

    async def release(self, key: UserKey, reservation_id: str, *, now: datetime) -> bool:
        w = self._windows.at(now)
        reply = await self._run(
            self._release_lua, keys=self._keys(key, w), args=[*self._head(w), reservation_id]
        )
        return int(reply) == 1

    async def forget(self, key: UserKey) -> None:
        """Delete every key of the user (windows are named by the index set)."""
        base = self._base(key)
        fixed = [f"{base}:{name}" for name in ("min", "res", "rexp", "idx", "gen")]
        with _reachable():
            windows = await self._redis.smembers(f"{base}:idx")
            await self._redis.delete(*fixed, *windows)

    async def _run(self, script: AsyncScript, *, keys: list[str], args: list[Any]) -> Any:
        """Run one script, in a pipeline with those that meet it in flight (an
        unreachable Redis raises CountersUnavailable)."""
        with _reachable():
            return await self._scripts.run(script, keys, args)
