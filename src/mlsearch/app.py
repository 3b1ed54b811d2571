"""Composition root: build the node and the ASGI application around it."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from urllib.parse import unquote

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from mlsearch.api.render import error_response, internal_error_response, json_response
from mlsearch.api.routes import all_routes
from mlsearch.config import Settings
from mlsearch.errors import MLSearchError
from mlsearch.node import Node, build_node

log = logging.getLogger(__name__)

__all__ = ["build_app", "build_node"]


def build_app(node: Node) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        node.start()
        try:
            yield
        finally:
            node.close()

    app = Starlette(
        routes=all_routes(),
        lifespan=lifespan,
        middleware=[Middleware(EmptySegmentsIgnored)],
        exception_handlers={
            MLSearchError: _on_error,
            HTTPException: _on_http_exception,
            Exception: _on_unexpected,
        },
    )
    app.state.node = node
    app.router.redirect_slashes = False
    return app


class EmptySegmentsIgnored:
    """Route `/_search/pipeline/` and `//idx//_search` as `/_search/pipeline` and `/idx/_search`.

    OpenSearch matches paths segment by segment and skips empty ones, so clients send trailing slashes (LangChain
    lists search pipelines with `GET /_search/pipeline/`). Starlette would answer those with a 307 redirect, which
    opensearch-py reports as an error instead of following."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw: bytes | None = scope.get("raw_path") if scope["type"] == "http" else None
        # On the raw path, so that an id ending in an encoded slash (`a%2F`) keeps it.
        if raw and len(raw) > 1 and (raw.endswith(b"/") or b"//" in raw):
            normal = b"/" + b"/".join(part for part in raw.split(b"/") if part)
            scope = {**scope, "path": unquote(normal.decode("latin-1")), "raw_path": normal}
        await self.app(scope, receive, send)


async def _on_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, MLSearchError)
    return error_response(exc, request)


async def _on_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        allowed = exc.headers.get("Allow", "") if exc.headers else ""
        return json_response(
            {
                "error": f"Incorrect HTTP method for uri [{request.url.path}] and method "
                f"[{request.method}], allowed: [{allowed}]",
                "status": 405,
            },
            405,
        )
    if exc.status_code == 404:
        return json_response(
            {"error": f"no handler found for uri [{request.url.path}] and method [{request.method}]"}, 400
        )
    return json_response({"error": exc.detail, "status": exc.status_code}, exc.status_code)


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    return internal_error_response(exc)


def create_app(settings: Settings | None = None) -> Starlette:
    return build_app(build_node(settings or Settings.load()))
