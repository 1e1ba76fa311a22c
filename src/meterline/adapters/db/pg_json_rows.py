"""Bulk writes for PostgreSQL: a batch of rows as one JSON parameter.

A multi-row ``INSERT`` through SQLAlchemy processes every parameter of every row in
Python (about 25 per ledger row), and asyncpg's array encoding of column arrays checks
every element's type in Python too. Here a batch is one JSON document, serialised in C by
orjson, that PostgreSQL turns back into rows of the table's own type with
``json_populate_recordset`` (each value converted as its column's input, a JSON object
kept as is for a ``json`` column). Rows keep their order (``WITH ORDINALITY … ORDER BY``),
so callers that sort their rows still take row locks in one global order.

The SQL is generated from the table and column names, so it follows the schema.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

import orjson
from sqlalchemy import Table, TextClause, text

__all__ = ["add_excluded", "batch_rows_sql", "json_rows", "json_upsert", "quoted"]


def quoted(names: Sequence[str]) -> str:
    """Column names, quoted, comma-separated."""
    return ", ".join(f'"{name}"' for name in names)


def add_excluded(table_name: str, add: Sequence[str]) -> str:
    """The ``SET`` list of an ``ON CONFLICT DO UPDATE`` that adds each of ``add``'s
    incoming values to the stored one."""
    return ", ".join(f'"{n}" = "{table_name}"."{n}" + EXCLUDED."{n}"' for n in add)


def batch_rows_sql(table: Table, columns: Sequence[str]) -> str:
    """``SELECT columns`` of the rows in the ``rows`` parameter (see :func:`json_rows`),
    as rows of ``table``, in the parameter's order."""
    return (
        f"SELECT {quoted(columns)} "  # noqa: S608 - schema names
        f'FROM json_populate_recordset(NULL::"{table.name}", CAST(:rows AS json)) '
        "WITH ORDINALITY AS batch ORDER BY batch.ordinality"
    )


def _insert_select(table: Table, columns: Sequence[str]) -> str:
    return f'INSERT INTO "{table.name}" ({quoted(columns)}) {batch_rows_sql(table, columns)}'


def json_upsert(
    table: Table, columns: Sequence[str], *, conflict: Sequence[str], add: Sequence[str]
) -> TextClause:
    """``INSERT … ON CONFLICT (conflict) DO UPDATE SET col = col + EXCLUDED.col`` for the
    ``add`` columns. The rows must not repeat a conflict key (PostgreSQL refuses to update
    one row twice in one statement)."""
    return text(
        f"{_insert_select(table, columns)} ON CONFLICT ({quoted(conflict)}) "
        f"DO UPDATE SET {add_excluded(table.name, add)}"
    )


def _iso(value: Any) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def json_rows(objects: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """The parameters of a statement above: rows by column name, as one JSON array of
    objects. Datetimes must be aware (they are sent with their offset)."""
    try:
        return {"rows": orjson.dumps(objects).decode()}
    except orjson.JSONEncodeError:  # e.g. an integer beyond 64 bits inside metadata
        return {"rows": json.dumps(objects, default=_iso)}
