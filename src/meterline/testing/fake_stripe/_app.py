"""The fake's HTTP face: Stripe's wire format in (form-encoded, headers), JSON out."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from ._forms import parse_form
from ._state import FakeStripeState

__all__ = ["create_app"]


def _api_key(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip() or None
    return None


def create_app(state: FakeStripeState) -> Starlette:
    async def api(request: Request) -> Response:
        if request.method == "GET":
            params = parse_form(request.url.query)
        else:
            params = parse_form((await request.body()).decode())
        status, body, replayed = state.handle(
            request.method,
            request.url.path,
            params,
            account=request.headers.get("stripe-account"),
            idempotency_key=request.headers.get("idempotency-key"),
            api_key=_api_key(request),
        )
        headers = {"request-id": "req_fake"}
        if replayed:
            headers["idempotent-replayed"] = "true"
        return JSONResponse(body, status_code=status, headers=headers)

    async def authorize(request: Request) -> Response:
        """The user's click on "Connect": a new account, back to the redirect with a code."""
        q = request.query_params
        code = state.issue_code()
        target = q.get("redirect_uri") or f"{state.url}/oauth/landing"
        query = {"code": code, "scope": q.get("scope", "read_write")}
        if q.get("state") is not None:
            query["state"] = q["state"]
        return RedirectResponse(f"{target}?{urlencode(query)}", status_code=302)

    async def healthz(_: Request) -> Response:
        return JSONResponse({"ok": True})

    return Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/oauth/authorize", authorize, methods=["GET"]),
            Route("/oauth/{rest:path}", api, methods=["POST"]),
            Route("/v1/{rest:path}", api, methods=["GET", "POST", "DELETE"]),
        ]
    )
