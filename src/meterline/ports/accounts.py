"""Ports: accounts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from meterline.domain.entities import (
    AlertRecord,
    ApiKey,
    EndUser,
    Environment,
    Project,
    UserKey,
)
from meterline.domain.plans import RatePlan

__all__ = ["Accounts", "EndUserPage", "PriceOverride", "SecretBox", "StoredCredential"]


@dataclass(frozen=True, slots=True)
class EndUserPage:
    items: list[EndUser]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class PriceOverride:
    """USD per million tokens for one (project, model); provider ``""`` matches any."""

    model: str
    provider: str = ""
    input_per_mtok: Decimal = Decimal(0)
    output_per_mtok: Decimal = Decimal(0)
    cached_input_per_mtok: Decimal | None = None


@dataclass(frozen=True, slots=True)
class StoredCredential:
    """A project's own key for a provider, encrypted by the ``SecretBox``."""

    provider: str
    encrypted_secret: str
    base_url: str | None = None


class SecretBox(Protocol):
    """Encrypts secrets at rest (provider keys, Stripe tokens) with the app's secret key."""

    def encrypt(self, plaintext: str) -> str: ...
    def decrypt(self, token: str) -> str: ...


class Accounts(Protocol):
    """Organizations, projects, keys, plans, end users, alerts: the slowly changing state."""

    async def is_empty(self) -> bool: ...
    async def first_project(self) -> Project | None: ...
    async def create_organization(self, name: str) -> str: ...
    async def create_admin_user(
        self, organization_id: str, email: str, password_hash: str
    ) -> str: ...
    async def create_project(self, organization_id: str, name: str) -> Project: ...
    async def get_project(self, project_id: str) -> Project | None: ...
    async def update_project(self, project_id: str, **changes: object) -> Project: ...

    async def create_api_key(
        self, project_id: str, environment: Environment, key_hash: str, prefix: str
    ) -> ApiKey: ...
    async def api_key_by_hash(self, key_hash: str) -> ApiKey | None: ...
    async def revoke_api_key(self, project_id: str, key_id: str) -> None: ...

    async def list_plans(self, project_id: str) -> list[RatePlan]: ...
    async def get_plan(self, project_id: str, plan_id: str) -> RatePlan | None: ...
    async def default_plan(self, project_id: str) -> RatePlan | None: ...
    async def create_plan(self, project_id: str, plan: RatePlan) -> RatePlan:
        """Stores ``plan`` (its ``id`` is assigned here). ``is_default`` unsets any other."""
        ...

    async def update_plan(self, project_id: str, plan: RatePlan) -> RatePlan: ...
    async def delete_plan(self, project_id: str, plan_id: str) -> None:
        """Raises :class:`PlanInUse` if any end user (any environment) is on it."""
        ...

    async def plan_user_counts(
        self, project_id: str, environment: Environment
    ) -> dict[str, int]: ...

    async def get_or_create_end_user(
        self, key: UserKey, default_plan_id: str | None
    ) -> tuple[EndUser, bool]:
        """Atomic under concurrency: exactly one caller ever sees ``created=True``."""
        ...

    async def get_or_create_end_users(
        self, keys: Sequence[UserKey], default_plan_id: str | None
    ) -> dict[UserKey, tuple[EndUser, bool]]:
        """:meth:`get_or_create_end_user` for many keys in a few statements, with the same
        guarantee per key (one row each; exactly one caller ever sees ``created=True``).
        Every key of ``keys`` is in the result; created users get ``default_plan_id``."""
        ...

    async def get_end_user(self, key: UserKey) -> EndUser | None: ...
    async def update_end_user(self, key: UserKey, **changes: object) -> EndUser: ...
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
        """Raises ``ValueError`` for a cursor this store did not issue."""
        ...

    async def record_alert(self, alert: AlertRecord) -> bool:
        """Once per (project, environment, end user, kind, window); True if new."""
        ...

    async def list_alerts(
        self, project_id: str, environment: Environment, limit: int = 100
    ) -> list[AlertRecord]: ...

    async def price_overrides(self, project_id: str) -> list[PriceOverride]: ...
    async def set_provider_credential(
        self, project_id: str, provider: str, encrypted_secret: str, base_url: str | None
    ) -> None: ...
    async def provider_credentials(self, project_id: str) -> list[StoredCredential]: ...
    async def delete_provider_credential(self, project_id: str, provider: str) -> bool: ...
    async def set_price_override(self, project_id: str, override: PriceOverride) -> None: ...
