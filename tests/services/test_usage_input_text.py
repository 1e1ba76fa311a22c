"""A text field of a usage event is refused exactly when the plain rule says so: not a
string, empty or only whitespace, too long, or holding a control character (U+0000 to
U+001F; DEL and other non-printable characters are allowed)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meterline.services.errors import Invalid
from meterline.services.usage_input import _text

MAX = 20


def plain_rule(value: Any) -> str | None:
    """None if accepted, else what is wrong (the definition, written the obvious way)."""
    if not isinstance(value, str) or not value.strip():
        return "non-empty"
    if len(value) > MAX:
        return "at most"
    if re.search("[\x00-\x1f]", value):
        return "control"
    return None


@given(
    st.one_of(
        st.text(max_size=25),
        st.text(
            alphabet=" \t\n\x0b\x0c\r\x1c\x1d\x1e\x1f\x85\xa0\u2028\u3000\x7f\x00a", max_size=6
        ),
        st.integers(),
        st.none(),
    )
)
def test_text_fields_follow_the_plain_rule(value: Any) -> None:
    expected = plain_rule(value)
    if value is None:
        assert _text({"f": value}, "f", max_len=MAX) is None
        return
    if expected is None:
        assert _text({"f": value}, "f", max_len=MAX) == value
    else:
        with pytest.raises(Invalid, match=expected):
            _text({"f": value}, "f", max_len=MAX)


def test_examples() -> None:
    assert _text({"f": "fine \x7f é"}, "f", max_len=MAX) == "fine \x7f é"
    for bad in ("", "   ", "\u3000", "tab\there", "a\x1fb"):
        with pytest.raises(Invalid):
            _text({"f": bad}, "f", max_len=MAX)
