"""``DriverStatement`` stores exactly what SQLAlchemy's own execution of the same
statement stores: the ledger's SQLite writes skip SQLAlchemy's execution layer, so the
bytes on disk (and every later read of them) must not change.

Each example writes the same rows twice, into two fresh databases: once with
``Connection.execute`` and once through the driver statement, then compares what SQLite
holds, read with the bare ``sqlite3`` module (no type conversion: a text date and an
integer differ).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Engine

from meterline.adapters.db import tables as t
from meterline.adapters.db.driver_statements import DriverStatement, dbapi_cursor
from meterline.adapters.db.rollups import ROLLUP_KEY, ROLLUP_SUMS

_EVENT_KEY = ["project_id", "environment", "event_id"]

text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)
optional_text = st.none() | text
big = st.integers(min_value=-(2**63), max_value=2**63 - 1)
optional_big = st.none() | big
zones = st.sampled_from(
    [None, UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8))]
)
moments = st.builds(
    lambda moment, zone: moment.replace(tzinfo=zone),
    st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2200, 1, 1)),
    zones,
)
json_values = st.recursive(
    st.none() | st.booleans() | big | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=8,
)


@st.composite
def event_rows(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "id": draw(text),
        "project_id": "prj_1",
        "environment": draw(st.sampled_from(["live", "test"])),
        "event_id": draw(text),
        "end_user_id": draw(optional_text),
        "timestamp": draw(moments),
        "model": draw(optional_text),
        "provider": draw(optional_text),
        "prompt_tokens": draw(big),
        "completion_tokens": draw(big),
        "total_tokens": draw(big),
        "cached_tokens": draw(big),
        "priced": draw(st.booleans()),
        "estimated": draw(st.booleans()),
        "provider_cost_nanos": draw(optional_big),
        "markup_nanos": draw(optional_big),
        "flat_fee_nanos": draw(optional_big),
        "charge_nanos": draw(optional_big),
        "latency_ms": draw(st.none() | st.integers(0, 10**9)),
        "status": draw(st.sampled_from(["success", "error"])),
        "metadata": draw(st.none() | st.dictionaries(text, json_values, max_size=3)),
        "reservation_id": draw(optional_text),
        "fingerprint": draw(text),
        "source": draw(st.sampled_from(["gateway", "api"])),
        "recorded_at": draw(moments),
    }


@st.composite
def rollup_rows(draw: st.DrawFn) -> dict[str, Any]:
    key = {
        "project_id": "prj_1",
        "environment": draw(st.sampled_from(["live", "test"])),
        "end_user_id": draw(st.sampled_from(["", "u1", "ü2"])),
        "model": draw(st.sampled_from(["", "gpt-4o"])),
        "provider": "openai",
        "day": draw(st.dates(min_value=date(1970, 1, 1), max_value=date(2200, 1, 1))),
    }
    sums = {name: draw(st.integers(-(2**40), 2**40)) for name in ROLLUP_SUMS}
    return {**key, **sums}


@pytest.fixture
def engines(tmp_path: Path) -> Iterator[Callable[[], tuple[Engine, Path]]]:
    made: list[Engine] = []

    def fresh() -> tuple[Engine, Path]:
        path = tmp_path / f"db{len(made)}.sqlite"
        engine = create_engine(f"sqlite:///{path}")
        t.metadata.create_all(engine, tables=[t.usage_events, t.usage_daily_rollups])
        made.append(engine)
        return engine, path

    yield fresh
    for engine in made:
        engine.dispose()


def _stored(path: Path, table: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as raw:
        return raw.execute(f"SELECT * FROM {table} ORDER BY rowid").fetchall()


def _unique(rows: list[dict[str, Any]], key: list[str]) -> list[dict[str, Any]]:
    seen: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        seen.setdefault(tuple(row[k] for k in key), row)
    return list(seen.values())


SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@SETTINGS
@given(rows=st.lists(event_rows(), min_size=1, max_size=6))
def test_an_event_insert_stores_what_sqlalchemy_stores_and_returns_the_inserted_keys(
    engines: Callable[[], tuple[Engine, Path]], rows: list[dict[str, Any]]
) -> None:
    rows = _unique(_unique(rows, ["id"]), _EVENT_KEY)
    statement = (
        sqlite.insert(t.usage_events)
        .on_conflict_do_nothing(index_elements=_EVENT_KEY)
        .returning(t.usage_events.c.project_id, t.usage_events.c.event_id)
    )
    by_sqlalchemy, path_a = engines()
    with by_sqlalchemy.begin() as conn:
        expected = [tuple(r) for r in conn.execute(statement, rows[:1]).all()]
        expected += [tuple(r) for row in rows[1:] for r in conn.execute(statement, row).all()]
    driver = DriverStatement(statement, by_sqlalchemy.dialect, list(t.usage_events.c.keys()))
    by_driver, path_b = engines()
    with by_driver.begin() as conn:
        returned = driver.execute_each(dbapi_cursor(conn), rows)
        assert driver.execute_each(dbapi_cursor(conn), rows[:1]) == []  # conflict: no row
    assert returned == expected == [("prj_1", row["event_id"]) for row in rows]
    assert _stored(path_b, "usage_events") == _stored(path_a, "usage_events")


@SETTINGS
@given(rows=st.lists(rollup_rows(), min_size=1, max_size=6))
def test_a_rollup_upsert_stores_what_sqlalchemy_stores_inserting_and_adding(
    engines: Callable[[], tuple[Engine, Path]], rows: list[dict[str, Any]]
) -> None:
    rows = _unique(rows, list(ROLLUP_KEY))
    table = t.usage_daily_rollups
    insert = sqlite.insert(table)
    statement = insert.on_conflict_do_update(
        index_elements=list(ROLLUP_KEY),
        set_={name: table.c[name] + insert.excluded[name] for name in ROLLUP_SUMS},
    )
    by_sqlalchemy, path_a = engines()
    with by_sqlalchemy.begin() as conn:
        conn.execute(statement, rows)
        conn.execute(statement, rows[::-1])  # every row again: the update path
    driver = DriverStatement(statement, by_sqlalchemy.dialect, [*ROLLUP_KEY, *ROLLUP_SUMS])
    by_driver, path_b = engines()
    with by_driver.begin() as conn:
        driver.execute_many(dbapi_cursor(conn), rows)
        driver.execute_many(dbapi_cursor(conn), rows[::-1])
    stored = _stored(path_b, "usage_daily_rollups")
    assert stored == _stored(path_a, "usage_daily_rollups")
    assert len(stored) == len(rows)


def test_a_dialect_with_named_parameters_is_refused() -> None:
    from sqlalchemy.dialects import postgresql

    with pytest.raises(ValueError, match="by position"):
        DriverStatement(
            postgresql.insert(t.usage_daily_rollups), postgresql.dialect(), list(ROLLUP_KEY)
        )
