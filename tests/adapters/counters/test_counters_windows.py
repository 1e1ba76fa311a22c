"""``Windows.is_today``/``is_this_month`` (integer bounds) agree with the calendar keys
the counters were defined by, for any instant and any ``now``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from meterline.adapters.counters._support import Windows, to_ms
from meterline.domain.windows import day_key, month_key

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


def w_edge(now: datetime) -> datetime:
    """Midnight of ``now``'s day: offsets from it land on day and month edges."""
    return now.replace(hour=0, minute=0, second=0, microsecond=0)
