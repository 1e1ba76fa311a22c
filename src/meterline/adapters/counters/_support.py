"""Time and money conversions shared by the in-process and Redis counters.

Both adapters must reach identical decisions (a contract suite holds them to it), so
every rounding choice lives here once: admission times are kept in whole epoch
milliseconds (what a Redis sorted-set score holds exactly), reservation expiry is
compared in milliseconds, and a ``Decimal`` cost cap becomes the smallest whole number
of nano-dollars that reaches it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_CEILING, Decimal

from meterline.domain.money import CTX
from meterline.domain.windows import (
    MINUTE_WINDOW_SECONDS,
    as_utc,
    day_key,
    day_start,
    month_key,
    month_start,
    next_day_start,
    next_month_start,
)

__all__ = [
    "MINUTE_MS",
    "Windows",
    "WindowsMemo",
    "cap_nanos",
    "from_ms",
    "to_ms",
]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)
_ONE_US = timedelta(microseconds=1)
MINUTE_MS = MINUTE_WINDOW_SECONDS * 1000


def to_ms(moment: datetime) -> int:
    """Whole epoch milliseconds, rounded down (exact integer arithmetic, no float)."""
    return (as_utc(moment) - EPOCH) // _ONE_MS


def from_ms(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)


def cap_nanos(cap: Decimal) -> int:
    """The least integer ``n`` with ``from_nanos(n) >= cap``.

    ``used >= cap`` on Decimals is ``used_nanos >= cap_nanos(cap)`` on integers, even
    for caps finer than a nano-dollar; rounding to nearest would break that.
    """
    return int(cap.scaleb(9, context=CTX).to_integral_value(rounding=ROUND_CEILING))


@dataclass(frozen=True, slots=True)
class Windows:
    """The current day and month of ``now`` with the figures both adapters need.

    Calendar math stays in Python; the Lua scripts receive these as arguments.
    """

    now_ms: int
    day: str
    month: str
    #: Retry-After when a day/month limit is hit (as ``domain.limits`` computes it).
    day_wait: int
    month_wait: int
    #: Milliseconds from ``now`` until the window ends.
    day_left_ms: int
    month_left_ms: int
    #: The current day's and month's bounds in epoch milliseconds, [start, end): an
    #: instant's windows by two integer comparisons (see ``is_today``/``is_this_month``).
    day_start_ms: int
    day_end_ms: int
    month_start_ms: int
    month_end_ms: int

    def is_today(self, at_ms: int) -> bool:
        """``day_key(at) == self.day`` for ``at_ms = to_ms(at)`` (bounds are whole ms)."""
        return self.day_start_ms <= at_ms < self.day_end_ms

    def is_this_month(self, at_ms: int) -> bool:
        return self.month_start_ms <= at_ms < self.month_end_ms

    @classmethod
    def at(cls, now: datetime) -> Windows:
        """The windows of ``now`` (:class:`WindowsMemo` remembers the calendar part)."""
        now = as_utc(now)
        return _Calendar.of(now).windows(_to_us(now))


def _to_us(moment: datetime) -> int:
    """Whole epoch microseconds of an aware datetime (all a ``datetime`` holds)."""
    return (moment - EPOCH) // _ONE_US


@dataclass(frozen=True, slots=True)
class _Calendar:
    """The UTC day of an instant and its month, bounds in epoch microseconds."""

    day: str
    month: str
    day_start_us: int
    day_end_us: int
    month_start_us: int
    month_end_us: int

    @classmethod
    def of(cls, now: datetime) -> _Calendar:
        """The calendar of an aware UTC ``now``."""
        return cls(
            day=day_key(now),
            month=month_key(now),
            day_start_us=_to_us(day_start(now)),
            day_end_us=_to_us(next_day_start(now)),
            month_start_us=_to_us(month_start(now)),
            month_end_us=_to_us(next_month_start(now)),
        )

    def contains(self, now_us: int) -> bool:
        return self.day_start_us <= now_us < self.day_end_us

    def windows(self, now_us: int) -> Windows:
        """The windows of the instant ``now_us`` of this calendar's day, by integer
        arithmetic (a property test holds them to the ``domain.windows`` definitions)."""
        day_left_us = self.day_end_us - now_us
        month_left_us = self.month_end_us - now_us
        return Windows(
            now_ms=now_us // 1000,
            day=self.day,
            month=self.month,
            # seconds_until: whole seconds rounded up, never below 1
            day_wait=max(1, -(-day_left_us // 1_000_000)),
            month_wait=max(1, -(-month_left_us // 1_000_000)),
            day_left_ms=max(1, day_left_us // 1000),
            month_left_ms=max(1, month_left_us // 1000),
            day_start_ms=self.day_start_us // 1000,
            day_end_ms=self.day_end_us // 1000,
            month_start_ms=self.month_start_us // 1000,
            month_end_ms=self.month_end_us // 1000,
        )


class WindowsMemo:
    """:meth:`Windows.at` with the calendar of the last day seen remembered.

    Every admission and settle needs the windows of "now"; the calendar part (keys and
    bounds of the day and month) changes once a day, so only the offsets from ``now`` are
    computed per call. One per counters adapter: no state shared between instances.
    """

    __slots__ = ("_calendar",)

    def __init__(self) -> None:
        self._calendar: _Calendar | None = None

    def at(self, now: datetime) -> Windows:
        now = as_utc(now)
        now_us = _to_us(now)
        cal = self._calendar
        if cal is None or not cal.contains(now_us):
            cal = self._calendar = _Calendar.of(now)
        return cal.windows(now_us)
