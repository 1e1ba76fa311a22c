"""Sign in, sign out, and the project / Test-Live scope kept in the session."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from meterline.services.admin_auth import LoginRateLimited
from meterline.services.errors import Unauthorized
from meterline.web.dashboard.common import AdminDep, redirect, render, signer, verified_form
from meterline.web.deps import container_of

__all__ = ["router"]

router = APIRouter()


def safe_next(value: object, default: str = "/dashboard/configuration") -> str:
    """Only our own pages: never an open redirect."""
    if isinstance(value, str) and value.startswith("/dashboard") and "//" not in value:
        return value
    return default


@router.get("/login")
async def login_page(request: Request) -> Response:
    return render(request, "login.html", None, title="Sign in")


@router.post("/login")
async def login(request: Request) -> Response:
    session = signer(request).read(request)
    form = await verified_form(request, session)
    email = str(form.get("email") or "")
    client = request.client.host if request.client else "unknown"
    try:
        admin = await container_of(request).admin_auth.login(
            email, str(form.get("password") or ""), client
        )
    except LoginRateLimited as exc:
        response = render(
            request, "login.html", None, 429, title="Sign in", error=exc.message, email=email
        )
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    except Unauthorized as exc:
        return render(
            request, "login.html", None, 401, title="Sign in", error=exc.message, email=email
        )
    fresh = signer(request).new_login(session, admin.admin_id, admin.organization_id, admin.email)
    return redirect("/dashboard/configuration", request, fresh)


@router.post("/logout")
async def logout(request: Request) -> Response:
    session = signer(request).read(request)
    await verified_form(request, session)
    response = redirect("/dashboard/login", request)
    response.delete_cookie("meterline_dashboard", path="/dashboard")
    return response


@router.post("/scope")
async def scope(request: Request, admin: AdminDep) -> Response:
    """Switch project and/or Test/Live; every page reads the choice from the session."""
    form = await verified_form(request, admin.session)
    changes: dict[str, str] = {}
    project_id = form.get("project_id")
    if isinstance(project_id, str) and any(p.id == project_id for p in admin.projects):
        changes["project_id"] = project_id
    env = form.get("environment")
    if env in ("live", "test"):
        changes["environment"] = str(env)
    return redirect(safe_next(form.get("next")), request, admin.session.with_(**changes))
