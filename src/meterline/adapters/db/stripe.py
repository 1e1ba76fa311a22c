"""``SqlStripeStore``: the organization's Stripe connection and processed webhook events.

One row per organization in ``stripe_connections`` (unique ``organization_id``), its
``created_at`` being when it was connected. ``processed_webhook_events`` is keyed by
Stripe's event id, so "first time?" is decided by the primary key under concurrency: two
deliveries of one event cannot both be applied.
"""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.engine import RowMapping

from meterline.adapters.db import tables as t
from meterline.adapters.db._base import SqlStore
from meterline.adapters.db.engine import reading, writing
from meterline.services.stripe_ports import StripeConnection

__all__ = ["SqlStripeStore"]

_c = t.stripe_connections.c
_w = t.processed_webhook_events.c


def _connection(row: RowMapping) -> StripeConnection:
    return StripeConnection(
        organization_id=row["organization_id"],
        account_id=row["stripe_account_id"],
        livemode=row["livemode"],
        connected_at=row["created_at"],
    )


class SqlStripeStore(SqlStore):
    async def get_connection(self, organization_id: str) -> StripeConnection | None:
        query = select(t.stripe_connections).where(_c.organization_id == organization_id)
        async with reading(self._engine) as conn:
            row = (await conn.execute(query)).mappings().first()
        return _connection(row) if row else None

    async def set_connection(
        self, organization_id: str, account_id: str, livemode: bool
    ) -> StripeConnection:
        """Connect, or replace the organization's previous account (one per organization)."""
        now = self._now()
        stmt = self._insert(t.stripe_connections).values(
            id=t.new_id("sc"),
            organization_id=organization_id,
            stripe_account_id=account_id,
            livemode=livemode,
            encrypted_refresh_token=None,
            created_at=now,
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["organization_id"],
            set_={
                "stripe_account_id": account_id,
                "livemode": livemode,
                "encrypted_refresh_token": None,
                "created_at": now,
            },
        )
        async with writing(self._engine) as conn:
            await conn.execute(stmt)
        return StripeConnection(organization_id, account_id, livemode, now)

    async def delete_connection(self, organization_id: str) -> bool:
        stmt = delete(t.stripe_connections).where(_c.organization_id == organization_id)
        async with writing(self._engine) as conn:
            result = await conn.execute(stmt)
        return bool(result.rowcount)

    async def delete_account(self, account_id: str) -> list[str]:
        stmt = (
            delete(t.stripe_connections)
            .where(_c.stripe_account_id == account_id)
            .returning(_c.organization_id)
        )
        async with writing(self._engine) as conn:
            return [row[0] for row in (await conn.execute(stmt)).all()]

    async def mark_webhook_processed(self, event_id: str, event_type: str) -> bool:
        stmt = (
            self._insert(t.processed_webhook_events)
            .values(event_id=event_id, type=event_type[:128], received_at=self._now())
            .on_conflict_do_nothing(index_elements=["event_id"])
            .returning(_w.event_id)
        )
        async with writing(self._engine) as conn:
            return (await conn.execute(stmt)).first() is not None

    async def unmark_webhook(self, event_id: str) -> None:
        stmt = delete(t.processed_webhook_events).where(_w.event_id == event_id)
        async with writing(self._engine) as conn:
            await conn.execute(stmt)
