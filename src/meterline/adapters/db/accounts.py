"""``SqlAccounts``: the :class:`meterline.ports.Accounts` port on SQLAlchemy Core.

The port is wide (projects, keys, plans, end users, alerts, price overrides), so it is
assembled from one small store per concern; this module adds alerts and price overrides.
"""

from __future__ import annotations

from sqlalchemy import select

from meterline.adapters.db import tables as t
from meterline.adapters.db.admins import AdminStore
from meterline.adapters.db.credentials import CredentialStore
from meterline.adapters.db.end_users import EndUserStore
from meterline.adapters.db.engine import reading, writing
from meterline.adapters.db.plans import PlanStore
from meterline.adapters.db.projects import ProjectStore
from meterline.domain.entities import AlertRecord, Environment
from meterline.ports import PriceOverride

__all__ = ["SqlAccounts"]

_a = t.alerts.c
_o = t.price_overrides.c


class SqlAccounts(ProjectStore, PlanStore, EndUserStore, CredentialStore, AdminStore):
    """Organizations, projects, keys, plans, end users, alerts and price overrides.

    ``SqlAccounts(engine, clock=None)``: the clock stamps ``created_at`` (system UTC
    clock by default).
    """

    async def record_alert(self, alert: AlertRecord) -> bool:
        """True only the first time for (project, environment, end user, kind, window):
        the unique index decides, so concurrent callers cannot both send the alert."""
        stmt = (
            self._insert(t.alerts)
            .values(
                id=t.new_id("alert"),
                project_id=alert.project_id,
                environment=Environment(alert.environment).value,
                end_user_id=alert.end_user_id or "",
                kind=alert.kind,
                window=alert.window,
                message=alert.message,
                created_at=alert.created_at or self._now(),
            )
            .on_conflict_do_nothing(
                index_elements=["project_id", "environment", "end_user_id", "kind", "window"]
            )
            .returning(_a.id)
        )
        async with writing(self._engine) as conn:
            inserted = (await conn.execute(stmt)).first()
        return inserted is not None

    async def list_alerts(
        self, project_id: str, environment: Environment, limit: int = 100
    ) -> list[AlertRecord]:
        """Newest first."""
        query = (
            select(t.alerts)
            .where(_a.project_id == project_id, _a.environment == Environment(environment).value)
            .order_by(_a.created_at.desc(), _a.id.desc())
            .limit(limit)
        )
        async with reading(self._engine) as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [
            AlertRecord(
                id=r["id"],
                project_id=r["project_id"],
                environment=Environment(r["environment"]),
                kind=r["kind"],
                end_user_id=r["end_user_id"] or None,
                window=r["window"],
                message=r["message"],
                created_at=r["created_at"],
            )
            for r in rows
        ]

    async def price_overrides(self, project_id: str) -> list[PriceOverride]:
        query = (
            select(t.price_overrides)
            .where(_o.project_id == project_id)
            .order_by(_o.model, _o.provider)
        )
        async with reading(self._engine) as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [
            PriceOverride(
                model=r["model"],
                provider=r["provider"],
                input_per_mtok=r["input_per_mtok"],
                output_per_mtok=r["output_per_mtok"],
                cached_input_per_mtok=r["cached_input_per_mtok"],
            )
            for r in rows
        ]

    async def set_price_override(self, project_id: str, override: PriceOverride) -> None:
        """Insert or replace the override for (project, provider, model)."""
        prices = {
            "input_per_mtok": override.input_per_mtok,
            "output_per_mtok": override.output_per_mtok,
            "cached_input_per_mtok": override.cached_input_per_mtok,
        }
        stmt = self._insert(t.price_overrides).values(
            id=t.new_id("price"),
            project_id=project_id,
            provider=override.provider or "",
            model=override.model,
            created_at=self._now(),
            **prices,
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["project_id", "provider", "model"],
            set_={name: stmt.excluded[name] for name in prices},
        )
        async with writing(self._engine) as conn:
            await conn.execute(stmt)
