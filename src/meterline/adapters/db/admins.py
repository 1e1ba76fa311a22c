"""Dashboard sign-in and the organization's projects and keys (``AdminAccounts`` port)."""

from __future__ import annotations

from sqlalchemy import select

from meterline.adapters.db import tables as t
from meterline.adapters.db._base import SqlStore
from meterline.adapters.db.engine import reading
from meterline.adapters.db.projects import _project
from meterline.domain.entities import Environment, Project
from meterline.ports import AdminUser, ApiKeyInfo

__all__ = ["AdminStore"]

_ad = t.admin_users.c
_k = t.api_keys.c
_p = t.projects.c


class AdminStore(SqlStore):
    async def admin_by_email(self, email: str) -> AdminUser | None:
        query = select(t.admin_users).where(_ad.email == email.strip().lower())
        async with reading(self._engine) as conn:
            row = (await conn.execute(query)).mappings().first()
        if row is None:
            return None
        return AdminUser(row["id"], row["organization_id"], row["email"], row["password_hash"])

    async def list_projects(self, organization_id: str) -> list[Project]:
        query = (
            select(t.projects)
            .where(_p.organization_id == organization_id)
            .order_by(_p.created_at, _p.id)
        )
        async with reading(self._engine) as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [_project(r) for r in rows]

    async def list_api_keys(self, project_id: str) -> list[ApiKeyInfo]:
        """Newest first, revoked ones included (shown as revoked)."""
        query = (
            select(_k.id, _k.environment, _k.prefix, _k.revoked_at, _k.created_at)
            .where(_k.project_id == project_id)
            .order_by(_k.created_at.desc(), _k.id)
        )
        async with reading(self._engine) as conn:
            rows = (await conn.execute(query)).all()
        return [
            ApiKeyInfo(
                id=r.id,
                environment=Environment(r.environment),
                prefix=r.prefix,
                revoked=r.revoked_at is not None,
                created_at=r.created_at,
            )
            for r in rows
        ]
