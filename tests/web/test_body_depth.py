"""The nesting depth that ``read_json`` refuses past ``MAX_DEPTH``, against a plain
recursive definition."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from meterline.web.body import MAX_DEPTH, _depth


def reference_depth(value: Any) -> int:
    if isinstance(value, dict):
        value = list(value.values())
    elif not isinstance(value, list):
        return 0
    return 1 + max((reference_depth(v) for v in value), default=0)


scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=3)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=2), inner, max_size=4)
    ),
    max_leaves=40,
)


def wrapped(levels: int, inner: Any = 1) -> Any:
    for n in range(levels):
        inner = [inner] if n % 2 else {"k": inner, "flat": 1}
    return inner


@given(json_values)
def test_depth_is_the_recursive_definition(value: Any) -> None:
    assert _depth(value) == min(reference_depth(value), MAX_DEPTH + 1)


@given(st.integers(min_value=0, max_value=80), json_values)
def test_deep_values_are_cut_just_past_the_limit(levels: int, inner: Any) -> None:
    value = wrapped(levels, inner)
    assert _depth(value) == min(reference_depth(value), MAX_DEPTH + 1)
    assert (_depth(value) > MAX_DEPTH) == (reference_depth(value) > MAX_DEPTH)


def test_examples() -> None:
    assert [_depth(v) for v in (1, "x", [], {}, [{}], {"a": [1, [2]]}, [[[]]])] == [
        0,
        0,
        1,
        1,
        2,
        3,
        3,
    ]
    assert _depth(wrapped(MAX_DEPTH)) == MAX_DEPTH
    assert _depth(wrapped(MAX_DEPTH + 1)) == MAX_DEPTH + 1
    assert _depth(wrapped(500)) == MAX_DEPTH + 1
