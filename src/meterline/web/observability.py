"""Per-request plumbing: request id, access log, HTTP metrics, and backend outages → 503.

A pure ASGI middleware (not ``BaseHTTPMiddleware``), so streamed gateway responses pass
through untouched. It gives every request an id before anything runs: the gateway uses
the same id as its ledger event id, so the ``x-meterline-request-id`` header, the log
lines and the ledger row all agree.

A database that cannot be reached is not a bug: the request fails with a clean 503
``database_unavailable`` (nothing was acknowledged, the client may retry with the same
idempotency key). Which exceptions mean "unreachable" is the container's knowledge, so
the web layer never imports a driver.
"""

from __future__ import annotations

import logging
import secrets
import time
from typing import Any

import structlog
from fastapi import FastAPI, Request
from starlette.datastructures import MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from meterline.web.responses import error_response

__all__ = ["REQUEST_ID_HEADER", "RequestContext", "install_observability", "new_request_id"]

REQUEST_ID_HEADER = "x-meterline-request-id"
log = structlog.get_logger("meterline.access")


def new_request_id() -> str:
    return "req_" + secrets.token_hex(12)


def _container(scope: Scope) -> Any:
    app = scope.get("app")
    return getattr(getattr(app, "state", None), "container", None)


class RequestContext:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.monotonic()
        sent: dict[str, int] = {}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers[REQUEST_ID_HEADER] = request_id
                sent["status"] = message["status"]
            await send(message)

        # bind/reset rather than ``bound_contextvars``: the same, without a generator-based
        # context manager on every request.
        tokens = structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            try:
                await self.app(scope, receive, send_with_id)
            except Exception as exc:
                container = _container(scope)
                down = container is not None and container.backend_unavailable(exc)
                if not down or "status" in sent:
                    raise
                log.warning("database unavailable", error=type(exc).__name__)
                response = error_response(
                    503,
                    "database_unavailable",
                    "The database is unavailable; this request was not recorded. "
                    "Retry later (with the same idempotency key).",
                    type_="service_unavailable",
                    headers={"Retry-After": "1"},
                )
                await response(scope, receive, send_with_id)
            finally:
                self._observe(scope, sent.get("status", 500), time.monotonic() - started)
        finally:
            structlog.contextvars.reset_contextvars(**tokens)

    @staticmethod
    def _observe(scope: Scope, status: int, seconds: float) -> None:
        route = getattr(scope.get("route"), "path", None) or "unmatched"
        container = _container(scope)
        metrics = getattr(container, "metrics", None)
        if metrics is not None and hasattr(metrics, "request"):
            metrics.request(route, scope["method"], status, seconds)
        # ``configure_logging`` sets the root level and structlog's filter alike. The
        # level check of the root is a cached lookup, while a call to the (lazily bound)
        # logger costs about 2.5 µs even when the level drops the line.
        if not logging.getLogger().isEnabledFor(logging.INFO):
            return
        log.info(
            "request",
            method=scope["method"],
            route=route,
            path=scope["path"],
            status=status,
            duration_ms=round(seconds * 1000, 1),
        )


def install_observability(app: FastAPI) -> None:
    """The middleware and ``GET /metrics`` (Prometheus text; unauthenticated, like most
    scrape targets: serve it on a private network)."""
    app.add_middleware(RequestContext)

    @app.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        m = request.app.state.container.metrics
        return Response(m.render(), media_type=m.content_type)
