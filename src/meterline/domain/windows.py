"""UTC calendar windows (day, month, rolling minute) and Retry-After arithmetic.

Pure functions of a given ``now``: the domain never reads a clock.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

__all__ = [
    "MINUTE_WINDOW_SECONDS",
    "as_utc",
    "day_key",
    "day_start",
    "month_key",
    "month_start",
    "next_day_start",
    "next_month_start",
    "seconds_until",
]

MINUTE_WINDOW_SECONDS = 60


def as_utc(moment: datetime) -> datetime:
    """Aware UTC datetime; a naive one is taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def day_start(moment: datetime) -> datetime:
    m = as_utc(moment)
    return datetime(m.year, m.month, m.day, tzinfo=UTC)


def next_day_start(moment: datetime) -> datetime:
    return day_start(moment) + timedelta(days=1)


def month_start(moment: datetime) -> datetime:
    m = as_utc(moment)
    return datetime(m.year, m.month, 1, tzinfo=UTC)


def next_month_start(moment: datetime) -> datetime:
    m = as_utc(moment)
    if m.month == 12:
        return datetime(m.year + 1, 1, 1, tzinfo=UTC)
    return datetime(m.year, m.month + 1, 1, tzinfo=UTC)


def day_key(moment: datetime | date) -> str:
    """``YYYY-MM-DD`` of the UTC day: used in counter keys and rollups."""
    if isinstance(moment, datetime):
        moment = as_utc(moment).date()
    return moment.isoformat()


def month_key(moment: datetime | date) -> str:
    if isinstance(moment, datetime):
        moment = as_utc(moment).date()
    return f"{moment.year:04d}-{moment.month:02d}"


def seconds_until(now: datetime, moment: datetime) -> int:
    """Whole seconds from ``now`` until ``moment``, rounded up, never below 1.

    A client told to wait ``n`` seconds must find the window free after ``n``: rounding
    down would send it back a fraction of a second too early.
    """
    delta = (as_utc(moment) - as_utc(now)).total_seconds()
    return max(1, math.ceil(delta))
