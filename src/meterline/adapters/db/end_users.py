"""End users: atomic get-or-create on first sight (one user, or a batch's users in a few
set-based statements), updates, search and keyset pages."""

from __future__ import annotations

import base64
import binascii
import functools
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from meterline.adapters.db import tables as t
from meterline.adapters.db._base import SqlStore
from meterline.adapters.db.engine import reading, run_read, run_write, writing
from meterline.domain.entities import EndUser, Environment, UserKey
from meterline.ports import EndUserPage, NotFound

__all__ = ["EndUserStore"]

_u = t.end_users.c
_UPDATABLE = frozenset({"rate_plan_id", "blocked", "email", "name", "stripe_customer_id"})
_MAX_PAGE = 500
#: Keys per ``IN (…)`` read and rows per multi-row insert: 500 × 7 columns stays far
#: below both backends' bind-parameter limits.
_CHUNK = 500


def _end_user(row: RowMapping) -> EndUser:
    return EndUser(
        project_id=row["project_id"],
        environment=Environment(row["environment"]),
        end_user_id=row["end_user_id"],
        rate_plan_id=row["rate_plan_id"],
        blocked=row["blocked"],
        email=row["email"],
        name=row["name"],
        stripe_customer_id=row["stripe_customer_id"],
        created_at=row["created_at"],
    )


def _where_key(key: UserKey) -> tuple[Any, ...]:
    return (
        _u.project_id == key.project_id,
        _u.environment == Environment(key.environment).value,
        _u.end_user_id == key.end_user_id,
    )


def _chunks(items: list[Any], size: int = _CHUNK) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _sort_key(key: UserKey) -> tuple[str, str, str]:
    return (key.project_id, Environment(key.environment).value, key.end_user_id)


