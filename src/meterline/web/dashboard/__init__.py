"""The operator dashboard at ``/dashboard``: server-rendered pages (Jinja2), a few lines
of plain JS for live refresh, SVG charts drawn on the server. No build step."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.responses import RedirectResponse

from meterline.web.dashboard import (
    routes_auth,
    routes_config,
    routes_plans,
    routes_revenue,
    routes_users,
)
from meterline.web.dashboard.render import HERE

__all__ = ["install"]


def install(app: FastAPI) -> None:
    router = APIRouter(prefix="/dashboard", include_in_schema=False)

    @router.get("")
    @router.get("/")
    async def home() -> RedirectResponse:
        return RedirectResponse("/dashboard/configuration", status_code=303)

    for module in (routes_auth, routes_config, routes_users, routes_plans, routes_revenue):
        router.include_router(module.router)
    app.include_router(router)
    app.mount("/dashboard/static", StaticFiles(directory=str(HERE / "static")), name="dashboard")
