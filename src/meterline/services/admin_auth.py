"""Dashboard sign-in: argon2-verified admin passwords, attempts limited per email and
client address, and the ``AuthContext`` a signed-in admin acts with.

The attempt limiter lives in the process (one gateway replica per dashboard session is
the normal case); with several replicas each keeps its own window, which still bounds a
guessing attacker to ``max_attempts × replicas`` tries per window.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from meterline.domain.entities import ApiKey, Environment, Project
from meterline.ports import AdminAccounts
from meterline.services.auth import AuthContext
from meterline.services.errors import Forbidden, Invalid, ServiceError, Unauthorized

__all__ = ["AdminAuth", "AdminSession", "LoginRateLimited", "dashboard_context"]

#: Verified when the email is unknown, so both failures take the same time.
_DUMMY_HASH = PasswordHasher().hash("meterline-dummy-password")


class LoginRateLimited(ServiceError):
    status = 429
    code = "rate_limited"

    def __init__(self, retry_after: int) -> None:
        minutes = max(1, (retry_after + 59) // 60)
        super().__init__(
            f"Too many sign-in attempts. Try again in {minutes} minute{'s' if minutes > 1 else ''}."
        )
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class AdminSession:
    admin_id: str
    organization_id: str
    email: str


def dashboard_context(project: Project, environment: Environment) -> AuthContext:
    """What a dashboard page acts as: the chosen project and environment, as a key would."""
    key = ApiKey(id="dashboard", project_id=project.id, environment=environment, prefix="dashboard")
    return AuthContext(key=key, project=project)


class AdminAuth:
    def __init__(
        self,
        admins: AdminAccounts,
        *,
        max_attempts: int = 5,
        window_seconds: float = 300,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._admins = admins
        self._max = max_attempts
        self._window = window_seconds
        self._now = monotonic
        self._hasher = PasswordHasher()
        self._failures: dict[tuple[str, str], deque[float]] = {}

    def _recent(self, key: tuple[str, str]) -> deque[float]:
        now = self._now()
        failures = self._failures.setdefault(key, deque())
        while failures and failures[0] <= now - self._window:
            failures.popleft()
        if len(self._failures) > 100_000:  # bounded memory under a spray of addresses
            for stale in [k for k, v in self._failures.items() if not v]:
                del self._failures[stale]
        return failures

    async def login(self, email: str, password: str, client: str) -> AdminSession:
        """Raises :class:`LoginRateLimited` after ``max_attempts`` failures within the
        window for this (email, client), :class:`Unauthorized` on a wrong email/password."""
        email = email.strip().lower()
        key = (email, client)
        failures = self._recent(key)
        if len(failures) >= self._max:
            raise LoginRateLimited(int(failures[0] + self._window - self._now()) + 1)
        admin = await self._admins.admin_by_email(email) if email else None
        stored = admin.password_hash if admin else _DUMMY_HASH
        ok = await asyncio.to_thread(self._verify, stored, password)
        if admin is None or not ok:
            failures.append(self._now())
            raise Unauthorized("Wrong email or password.", code="invalid_credentials")
        self._failures.pop(key, None)
        return AdminSession(admin.id, admin.organization_id, admin.email)

    def _verify(self, stored: str, password: str) -> bool:
        try:
            return self._hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False

    async def create_admin(self, organization_id: str, email: str, password: str) -> str:
        email = email.strip().lower()
        if "@" not in email or len(email) > 320:
            raise Invalid("email must be an email address", param="email")
        if len(password) < 10:
            raise Invalid("the password needs at least 10 characters", param="password")
        if await self._admins.admin_by_email(email) is not None:
            raise Invalid(f"an admin {email!r} exists", param="email")
        digest = await asyncio.to_thread(self._hasher.hash, password)
        return await self._admins.create_admin_user(organization_id, email, digest)

    async def projects(self, session: AdminSession) -> list[Project]:
        return await self._admins.list_projects(session.organization_id)

    async def context(
        self, session: AdminSession, project_id: str | None, environment: str | None
    ) -> tuple[AuthContext, list[Project]]:
        """The admin's chosen project (else the first) and environment (else test)."""
        projects = await self.projects(session)
        if not projects:
            raise Forbidden("This organization has no project yet: run `meterline init`.")
        project = next((p for p in projects if p.id == project_id), projects[0])
        try:
            env = Environment(environment or Environment.TEST.value)
        except ValueError:
            env = Environment.TEST
        return dashboard_context(project, env), projects
