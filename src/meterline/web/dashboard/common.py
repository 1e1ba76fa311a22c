"""What every dashboard route shares: the signed-in admin, CSRF checks, rendering."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, HTTPException, Request
from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response

from meterline.domain.entities import Project
from meterline.services.admin_auth import AdminSession
from meterline.services.auth import AuthContext
from meterline.web.dashboard.render import templates
from meterline.web.dashboard.session import Session, SessionSigner
from meterline.web.deps import container_of

if TYPE_CHECKING:
    from meterline.container import Container

__all__ = ["Admin", "AdminDep", "redirect", "render", "signer", "verified_form"]


LIVE_TEMPLATES = frozenset(
    {"end_users_live.html", "end_user_live.html", "plans_live.html", "revenue_live.html"}
)


def signer(request: Request) -> SessionSigner:
    container = container_of(request)
    cached = getattr(request.app.state, "dashboard_signer", None)
    if cached is None:
        cached = SessionSigner(container.settings.resolved_secret_key())
        request.app.state.dashboard_signer = cached
    return cached  # type: ignore[no-any-return]


@dataclass
class Admin:
    """The signed-in admin acting on one project and environment."""

    session: Session
    ctx: AuthContext
    projects: list[Project]
    container: Container

    @property
    def environment(self) -> str:
        return self.ctx.environment.value


async def _admin(request: Request) -> Admin:
    session = signer(request).read(request)
    if not session.signed_in:
        raise HTTPException(303, "Sign in first.", headers={"Location": "/dashboard/login"})
    container = container_of(request)
    admin = AdminSession(session.admin_id or "", session.organization_id or "", session.email or "")
    ctx, projects = await container.admin_auth.context(
        admin, session.project_id, session.environment
    )
    return Admin(session, ctx, projects, container)


AdminDep = Annotated[Admin, Depends(_admin)]


async def verified_form(request: Request, session: Session) -> FormData:
    """The posted form, after checking its CSRF token (field or X-CSRF-Token header)."""
    form = await request.form()
    sent = form.get("csrf_token") or request.headers.get("x-csrf-token") or ""
    if not isinstance(sent, str) or not hmac.compare_digest(sent, session.csrf):
        raise HTTPException(403, "Missing or invalid CSRF token: reload the page and retry.")
    return form


def render(
    request: Request, template: str, admin: Admin | None, status_code: int = 200, **context: Any
) -> Response:
    """A full page, or only its live region when the page polls (``?fragment=1``)."""
    session = admin.session if admin else signer(request).read(request)
    base: dict[str, Any] = {"session": session, "csrf": session.csrf, "admin": admin}
    if admin is not None:
        base.update(
            project=admin.ctx.project,
            projects=admin.projects,
            environment=admin.environment,
            stripe_available=getattr(admin.container, "stripe_sync", None) is not None,
            invoicing_available=getattr(admin.container, "invoicing", None) is not None,
        )
    base.update(context)
    live = template.replace(".html", "_live.html")
    if request.query_params.get("fragment") == "1" and live in LIVE_TEMPLATES:
        return templates.TemplateResponse(request, live, base, status_code=status_code)
    response = templates.TemplateResponse(request, template, base, status_code=status_code)
    response.headers["Cache-Control"] = "no-store"
    if admin is None:  # the login page hands out the pre-login CSRF token
        signer(request).write(response, request, session)
    return response


def redirect(url: str, request: Request, session: Session | None = None) -> Response:
    response = RedirectResponse(url, status_code=303)
    if session is not None:
        signer(request).write(response, request, session)
    return response


def flag(value: str | None) -> bool | None:
    return {"true": True, "yes": True, "false": False, "no": False}.get((value or "").lower())