def encode_cursor(end_user_id: str) -> str:
    """Opaque to clients: the last end_user_id of a page, base64url."""
    return base64.urlsafe_b64encode(end_user_id.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        return base64.b64decode(padded.encode(), altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ValueError("invalid cursor") from None


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class EndUserStore(SqlStore):
    async def get_or_create_end_user(
        self, key: UserKey, default_plan_id: str | None
    ) -> tuple[EndUser, bool]:
        """Atomic under any concurrency: ``INSERT … ON CONFLICT DO NOTHING`` decides the
        one creator, then everyone reads the stored row. The common case (user exists) is
        a single read that takes no write lock."""
        existing = await self.get_end_user(key)
        if existing is not None:
            return existing, False
        stmt = (
            self._insert(t.end_users)
            .values(
                id=t.new_id("eu"),
                project_id=key.project_id,
                environment=Environment(key.environment).value,
                end_user_id=key.end_user_id,
                rate_plan_id=default_plan_id,
                blocked=False,
                created_at=self._now(),
            )
            .on_conflict_do_nothing(index_elements=["project_id", "environment", "end_user_id"])
            .returning(t.end_users)
        )

        def insert(conn: Connection) -> tuple[RowMapping, bool]:
            row = conn.execute(stmt).mappings().first()
            if row is not None:
                return row, True
            return conn.execute(select(t.end_users).where(*_where_key(key))).mappings().one(), False

        row, created = await run_write(self._engine, insert)
        return _end_user(row), created

    async def get_or_create_end_users(
        self, keys: Sequence[UserKey], default_plan_id: str | None
    ) -> dict[UserKey, tuple[EndUser, bool]]:
        """:meth:`get_or_create_end_user` for many users at once, with the same guarantee:
        each user exists once, and exactly one caller ever sees ``created=True`` for it.

        One read finds the existing users (no write lock: the common case); the missing
        ones are inserted with ``INSERT … ON CONFLICT DO NOTHING RETURNING``, which names
        the rows this call created, and any a concurrent caller created meanwhile are read
        back in the same transaction. Rows are inserted in sorted key order, so concurrent
        batches on PostgreSQL wait on each other's uncommitted rows in one global order
        and cannot deadlock. Created users get ``default_plan_id``.
        """
        wanted = sorted(
            {UserKey(k.project_id, Environment(k.environment), k.end_user_id) for k in keys},
            key=_sort_key,
        )
        if not wanted:
            return {}
        async with reading(self._engine) as conn:
            found = await self._read_many(conn, wanted)
        result = {key: (user, False) for key, user in found.items()}
        missing = [key for key in wanted if key not in found]
        if not missing:
            return result
        now = self._now()
        async with writing(self._engine) as conn:
            created: dict[UserKey, EndUser] = {}
            for chunk in _chunks(missing):
                rows = [
                    {
                        "id": t.new_id("eu"),
                        "project_id": key.project_id,
                        "environment": key.environment.value,
                        "end_user_id": key.end_user_id,
                        "rate_plan_id": default_plan_id,
                        "blocked": False,
                        "created_at": now,
                    }
                    for key in chunk
                ]
                for row in (await conn.execute(self._insert_many, rows)).mappings():
                    user = _end_user(row)
                    created[user.key] = user
            raced = [key for key in missing if key not in created]
            others = await self._read_many(conn, raced) if raced else {}
        absent = [key for key in raced if key not in others]
        if absent:  # rows are never deleted, so a conflicting insert means the row exists
            raise RuntimeError(f"end users vanished during insert: {absent[:3]}")
        result.update((key, (user, True)) for key, user in created.items())
        result.update((key, (user, False)) for key, user in others.items())
        return result

    @functools.cached_property
    def _insert_many(self) -> Any:
        """Built once per store: executed with a list of rows (insertmanyvalues), its SQL
        is compiled once and then served from SQLAlchemy's cache."""
        return (
            self._insert(t.end_users)
            .on_conflict_do_nothing(index_elements=["project_id", "environment", "end_user_id"])
            .returning(t.end_users)
        )

    @staticmethod
    async def _read_many(conn: AsyncConnection, keys: list[UserKey]) -> dict[UserKey, EndUser]:
        by_scope: dict[tuple[str, str], list[str]] = {}
        for key in keys:
            by_scope.setdefault((key.project_id, key.environment.value), []).append(key.end_user_id)
        found: dict[UserKey, EndUser] = {}
        for (project_id, environment), ids in by_scope.items():
            for chunk in _chunks(ids):
                query = select(t.end_users).where(
                    _u.project_id == project_id,
                    _u.environment == environment,
                    _u.end_user_id.in_(chunk),
                )
                for row in (await conn.execute(query)).mappings():
                    user = _end_user(row)
                    found[user.key] = user
        return found

    async def get_end_user(self, key: UserKey) -> EndUser | None:
        query = select(t.end_users).where(*_where_key(key))
        row = await run_read(self._engine, lambda conn: conn.execute(query).mappings().first())
        return _end_user(row) if row else None

    async def update_end_user(self, key: UserKey, **changes: object) -> EndUser:
        """Changes any of rate_plan_id, blocked, email, name, stripe_customer_id."""
        unknown = set(changes) - _UPDATABLE
        if unknown:
            raise TypeError(f"cannot update end user fields: {sorted(unknown)}")
        values: dict[str, Any] = dict(changes)
        if "blocked" in values:
            values["blocked"] = bool(values["blocked"])
        async with writing(self._engine) as conn:
            if values:
                await conn.execute(update(t.end_users).where(*_where_key(key)).values(**values))
            row = (
                (await conn.execute(select(t.end_users).where(*_where_key(key)))).mappings().first()
            )
        if row is None:
            raise NotFound(f"end user {key.end_user_id} not found")
        return _end_user(row)

    async def list_end_users(
        self,
        project_id: str,
        environment: Environment,
        *,
        search: str | None = None,
        rate_plan_id: str | None = None,
        blocked: bool | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> EndUserPage:
        """Ordered by end_user_id; ``search`` is a case-insensitive substring of the id,
        email or name. ``next_cursor`` is None on the last page."""
        limit = max(1, min(limit, _MAX_PAGE))
        query = select(t.end_users).where(
            _u.project_id == project_id, _u.environment == Environment(environment).value
        )
        if search:
            pattern = f"%{_like_escape(search.lower())}%"
            query = query.where(
                or_(
                    *(
                        func.lower(col).like(pattern, escape="\\")
                        for col in (_u.end_user_id, _u.email, _u.name)
                    )
                )
            )
        if rate_plan_id is not None:
            query = query.where(_u.rate_plan_id == rate_plan_id)
        if blocked is not None:
            query = query.where(_u.blocked.is_(blocked))
        if cursor:
            query = query.where(_u.end_user_id > decode_cursor(cursor))
        query = query.order_by(_u.end_user_id).limit(limit + 1)
        async with reading(self._engine) as conn:
            rows = (await conn.execute(query)).mappings().all()
        items = [_end_user(r) for r in rows[:limit]]
        next_cursor = encode_cursor(items[-1].end_user_id) if len(rows) > limit else None
        return EndUserPage(items=items, next_cursor=next_cursor)
