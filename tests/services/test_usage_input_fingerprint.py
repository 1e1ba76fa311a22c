"""An event's fingerprint tells a replay from a conflict, across releases: its canonical
text must stay exactly the stdlib text it has always been, whatever the payload."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from meterline.services.usage_input import canonical_json, parse_event


def _stdlib(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str).encode()


_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),  # beyond orjson's 64 bits too
    st.text(max_size=12),  # control characters, DEL, quotes, backslashes, non-ASCII
    st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=12),
)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(st.dictionaries(st.text(max_size=8), _JSON, max_size=8))
def test_canonical_text_is_the_stdlib_text(value: dict[str, Any]) -> None:
    assert canonical_json(value) == _stdlib(value)


def test_the_usual_event_takes_the_fast_path_and_matches() -> None:
    now = datetime(2026, 11, 27, tzinfo=UTC)
    event = parse_event(
        {"end_user_id": "u_1", "model": "gpt-4o", "prompt_tokens": 10, "metadata": {"a": [1]}},
        now=now,
    )
    other = parse_event(
        {"end_user_id": "u_1", "model": "gpt-4o", "prompt_tokens": 11, "metadata": {"a": [1]}},
        now=now,
    )
    assert (
        event.fingerprint()
        == parse_event(
            {"end_user_id": "u_1", "model": "gpt-4o", "prompt_tokens": 10, "metadata": {"a": [1]}},
            now=now,
        ).fingerprint()
    )
    assert event.fingerprint() != other.fingerprint()


def test_values_only_str_can_write_take_the_stdlib_path() -> None:
    class Kind(StrEnum):
        CHAT = "chat"

    for value in (
        {"b": Decimal("1.5"), "a": "é\x7f"},
        {"at": datetime(2026, 11, 27, 9, 30, tzinfo=UTC)},  # str(): a space, not a "T"
        {"kind": Kind.CHAT},
    ):
        assert canonical_json(value) == _stdlib(value)
