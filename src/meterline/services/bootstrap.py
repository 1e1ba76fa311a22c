"""First run: one organization, an admin, a project with a default plan and two keys."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher

from meterline.domain.entities import Environment
from meterline.domain.plans import RatePlan
from meterline.ports import Accounts
from meterline.services.keys import GeneratedKey, generate_key

__all__ = ["InitResult", "create_key", "initialize"]


@dataclass(frozen=True, slots=True)
class InitResult:
    created: bool
    organization_id: str
    project_id: str
    live_key: str | None = None
    test_key: str | None = None
    admin_email: str | None = None
    admin_password: str | None = None


async def create_key(accounts: Accounts, project_id: str, environment: Environment) -> GeneratedKey:
    key = generate_key(environment)
    await accounts.create_api_key(project_id, environment, key.digest, key.prefix)
    return key


async def initialize(
    accounts: Accounts,
    *,
    admin_email: str = "admin@localhost",
    admin_password: str | None = None,
    organization_name: str = "My organization",
    project_name: str = "My project",
) -> InitResult:
    """Create the first organization/project/admin/keys if the database is empty.

    On a non-empty database nothing is created and the existing ids are returned: the
    keys and password were printed once, at creation, and are not recoverable.
    """
    if not await accounts.is_empty():
        project = await accounts.first_project()
        return InitResult(
            created=False,
            organization_id=project.organization_id if project else "",
            project_id=project.id if project else "",
        )
    password = admin_password or secrets.token_urlsafe(12)
    org_id = await accounts.create_organization(organization_name)
    await accounts.create_admin_user(org_id, admin_email, PasswordHasher().hash(password))
    project = await accounts.create_project(org_id, project_name)
    await accounts.create_plan(
        project.id, RatePlan(id="", name="Default", slug="default", is_default=True)
    )
    live = await create_key(accounts, project.id, Environment.LIVE)
    test = await create_key(accounts, project.id, Environment.TEST)
    return InitResult(
        created=True,
        organization_id=org_id,
        project_id=project.id,
        live_key=live.plaintext,
        test_key=test.plaintext,
        admin_email=admin_email,
        admin_password=password,
    )
