"""Request-scoped helpers: the container, and the caller's key."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from meterline.services.auth import AuthContext

if TYPE_CHECKING:
    from meterline.container import Container

__all__ = ["Auth", "container_of"]

_bearer = HTTPBearer(auto_error=False, description="A project key: mk_live_… or mk_test_…")
_x_api_key = APIKeyHeader(name="x-api-key", auto_error=False)


def container_of(request: Request) -> Container:
    return request.app.state.container  # type: ignore[no-any-return]


async def _auth(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    api_key: Annotated[str | None, Depends(_x_api_key)],
) -> AuthContext:
    token = bearer.credentials if bearer else api_key
    ctx = await container_of(request).auth.authenticate(token)
    request.state.auth = ctx
    return ctx


Auth = Annotated[AuthContext, Depends(_auth)]
