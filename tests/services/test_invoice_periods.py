"""The invoice period rules at their edges: a period may be one day and at most 366 days;
a month is 01 to 12 of a year from 1."""

from __future__ import annotations

from datetime import date

import pytest

from meterline.services.errors import Invalid
from meterline.services.invoicing import MAX_PERIOD_DAYS, month_period, parse_period


def test_a_period_of_one_day_is_allowed() -> None:
    assert parse_period("2026-11-28", "2026-11-28") == (date(2026, 11, 28), date(2026, 11, 28))


def test_a_period_ending_before_it_starts_is_refused() -> None:
    with pytest.raises(Invalid, match="before period_start"):
        parse_period("2026-11-28", "2026-11-27")


def test_a_period_spans_at_most_366_days() -> None:
    assert MAX_PERIOD_DAYS == 366
    assert parse_period("2024-01-01", "2024-12-31")[1] == date(2024, 12, 31)  # 366 days
    with pytest.raises(Invalid, match="at most 366 days"):
        parse_period("2024-01-01", "2025-01-01")  # 367 days


@pytest.mark.parametrize(
    ("text", "period"),
    [
        ("2026-01", (date(2026, 1, 1), date(2026, 1, 31))),
        ("2026-12", (date(2026, 12, 1), date(2026, 12, 31))),
        ("2024-02", (date(2024, 2, 1), date(2024, 2, 29))),
        (" 0001-02 ", (date(1, 2, 1), date(1, 2, 28))),
    ],
)
def test_months(text: str, period: tuple[date, date]) -> None:
    assert month_period(text) == period


@pytest.mark.parametrize("text", ["2026-00", "2026-13", "0000-05", "2026-1", "26-01", "2026/01"])
def test_bad_months_are_refused(text: str) -> None:
    with pytest.raises(Invalid, match="YYYY-MM"):
        month_period(text)
