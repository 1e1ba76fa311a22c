"""PostgreSQL's ledger write as one statement: the events and their three rollups.

A batch was a transaction of six round trips (BEGIN, the events, the fine, per-user and
per-project rollups, COMMIT). Here the same writes are the data-modifying parts of one
statement, run outside an explicit transaction, so PostgreSQL commits it as one unit: one
round trip and one commit per batch.

- The events go in with ``ON CONFLICT DO NOTHING`` (the idempotency guard) and return
  the rows actually inserted; the rollups are summed from those rows only, so a replay
  adds nothing and a rollup still equals the sum of its events.
- A row's contribution is :func:`meterline.adapters.db.ledger_rows.add_row_delta`
  written in SQL (:data:`DELTA_KEY`, :data:`DELTA_SUMS`); a test holds the two to the
  same sums on random events.
- Lock order is kept: events in key order, then fine, per-user and per-project rows,
  each in key order. Each upsert reads a count of the one before it, so PostgreSQL must
  run it to completion first, and every writer takes its row locks table by table in
  the order the transaction of six round trips took them.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import TextClause, text

from meterline.adapters.db import tables as t
from meterline.adapters.db.coarse_rollups import PROJECT_KEY, USER_KEY
from meterline.adapters.db.pg_json_rows import add_excluded, batch_rows_sql, quoted
from meterline.adapters.db.rollups import ROLLUP_KEY

__all__ = ["DELTA_KEY", "DELTA_SUMS", "ledger_write"]

#: The fine rollup key (``ROLLUP_KEY``) of an inserted event row (``add_row_delta``'s key).
DELTA_KEY = {
    "project_id": '"project_id"',
    "environment": '"environment"',
    "end_user_id": "COALESCE(\"end_user_id\", '')",
    "model": "COALESCE(\"model\", '')",
    "provider": "COALESCE(\"provider\", '')",
    "day": "(\"timestamp\" AT TIME ZONE 'UTC')::date",
}
#: Each rollup sum over a group of inserted event rows (``add_row_delta``'s delta).
DELTA_SUMS = {
    "requests": "COUNT(*)",
    "prompt_tokens": 'SUM("prompt_tokens")',
    "completion_tokens": 'SUM("completion_tokens")',
    "total_tokens": 'SUM("total_tokens")',
    "provider_cost_nanos": 'SUM(COALESCE("provider_cost_nanos", 0))',
    "markup_nanos": 'SUM(COALESCE("markup_nanos", 0))',
    "charge_nanos": 'SUM(COALESCE("charge_nanos", 0))',
    "unpriced_requests": 'COUNT(*) FILTER (WHERE NOT "priced")',
}

#: What the rollups need of an inserted row, and its key.
_RETURNED = (
    *t.USAGE_EVENT_KEY,
    "end_user_id",
    "model",
    "provider",
    "timestamp",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "provider_cost_nanos",
    "markup_nanos",
    "charge_nanos",
    "priced",
)


def _upsert(table: str, key: Sequence[str], source: str, after: str | None) -> str:
    """Add the sums of ``source`` grouped by ``key`` to ``table``, in key order; after
    the CTE ``after`` has run whole (a count of it is read first)."""
    sums = ", ".join(f'SUM("{s}")' for s in t.ROLLUP_SUM_COLUMNS)
    gate = f"WHERE (SELECT COUNT(*) FROM {after}) >= 0 " if after else ""  # noqa: S608
    return (
        f'INSERT INTO "{table}" ({quoted((*key, *t.ROLLUP_SUM_COLUMNS))}) '  # noqa: S608
        f"SELECT {quoted(key)}, {sums} FROM {source} {gate}"
        f"GROUP BY {quoted(key)} ORDER BY {quoted(key)} "
        f"ON CONFLICT ({quoted(key)}) "
        f"DO UPDATE SET {add_excluded(table, t.ROLLUP_SUM_COLUMNS)} RETURNING 1"
    )


def ledger_write(columns: Sequence[str]) -> TextClause:
    """The statement: the ``rows`` parameter (``pg_json_rows.json_rows``, every one of
    ``columns`` of ``usage_events``, in lock order) inserted with its rollups; it returns
    the (project_id, environment, event_id) of the rows inserted."""
    fine = ", ".join(
        f'{sql} AS "{name}"' for name, sql in (*DELTA_KEY.items(), *DELTA_SUMS.items())
    )
    return text(
        "WITH inserted AS ("  # noqa: S608 - table and column names from the schema
        f'INSERT INTO "usage_events" ({quoted(columns)}) '
        f"{batch_rows_sql(t.usage_events, columns)} "
        f"ON CONFLICT ({quoted(t.USAGE_EVENT_KEY)}) DO NOTHING RETURNING {quoted(_RETURNED)}), "
        f"fine AS (SELECT {fine} FROM inserted GROUP BY {', '.join(DELTA_KEY.values())}), "
        f"fine_rows AS ({_upsert('usage_daily_rollups', ROLLUP_KEY, 'fine', None)}), "
        f"user_rows AS ({_upsert('usage_user_daily', USER_KEY, 'fine', 'fine_rows')}), "
        f"project_rows AS ({_upsert('usage_project_daily', PROJECT_KEY, 'fine', 'user_rows')}) "
        f"SELECT {quoted(t.USAGE_EVENT_KEY)} FROM inserted "
        "WHERE (SELECT COUNT(*) FROM project_rows) >= 0"
    )
