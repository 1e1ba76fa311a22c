"""``DirectRoute``: an ``APIRoute`` that calls a request-only endpoint directly.

FastAPI's request handler solves dependencies, validates parameters and serialises the
return value. The per-call routes (the gateway, check-quota, usage-events) need none of
it: they read their own body with orjson, authenticate with one call
(``deps.authenticate``) and return a ``Response``. For such an endpoint (``async``,
exactly one parameter, the ``Request``, and no dependencies from its router) the
handler is the endpoint itself; FastAPI's handler did nothing else for it but cost
about 10 % of the event loop's time per gateway call in the benchmark profile.

Everything else is unchanged: the route is still an ``APIRoute`` (so it is in the
OpenAPI document with its summary, responses and ``openapi_extra``), and its exceptions
still reach the app's exception handlers. Any other endpoint gets FastAPI's handler, so
a router can use this class for all its routes.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

__all__ = ["DirectRoute", "is_request_only"]


def is_request_only(route: APIRoute) -> bool:
    """The endpoint is ``async def f(request: Request) -> Response`` with nothing for
    FastAPI to solve."""
    dependant = route.dependant
    if not inspect.iscoroutinefunction(route.endpoint) or dependant.request_param_name is None:
        return False
    solved = (
        dependant.dependencies,
        dependant.path_params,
        dependant.query_params,
        dependant.header_params,
        dependant.cookie_params,
        dependant.body_params,
    )
    extras = (
        dependant.websocket_param_name,
        dependant.http_connection_param_name,
        dependant.response_param_name,
        dependant.background_tasks_param_name,
        dependant.security_scopes_param_name,
    )
    parameters = inspect.signature(route.endpoint).parameters
    return not any(solved) and all(e is None for e in extras) and len(parameters) == 1


class DirectRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        if is_request_only(self):
            endpoint: Callable[[Request], Coroutine[Any, Any, Response]] = self.endpoint
            return endpoint
        return super().get_route_handler()
