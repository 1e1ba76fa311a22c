"""DirectRoute: request-only endpoints are their own handler; anything FastAPI must
solve keeps FastAPI's handler; the routes stay in the OpenAPI document."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, FastAPI, Header, Request
from fastapi.testclient import TestClient
from starlette.responses import JSONResponse

from meterline.web import billing_routes, gateway_routes
from meterline.web.app import create_app
from meterline.web.direct_route import DirectRoute, is_request_only


def _routes(router):
    return {(next(iter(r.methods)), r.path): r for r in router.routes}


def test_per_call_routes_skip_fastapis_handler() -> None:
    gateway = _routes(gateway_routes.router)
    billing = _routes(billing_routes.router)
    direct = [
        gateway[("POST", "/v1/chat/completions")],
        gateway[("POST", "/v1/messages")],
        billing[("GET", "/api/v1/billing/check-quota")],
        billing[("POST", "/api/v1/billing/usage-events")],
    ]
    for route in direct:
        assert isinstance(route, DirectRoute)
        assert route.get_route_handler() is route.endpoint, route.path
    models = gateway[("GET", "/v1/models")]  # takes Auth: FastAPI solves it
    assert not is_request_only(models)
    assert models.get_route_handler() is not models.endpoint


def key(x_key: Annotated[str, Header()]) -> str:
    return x_key


def test_only_request_only_endpoints_are_direct() -> None:
    app = FastAPI()
    app.router.route_class = DirectRoute

    @app.get("/plain")
    async def plain(request: Request) -> JSONResponse:
        return JSONResponse({"path": request.url.path})

    @app.get("/query")
    async def query(request: Request, n: int) -> JSONResponse:
        return JSONResponse({"n": n})

    @app.get("/dep")
    async def dep(request: Request, k: Annotated[str, Depends(key)]) -> JSONResponse:
        return JSONResponse({"k": k})

    @app.get("/sync")
    def sync(request: Request) -> JSONResponse:
        return JSONResponse({})

    routes = {r.path: r for r in app.routes if isinstance(r, DirectRoute)}
    assert is_request_only(routes["/plain"])
    assert not any(is_request_only(routes[p]) for p in ("/query", "/dep", "/sync"))
    client = TestClient(app)
    assert client.get("/plain").json() == {"path": "/plain"}
    assert client.get("/query", params={"n": "3"}).json() == {"n": 3}
    assert client.get("/query", params={"n": "x"}).status_code == 422  # still validated
    assert client.get("/dep", headers={"x-key": "s"}).json() == {"k": "s"}
    assert client.get("/dep").status_code == 422


def test_direct_routes_stay_documented() -> None:
    paths = create_app().openapi()["paths"]
    chat = paths["/v1/chat/completions"]["post"]
    assert chat["summary"].startswith("OpenAI chat completions")
    assert chat["security"]
    quota = paths["/api/v1/billing/check-quota"]["get"]
    assert {p["name"] for p in quota["parameters"]} >= {"end_user_id", "model"}
