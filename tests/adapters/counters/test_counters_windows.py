"""``Windows.is_today``/``is_this_month`` (integer bounds) agree with the calendar keys
the counters were defined by, for any instant and any ``now``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from meterline.adapters.counters._support import Windows, WindowsMemo, to_ms
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

_INSTANTS = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
#: Near a boundary is where an off-by-one would show: up to two months either way,
#: biased towards whole days and a millisecond off them.
_OFFSETS = st.one_of(
    st.timedeltas(min_value=timedelta(days=-62), max_value=timedelta(days=62)),
    st.integers(-62, 62).map(lambda d: timedelta(days=d)),
    st.sampled_from([timedelta(milliseconds=-1), timedelta(0), timedelta(microseconds=999)]),
)


@given(_INSTANTS, _OFFSETS)
def test_bounds_agree_with_calendar_keys(now: datetime, offset: timedelta) -> None:
    w = Windows.at(now)
    for at in (now + offset, w_edge(now) + offset):
        at_ms = to_ms(at)
        assert w.is_today(at_ms) == (day_key(at) == w.day)
        assert w.is_this_month(at_ms) == (month_key(at) == w.month)


@given(_INSTANTS, _OFFSETS)
def test_windows_are_the_domain_calendar_of_now(now: datetime, offset: timedelta) -> None:
    """Every figure, computed by integer arithmetic on microseconds, is what the
    ``domain.windows`` definitions give (Retry-After by ``seconds_until`` as
    ``exceeded_limits`` computes it; bounds and offsets in whole milliseconds)."""
    now = as_utc(now + offset + timedelta(microseconds=offset.microseconds % 997))
    day_end, month_end = next_day_start(now), next_month_start(now)
    assert Windows.at(now) == Windows(
        now_ms=to_ms(now),
        day=day_key(now),
        month=month_key(now),
        day_wait=seconds_until(now, day_end),
        month_wait=seconds_until(now, month_end),
        day_left_ms=max(1, (day_end - now) // timedelta(milliseconds=1)),
        month_left_ms=max(1, (month_end - now) // timedelta(milliseconds=1)),
        day_start_ms=to_ms(day_start(now)),
        day_end_ms=to_ms(day_end),
        month_start_ms=to_ms(month_start(now)),
        month_end_ms=to_ms(month_end),
    )


def w_edge(now: datetime) -> datetime:
    """Midnight of ``now``'s day: offsets from it land on day and month edges."""
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


#: Any time zone (naive means UTC), so a memo fed local times still keys by UTC day.
_ZONES = st.one_of(
    st.just(UTC),
    st.none(),
    st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m))),
)


@given(
    st.datetimes(min_value=datetime(2000, 1, 2), max_value=datetime(2099, 12, 30)),
    st.lists(_OFFSETS, min_size=1, max_size=12),
    st.lists(_ZONES, min_size=1, max_size=12),
)
def test_memo_gives_the_same_windows_as_windows_at(
    start: datetime, offsets: list[timedelta], zones: list[timezone | None]
) -> None:
    """One memo asked about a run of instants (same day, the next millisecond, other days
    and months, back in time, in any zone) answers exactly what ``Windows.at`` does."""
    memo = WindowsMemo()
    for i, offset in enumerate(offsets):
        zone = zones[i % len(zones)]
        utc = (start + offset).replace(tzinfo=UTC)
        now = utc.replace(tzinfo=None) if zone is None else utc.astimezone(zone)
        assert memo.at(now) == Windows.at(now)
