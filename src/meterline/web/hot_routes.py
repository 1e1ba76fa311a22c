"""``HotRoutes``: the per-call routes served without walking the framework's layers.

Between our middleware and a gateway endpoint, FastAPI and Starlette pass every call
through about a dozen ASGI layers: telemetry and exception middleware, an exit stack,
the router, the included router, the route, FastAPI's request/response wrapper with two
more exit stacks, and a ``send`` wrapper per layer. For a :class:`DirectRoute` endpoint
(``async def f(request) -> Response``, nothing to solve) none of them does anything but
pass the call on and catch the exceptions the app has handlers for; together they were
about a tenth of the event loop's time per gateway call in the benchmark profile.

This middleware takes the short way for such routes only, and only once the framework
itself has shown the way: the first request for a (method, path, root path) goes
through the whole stack; if the router picked a request-only ``DirectRoute`` without
path parameters for it, the route and the exception handlers the framework used for it
are remembered, and later requests for the same (method, path, root path) call the
endpoint directly, inside Starlette's own ``request_response`` wrapper with those same
handlers. So a route the app serves differently (another route class, path parameters,
dependencies, a method it does not allow) is never taken the short way, and what a hot
request sees (the ``Request``, ``scope["route"]`` for metrics and logs, the error
responses) is what the framework gives it: ``tests/web/test_hot_routes.py`` sends the
same requests both ways and compares the answers.

Not taken on the short way: FastAPI's own OpenTelemetry hooks (unconfigured here) and an
app-wide ``max_body_size`` (not set here; the routes bound their bodies themselves).
Exceptions without a handler propagate as before, to ``RequestContext`` (outside) and
Starlette's server-error middleware.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.routing import request_response
from starlette.types import ASGIApp, Receive, Scope, Send

from meterline.web.direct_route import DirectRoute, is_request_only

__all__ = ["HotRoutes"]

#: What identifies a route choice: the router looks at nothing else for these routes.
_Key = tuple[str, str, str]


@dataclass(frozen=True, slots=True)
class _Hot:
    route: DirectRoute
    router: Any
    handlers: Any  # (exception handlers, status handlers) as ExceptionMiddleware set them
    app: ASGIApp


class HotRoutes:
    """``HotRoutes(app, enabled=True)``; ``enabled=False`` always takes the framework's
    way (the parity tests compare the two)."""

    def __init__(self, app: ASGIApp, *, enabled: bool = True) -> None:
        self.app = app
        self._enabled = enabled
        #: Bounded by the app's request-only routes: only a path the router resolved to
        #: one of them exactly (no path parameters) is ever stored.
        self._hot: dict[_Key, _Hot] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self._enabled:
            await self.app(scope, receive, send)
            return
        key = (scope["method"], scope["path"], scope.get("root_path", ""))
        hot = self._hot.get(key)
        if hot is None:
            await self.app(scope, receive, send)
            self._learn(key, scope)
            return
        scope["router"] = hot.router
        scope["endpoint"] = hot.route.endpoint
        scope["route"] = hot.route
        scope["path_params"] = {}
        scope["starlette.exception_handlers"] = hot.handlers
        await hot.app(scope, receive, send)

    def _learn(self, key: _Key, scope: Scope) -> None:
        route = scope.get("route")
        handlers = scope.get("starlette.exception_handlers")
        if (
            isinstance(route, DirectRoute)
            and handlers is not None
            and scope.get("endpoint") is route.endpoint
            and not scope.get("path_params")
            and route.path == _route_path(scope)
            and scope["method"] in (route.methods or ())
            and is_request_only(route)
        ):
            self._hot[key] = _Hot(
                route, scope.get("router"), handlers, request_response(route.endpoint)
            )


def _route_path(scope: Scope) -> str:
    """The path the router matched against: the request path without the root path."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path
