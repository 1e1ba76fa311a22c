"""``DriverStatement``: a SQLAlchemy statement compiled once, run on the DBAPI cursor.

The ledger's SQLite write is the gateway's most frequent statement: every call writes
one event and its three rollups before it answers. SQLAlchemy's execution layer (an
execution context, parameter processing by name, a result object per statement) cost
about half of that transaction's time, more than SQLite itself. Here the statement is
compiled once, for the engine's dialect, and each row is turned into a tuple by the same
bind processors SQLAlchemy would apply, in the compiled order: the SQL text and the
stored values are exactly SQLAlchemy's (a test compares the stored rows), without its
per-execution machinery.

Only for statements whose dialect uses positional parameters (SQLite's ``qmark``);
PostgreSQL's ledger writes already pass a batch as one parameter (``pg_json_rows``).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.sql import ClauseElement

__all__ = ["DriverStatement", "dbapi_cursor"]


class DriverStatement:
    """``DriverStatement(statement, dialect, columns)``: ``statement`` compiled for
    ``dialect`` with a value for each of ``columns`` (an INSERT's column list)."""

    def __init__(self, statement: ClauseElement, dialect: Dialect, columns: Sequence[str]) -> None:
        compiled = statement.compile(dialect=dialect, column_keys=list(columns))
        names = compiled.positiontup  # type: ignore[attr-defined]
        if not names:
            raise ValueError(f"{dialect.name} does not bind parameters by position")
        self.sql = str(compiled)
        self.names: tuple[str, ...] = tuple(names)
        binds = compiled.binds  # type: ignore[attr-defined]
        processors: list[Callable[[Any], Any] | None] = [
            binds[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names
        ]
        # Most columns (text, integers) bind as they are: pick every value in one C call,
        # then convert only the few that have a processor (times, booleans, JSON).
        self._pick = operator.itemgetter(*self.names)
        self._convert = tuple((i, p) for i, p in enumerate(processors) if p is not None)

    def parameters(self, row: Mapping[str, Any]) -> list[Any]:
        """``row`` (values by column name) as the positional parameters of the SQL."""
        values = list(self._pick(row)) if len(self.names) > 1 else [self._pick(row)]
        for index, process in self._convert:
            values[index] = process(values[index])
        return values

    def execute_each(self, cursor: Any, rows: Iterable[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
        """Run the statement once per row; the rows it returns (RETURNING), in order.
        (``executemany`` cannot return rows.)"""
        returned: list[tuple[Any, ...]] = []
        for row in rows:
            cursor.execute(self.sql, self.parameters(row))
            returned.extend(cursor.fetchall())
        return returned

    def execute_many(self, cursor: Any, rows: Iterable[Mapping[str, Any]]) -> None:
        """Run the statement for every row (a statement that returns nothing)."""
        cursor.executemany(self.sql, [self.parameters(row) for row in rows])


def dbapi_cursor(conn: Connection) -> Any:
    """A DBAPI cursor on ``conn``'s connection, inside its current transaction (the
    pysqlite connection in the SQLite writer's thread; aiosqlite's adapted connection
    when the work runs through ``AsyncConnection.run_sync``)."""
    return conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
