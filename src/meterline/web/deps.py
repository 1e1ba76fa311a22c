"""Request-scoped helpers: the container, and the caller's key."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param

from meterline.services.auth import AuthContext

if TYPE_CHECKING:
    from meterline.container import Container

__all__ = ["SECURED", "Auth", "authenticate", "container_of", "presented_key"]

_bearer = HTTPBearer(auto_error=False, description="A project key: mk_live_… or mk_test_…")
_x_api_key = APIKeyHeader(name="x-api-key", auto_error=False)


def container_of(request: Request) -> Container:
    return request.app.state.container  # type: ignore[no-any-return]


async def _auth(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    api_key: Annotated[str | None, Depends(_x_api_key)],
) -> AuthContext:
    # The two security dependencies declare both ways of passing a key in the OpenAPI
    # document; the key itself is read in one place, :func:`presented_key`.
    del bearer, api_key
    return await authenticate(request)


Auth = Annotated[AuthContext, Depends(_auth)]


def presented_key(request: Request) -> str | None:
    """The caller's key, as FastAPI's HTTPBearer then APIKeyHeader would read it: a
    Bearer credential, else the ``x-api-key`` header."""
    scheme, credentials = get_authorization_scheme_param(request.headers.get("authorization"))
    if scheme.lower() == "bearer" and credentials:
        return credentials
    return request.headers.get("x-api-key") or None


async def authenticate(request: Request) -> AuthContext:
    """The caller's project context. ``Auth`` routes get it through FastAPI's dependency
    solving; the per-call hot routes (check-quota, usage-events, the gateway) call it
    themselves, since solving the security sub-dependencies and validating query
    parameters cost more than the quota decision itself. Those routes declare
    :data:`SECURED` in ``openapi_extra`` so the schema still says how they authenticate."""
    ctx = await container_of(request).auth.authenticate(presented_key(request))
    request.state.auth = ctx
    return ctx


#: The security requirement ``Auth`` puts in the OpenAPI document, for routes that
#: call :func:`authenticate` themselves.
SECURED: dict[str, Any] = {"security": [{"HTTPBearer": []}, {"APIKeyHeader": []}]}
