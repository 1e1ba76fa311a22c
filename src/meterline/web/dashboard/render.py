"""Templates, display filters and the server-rendered SVG charts of the dashboard."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape

from meterline.domain.money import minor_unit_exponent, money_str

__all__ = ["bar_chart", "money_display", "templates"]

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))


def money_display(amount: Decimal | None) -> str:
    """For people: cents from $1 up, four decimals below (the exact value is in a title)."""
    if amount is None:
        return "—"
    places = Decimal("0.01") if abs(amount) >= 1 else Decimal("0.0001")
    rounded = amount.quantize(places, rounding=ROUND_HALF_UP)
    return f"${rounded:,}"


def money_exact(amount: Decimal | None) -> str:
    """The management API's string for the same amount."""
    return "" if amount is None else money_str(amount)


def number(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def percent(part: Decimal, whole: Decimal) -> str:
    if not whole:
        return "—"
    return f"{(part * 100 / whole).quantize(Decimal('0.1'), rounding=ROUND_HALF_UP)}%"


def _px(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def bar_chart(
    points: Sequence[tuple[date, Decimal, Decimal]],
    *,
    label: str,
    first: date,
    last: date,
    width: int = 720,
    height: int = 200,
    money: bool = True,
) -> Markup:
    """One bar per day from ``first`` to ``last`` (value), with an inner darker bar
    (secondary: provider cost). Days without data are zero. Accessible: role=img and a
    text summary."""
    by_day = {d: (v, s) for d, v, s in points}
    days = [date.fromordinal(o) for o in range(first.toordinal(), last.toordinal() + 1)]
    if not days:
        days = [first]
    peak = max([by_day.get(d, (Decimal(0), Decimal(0)))[0] for d in days] + [Decimal(0)])
    left, bottom, top = 56, 24, 10
    plot_w = Decimal(width - left - 8)
    plot_h = Decimal(height - bottom - top)
    slot = plot_w / len(days)
    bar_w = max(slot * Decimal("0.7"), Decimal(1))
    parts: list[str] = []
    total = Decimal(0)
    for i, day in enumerate(days):
        value, secondary = by_day.get(day, (Decimal(0), Decimal(0)))
        total += value
        x = Decimal(left) + slot * i + (slot - bar_w) / 2
        for amount, cls in ((value, "bar"), (min(secondary, value or secondary), "bar2")):
            if not amount or not peak:
                continue
            h = plot_h * amount / peak
            y = Decimal(top) + plot_h - h
            shown = money_display(amount) if money else number(int(amount))
            parts.append(
                f'<rect class="{cls}" x="{_px(x)}" y="{_px(y)}" width="{_px(bar_w)}" '
                f'height="{_px(h)}"><title>{day.isoformat()}: {escape(shown)}</title></rect>'
            )
    peak_label = money_display(peak) if money else number(int(peak))
    axis = (
        f'<line class="axis" x1="{left}" y1="{top + plot_h}" x2="{width - 8}" '
        f'y2="{top + plot_h}"/>'
        f'<text x="{left - 6}" y="{top + 10}" text-anchor="end">{escape(peak_label)}</text>'
        f'<text x="{left - 6}" y="{top + plot_h}" text-anchor="end">0</text>'
        f'<text x="{left}" y="{height - 6}">{first.isoformat()}</text>'
        f'<text x="{width - 8}" y="{height - 6}" text-anchor="end">{last.isoformat()}</text>'
    )
    summary = f"{label}: {len(days)} days, peak {peak_label}"
    return Markup(  # noqa: S704 (every interpolated text is escaped above)
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(summary)}" preserveAspectRatio="none">'
        f"<title>{escape(summary)}</title>{axis}{''.join(parts)}</svg>"
    )


def minor_units(amount: int, currency: str) -> str:
    """An invoice total in minor units as the currency writes it (USD 1234 → 12.34,
    JPY 1234 → 1234), exactly: no float on the way."""
    exp = minor_unit_exponent(currency)
    return f"{Decimal(amount).scaleb(-exp):.{exp}f}"


def _globals() -> dict[str, Any]:
    return {
        "minor_units": minor_units,
        "money": money_display,
        "money_exact": money_exact,
        "number": number,
        "percent": percent,
    }


templates.env.globals.update(_globals())
