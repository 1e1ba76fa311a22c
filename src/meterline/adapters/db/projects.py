"""Organizations, admin users, projects and API keys."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.engine import RowMapping

from meterline.adapters.db import tables as t
from meterline.adapters.db._base import SqlStore
from meterline.adapters.db.engine import reading, writing
from meterline.domain.entities import ApiKey, Environment, Project
from meterline.domain.money import from_nanos, to_nanos
from meterline.ports import NotFound

__all__ = ["ProjectStore"]

_PROJECT_FIELDS = frozenset(
    {
        "billing_enabled",
        "default_markup_percentage",
        "default_flat_rate_per_request",
        "currency",
        "name",
        "model_map",
    }
)


def _project(row: RowMapping) -> Project:
    return Project(
        id=row["id"],
        organization_id=row["organization_id"],
        name=row["name"],
        billing_enabled=row["billing_enabled"],
        default_markup_percentage=row["default_markup_percentage"],
        default_flat_rate_per_request=from_nanos(row["default_flat_rate_nanos"]),
        currency=row["currency"],
        model_map=dict(row["model_map"] or {}),
    )


def _api_key(row: RowMapping) -> ApiKey:
    return ApiKey(
        id=row["id"],
        project_id=row["project_id"],
        environment=Environment(row["environment"]),
        prefix=row["prefix"],
        revoked=row["revoked_at"] is not None,
    )


def _decimal(name: str, value: object) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise TypeError(f"{name} must be a Decimal")
    return Decimal(value)


class ProjectStore(SqlStore):
    async def is_empty(self) -> bool:
        """True before ``meterline init``: no organization exists yet."""
        async with reading(self._engine) as conn:
            count = (await conn.execute(select(func.count()).select_from(t.organizations))).scalar()
        return not count

    async def first_project(self) -> Project | None:
        query = select(t.projects).order_by(t.projects.c.created_at, t.projects.c.id).limit(1)
        async with reading(self._engine) as conn:
            row = (await conn.execute(query)).mappings().first()
        return _project(row) if row else None

    async def create_organization(self, name: str) -> str:
        org_id = t.new_id("org")
        async with writing(self._engine) as conn:
            await conn.execute(
                t.organizations.insert().values(id=org_id, name=name, created_at=self._now())
            )
        return org_id

    async def create_admin_user(self, organization_id: str, email: str, password_hash: str) -> str:
        """Emails are stored lower-cased so that login is case-insensitive."""
        user_id = t.new_id("adm")
        async with writing(self._engine) as conn:
            await conn.execute(
                t.admin_users.insert().values(
                    id=user_id,
                    organization_id=organization_id,
                    email=email.strip().lower(),
                    password_hash=password_hash,
                    created_at=self._now(),
                )
            )
        return user_id

    async def admin_user_by_email(self, email: str) -> dict[str, str] | None:
        """``{id, organization_id, email, password_hash}`` for a login (not in the port yet)."""
        query = select(t.admin_users).where(t.admin_users.c.email == email.strip().lower())
        async with reading(self._engine) as conn:
            row = (await conn.execute(query)).mappings().first()
        if row is None:
            return None
        return {k: row[k] for k in ("id", "organization_id", "email", "password_hash")}

    async def create_project(self, organization_id: str, name: str) -> Project:
        project = Project(id=t.new_id("proj"), organization_id=organization_id, name=name)
        async with writing(self._engine) as conn:
            await conn.execute(
                t.projects.insert().values(
                    id=project.id,
                    organization_id=organization_id,
                    name=name,
                    billing_enabled=project.billing_enabled,
                    default_markup_percentage=project.default_markup_percentage,
                    default_flat_rate_nanos=to_nanos(project.default_flat_rate_per_request),
                    currency=project.currency,
                    model_map=dict(project.model_map),
                    created_at=self._now(),
                )
            )
        return project

    async def get_project(self, project_id: str) -> Project | None:
        async with reading(self._engine) as conn:
            row = (
                (await conn.execute(select(t.projects).where(t.projects.c.id == project_id)))
                .mappings()
                .first()
            )
        return _project(row) if row else None

    async def update_project(self, project_id: str, **changes: object) -> Project:
        unknown = set(changes) - _PROJECT_FIELDS
        if unknown:
            raise TypeError(f"cannot update project fields: {sorted(unknown)}")
        values: dict[str, Any] = {}
        for key, value in changes.items():
            if key == "default_markup_percentage":
                values[key] = _decimal(key, value)
            elif key == "default_flat_rate_per_request":
                values["default_flat_rate_nanos"] = to_nanos(_decimal(key, value))
            elif key == "billing_enabled":
                values[key] = bool(value)
            elif key == "currency":
                values[key] = str(value).upper()
            elif key == "model_map":
                values[key] = dict(value)  # type: ignore[call-overload]
            else:
                values[key] = value
        async with writing(self._engine) as conn:
            if values:
                await conn.execute(
                    update(t.projects).where(t.projects.c.id == project_id).values(**values)
                )
            row = (
                (await conn.execute(select(t.projects).where(t.projects.c.id == project_id)))
                .mappings()
                .first()
            )
        if row is None:
            raise NotFound(f"project {project_id} not found")
        return _project(row)

    async def create_api_key(
        self, project_id: str, environment: Environment, key_hash: str, prefix: str
    ) -> ApiKey:
        key = ApiKey(
            id=t.new_id("key"),
            project_id=project_id,
            environment=Environment(environment),
            prefix=prefix,
        )
        async with writing(self._engine) as conn:
            await conn.execute(
                t.api_keys.insert().values(
                    id=key.id,
                    project_id=project_id,
                    environment=key.environment.value,
                    key_hash=key_hash,
                    prefix=prefix,
                    created_at=self._now(),
                )
            )
        return key

    async def api_key_by_hash(self, key_hash: str) -> ApiKey | None:
        """Revoked keys are returned too (``revoked=True``): the caller says why it refuses."""
        query = select(t.api_keys).where(t.api_keys.c.key_hash == key_hash)
        async with reading(self._engine) as conn:
            row = (await conn.execute(query)).mappings().first()
        return _api_key(row) if row else None

    async def revoke_api_key(self, project_id: str, key_id: str) -> None:
        """Idempotent; raises :class:`NotFound` if the project has no such key."""
        k = t.api_keys.c
        async with writing(self._engine) as conn:
            found = (
                await conn.execute(
                    select(k.id, k.revoked_at).where(k.id == key_id, k.project_id == project_id)
                )
            ).first()
            if found is None:
                raise NotFound(f"API key {key_id} not found")
            if found.revoked_at is None:
                await conn.execute(
                    update(t.api_keys).where(k.id == key_id).values(revoked_at=self._now())
                )
