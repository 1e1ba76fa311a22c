"""Per-project provider credentials. Secrets arrive here already encrypted: the store
never sees a provider key in clear text, so neither does the database."""

from __future__ import annotations

from sqlalchemy import delete, select

from meterline.adapters.db import tables as t
from meterline.adapters.db._base import SqlStore
from meterline.adapters.db.engine import reading, writing
from meterline.ports import StoredCredential

__all__ = ["CredentialStore"]

_c = t.provider_credentials.c


class CredentialStore(SqlStore):
    async def set_provider_credential(
        self, project_id: str, provider: str, encrypted_secret: str, base_url: str | None
    ) -> None:
        stmt = (
            self._insert(t.provider_credentials)
            .values(
                id=t.new_id("cred"),
                project_id=project_id,
                provider=provider,
                encrypted_secret=encrypted_secret,
                base_url=base_url,
                created_at=self._now(),
            )
            .on_conflict_do_update(
                index_elements=["project_id", "provider"],
                set_={"encrypted_secret": encrypted_secret, "base_url": base_url},
            )
        )
        async with writing(self._engine) as conn:
            await conn.execute(stmt)

    async def provider_credentials(self, project_id: str) -> list[StoredCredential]:
        query = (
            select(_c.provider, _c.encrypted_secret, _c.base_url)
            .where(_c.project_id == project_id)
            .order_by(_c.provider)
        )
        async with reading(self._engine) as conn:
            rows = (await conn.execute(query)).all()
        return [StoredCredential(r.provider, r.encrypted_secret, r.base_url) for r in rows]

    async def delete_provider_credential(self, project_id: str, provider: str) -> bool:
        stmt = delete(t.provider_credentials).where(
            _c.project_id == project_id, _c.provider == provider
        )
        async with writing(self._engine) as conn:
            result = await conn.execute(stmt)
        return bool(result.rowcount)
