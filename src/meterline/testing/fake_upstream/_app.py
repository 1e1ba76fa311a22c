"""The Starlette app of the fake upstream."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from . import _anthropic, _openai, _responses
from ._core import RequestLog, json_response, read_json


async def _health(request: Request) -> Response:
    await read_json(request)
    return json_response({"ok": True})


async def _not_found(request: Request) -> Response:
    await read_json(request)
    message = f"Unknown path {request.method} {request.url.path} (fake upstream)"
    if "anthropic-version" in request.headers:
        return _anthropic.anthropic_error(404, message)
    return _openai.openai_error(404, message)


def create_app(request_log: RequestLog | None = None) -> Starlette:
    """The fake upstream ASGI app; requests are appended to ``request_log`` when given."""
    app = Starlette(
        routes=[
            Route("/v1/chat/completions", _openai.chat_completions, methods=["POST"]),
            Route("/v1/embeddings", _openai.embeddings, methods=["POST"]),
            Route("/v1/responses", _responses.responses, methods=["POST"]),
            Route("/v1/models", _openai.models, methods=["GET"]),
            Route("/v1/messages", _anthropic.messages, methods=["POST"]),
            Route("/healthz", _health, methods=["GET"]),
            Route(
                "/{path:path}",
                _not_found,
                methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            ),
        ]
    )
    app.state.request_log = request_log
    return app
