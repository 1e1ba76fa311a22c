"""The coarser daily rollups: per end user (``usage_user_daily``) and per project
(``usage_project_daily``), each the sum of ``usage_daily_rollups`` rows over the
dimensions it drops.

They are derived from the fine rollup deltas of a write (see :func:`project_deltas`) and
upserted in the same transaction, after the fine rollups, in key order: every writer
locks rows table by table in one global order, so concurrent writers cannot deadlock.
The project row of a day is shared by every write of that day; it is locked only from
its upsert, the last statement, to the commit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date

from sqlalchemy import delete, func, insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from meterline.adapters.db import tables as t
from meterline.adapters.db._base import SqlStore
from meterline.adapters.db.rollups import ROLLUP_SUMS, RollupKey, RollupUpsert, fold_delta

__all__ = [
    "PROJECT_KEY",
    "USER_KEY",
    "CoarseRollups",
    "ProjectDayKey",
    "UserDayKey",
    "project_deltas",
    "rebuild",
]

#: (project_id, environment, end_user_id, day)
UserDayKey = tuple[str, str, str, date]
#: (project_id, environment, day)
ProjectDayKey = tuple[str, str, date]

#: The key columns of ``usage_user_daily`` and ``usage_project_daily`` (their primary keys).
USER_KEY = ("project_id", "environment", "end_user_id", "day")
PROJECT_KEY = ("project_id", "environment", "day")


def project_deltas(
    deltas: Mapping[RollupKey, Sequence[int]],
) -> tuple[dict[UserDayKey, list[int]], dict[ProjectDayKey, list[int]]]:
    """The fine deltas of a write (keyed like ``usage_daily_rollups``, sums in
    ``ROLLUP_SUMS`` order) summed per end user and day, and per project and day."""
    users: dict[UserDayKey, list[int]] = {}
    projects: dict[ProjectDayKey, list[int]] = {}
    for (project_id, environment, end_user_id, _model, _provider, day), delta in deltas.items():
        fold_delta(users, (project_id, environment, end_user_id, day), delta)
        fold_delta(projects, (project_id, environment, day), delta)
    return users, projects


class CoarseRollups:
    """The two upsert statements, built once (their SQL is compiled once and cached)."""

    def __init__(self, store: SqlStore) -> None:
        self._user = RollupUpsert(store, t.usage_user_daily, USER_KEY)
        self._project = RollupUpsert(store, t.usage_project_daily, PROJECT_KEY)

    def write(self, conn: Connection, deltas: Mapping[RollupKey, Sequence[int]]) -> None:
        """Upsert the coarse rows of these fine deltas inside ``conn``'s transaction (a
        synchronous connection; see ``RollupUpsert.write``), in lock order."""
        users, projects = project_deltas(deltas)
        for upsert, coarse in ((self._user, users), (self._project, projects)):
            if coarse:
                upsert.write(conn, coarse)

    async def add(self, conn: AsyncConnection, deltas: Mapping[RollupKey, Sequence[int]]) -> None:
        """Upsert the coarse rows of these fine deltas (the caller's transaction): the
        same work as :meth:`write`, on an async connection."""
        await conn.run_sync(self.write, deltas)


async def rebuild(conn: AsyncConnection, project_id: str) -> None:
    """Recompute a project's coarse rows from its fine rollups (rows loaded in bulk
    around the ledger, e.g. by a benchmark or a restore)."""
    fine = t.usage_daily_rollups
    for table, key in ((t.usage_user_daily, USER_KEY), (t.usage_project_daily, PROJECT_KEY)):
        await conn.execute(delete(table).where(table.c.project_id == project_id))
        sums = [func.sum(fine.c[name]) for name in ROLLUP_SUMS]
        source = (
            select(*(fine.c[name] for name in key), *sums)
            .where(fine.c.project_id == project_id)
            .group_by(*(fine.c[name] for name in key))
        )
        await conn.execute(insert(table).from_select([*key, *ROLLUP_SUMS], source))
