"""Per-project provider credentials (``/api/v1/providers``): stored encrypted, shown
masked, used by the gateway instead of the deployment's default keys."""

from __future__ import annotations

from fastapi import APIRouter, Path, Request, Response

from meterline.services.providers import mask
from meterline.web import response_schemas as rs
from meterline.web.body import read_json
from meterline.web.deps import Auth, container_of
from meterline.web.responses import ORJSON
from meterline.web.schemas import PROVIDER_BODY

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/providers", tags=["providers"])

Provider = Path(..., min_length=1, max_length=64, pattern=r"^[a-z0-9_-]+$")


@router.get("", summary="This project's provider credentials (masked)", responses=rs.PROVIDERS)
async def list_credentials(request: Request, ctx: Auth) -> ORJSON:
    return ORJSON({"data": await container_of(request).credentials.listing(ctx)})


@router.put(
    "/{provider}",
    summary="Set this project's key (and base URL) for a provider",
    openapi_extra=PROVIDER_BODY,
    responses=rs.PROVIDER_SET,
)
async def set_credential(request: Request, ctx: Auth, provider: str = Provider) -> ORJSON:
    body = await read_json(request)
    cred = await container_of(request).credentials.set(ctx, provider, body)
    return ORJSON(
        {"provider": cred.provider, "api_key": mask(cred.api_key), "base_url": cred.base_url}
    )


@router.delete(
    "/{provider}",
    summary="Remove this project's key for a provider",
    status_code=204,
    responses=rs.PROVIDER_DELETE,
)
async def delete_credential(request: Request, ctx: Auth, provider: str = Provider) -> Response:
    await container_of(request).credentials.delete(ctx, provider)
    return Response(status_code=204)
