"""UTC calendar windows and Retry-After arithmetic (domain/windows.py)."""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meterline.domain.windows import (
    as_utc,
    day_key,
    day_start,
    month_key,
    month_start,
    next_day_start,
    next_month_start,
    seconds_until,
)

SETTINGS = settings(max_examples=300, deadline=None)

utc_moments = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(9998, 12, 1), timezones=st.just(UTC)
)
offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
aware_moments = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(9998, 12, 1), timezones=offsets
)


def u(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, us, tzinfo=UTC)


# ---------------------------------------------------------------- day / month edges


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (u(2024, 3, 15, 12, 30), u(2024, 3, 16)),
        (u(2024, 3, 15), u(2024, 3, 16)),  # exactly midnight: the window is the whole day
        (u(2024, 3, 15, 23, 59, 59, 999999), u(2024, 3, 16)),
        (u(2024, 1, 31, 10), u(2024, 2, 1)),
        (u(2024, 2, 28, 10), u(2024, 2, 29)),  # leap year
        (u(2024, 2, 29, 10), u(2024, 3, 1)),
        (u(2023, 2, 28, 10), u(2023, 3, 1)),
        (u(2100, 2, 28, 10), u(2100, 3, 1)),  # 2100 is not a leap year
        (u(2000, 2, 28, 10), u(2000, 2, 29)),  # 2000 is
        (u(2024, 4, 30, 10), u(2024, 5, 1)),
        (u(2024, 12, 31, 23, 59), u(2025, 1, 1)),
    ],
)
def test_next_day_start(moment: datetime, expected: datetime) -> None:
    assert next_day_start(moment) == expected
    assert next_day_start(moment).tzinfo is UTC


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (u(2024, 3, 15, 12), u(2024, 4, 1)),
        (u(2024, 3, 1), u(2024, 4, 1)),  # first instant of the month
        (u(2024, 1, 31, 23, 59, 59), u(2024, 2, 1)),
        (u(2024, 2, 29, 23), u(2024, 3, 1)),
        (u(2100, 2, 28, 23), u(2100, 3, 1)),
        (u(2024, 11, 30, 12), u(2024, 12, 1)),
        (u(2024, 12, 1), u(2025, 1, 1)),
        (u(2024, 12, 31, 23, 59, 59, 999999), u(2025, 1, 1)),
    ],
)
def test_next_month_start(moment: datetime, expected: datetime) -> None:
    assert next_month_start(moment) == expected
    assert next_month_start(moment).tzinfo is UTC


def test_naive_datetimes_are_utc() -> None:
    naive = datetime(2024, 12, 31, 23, 30)
    assert as_utc(naive) == u(2024, 12, 31, 23, 30)
    assert next_day_start(naive) == u(2025, 1, 1)
    assert next_month_start(naive) == u(2025, 1, 1)
    assert day_key(naive) == "2024-12-31"
    assert month_key(naive) == "2024-12"
    assert seconds_until(naive, u(2025, 1, 1)) == 1800


def test_non_utc_input_is_converted() -> None:
    # 20:00 on Jan 31 in New York-ish (-05:00) is 01:00 on Feb 1 UTC.
    eastern = datetime(2024, 1, 31, 20, 0, tzinfo=timezone(timedelta(hours=-5)))
    assert day_start(eastern) == u(2024, 2, 1)
    assert next_day_start(eastern) == u(2024, 2, 2)
    assert month_start(eastern) == u(2024, 2, 1)
    assert next_month_start(eastern) == u(2024, 3, 1)
    assert day_key(eastern) == "2024-02-01"
    assert month_key(eastern) == "2024-02"
    # 08:00 on Jan 1 in +09:00 is still Dec 31 in UTC.
    tokyo = datetime(2025, 1, 1, 8, 0, tzinfo=timezone(timedelta(hours=9)))
    assert day_key(tokyo) == "2024-12-31"
    assert next_month_start(tokyo) == u(2025, 1, 1)
    assert seconds_until(tokyo, u(2025, 1, 1)) == 3600


def test_keys_of_dates() -> None:
    assert day_key(date(2024, 2, 29)) == "2024-02-29"
    assert month_key(date(2024, 2, 29)) == "2024-02"
    assert month_key(u(999, 1, 5)) == "0999-01"


@SETTINGS
@given(aware_moments)
def test_windows_contain_the_moment(moment: datetime) -> None:
    m = moment.astimezone(UTC)
    assert day_start(moment) <= m < next_day_start(moment)
    assert next_day_start(moment) - day_start(moment) == timedelta(days=1)
    assert month_start(moment) <= day_start(moment)
    assert m < next_month_start(moment)
    assert next_month_start(moment).day == 1
    assert (next_month_start(moment) - month_start(moment)).days == calendar.monthrange(
        m.year, m.month
    )[1]
    assert next_day_start(moment) <= next_month_start(moment)
    for edge in (day_start(moment), next_day_start(moment), next_month_start(moment)):
        assert edge.tzinfo is UTC
        assert (edge.hour, edge.minute, edge.second, edge.microsecond) == (0, 0, 0, 0)
    assert day_key(moment) == m.date().isoformat()
    assert month_key(moment) == f"{m.year:04d}-{m.month:02d}"


@SETTINGS
@given(utc_moments)
def test_naive_equals_utc(moment: datetime) -> None:
    naive = moment.replace(tzinfo=None)
    assert next_day_start(naive) == next_day_start(moment)
    assert next_month_start(naive) == next_month_start(moment)
    assert day_key(naive) == day_key(moment)


# ---------------------------------------------------------------- seconds_until


@pytest.mark.parametrize(
    ("now", "moment", "seconds"),
    [
        (u(2024, 1, 1, 23, 59, 0), u(2024, 1, 2), 60),
        (u(2024, 1, 1, 23, 59, 0, 1), u(2024, 1, 2), 60),  # 59.999999 s → 60
        (u(2024, 1, 1, 23, 59, 59, 999999), u(2024, 1, 2), 1),  # 1 µs → 1
        (u(2024, 1, 1, 23, 59, 58, 500000), u(2024, 1, 2), 2),  # 1.5 s → 2
        (u(2024, 1, 2), u(2024, 1, 2), 1),  # never below 1
        (u(2024, 1, 2, 0, 0, 5), u(2024, 1, 2), 1),  # already past
        (u(2024, 1, 1), u(2024, 1, 2), 86400),
        (u(2024, 2, 1), u(2024, 3, 1), 29 * 86400),
    ],
)
def test_seconds_until_examples(now: datetime, moment: datetime, seconds: int) -> None:
    assert seconds_until(now, moment) == seconds


@SETTINGS
@given(aware_moments, st.timedeltas(min_value=timedelta(days=-40), max_value=timedelta(days=40)))
def test_seconds_until_rounds_up_and_is_at_least_one(now: datetime, delta: timedelta) -> None:
    result = seconds_until(now, now + delta)
    assert isinstance(result, int)
    assert result >= 1
    micros = delta // timedelta(microseconds=1)
    exact_ceiling = -(-micros // 1_000_000)
    assert result == max(1, exact_ceiling)
    # Waiting the advertised time always reaches the moment.
    assert now + timedelta(seconds=result) >= now + delta
