"""Composition root: build the node and the ASGI application around it."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

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
        exception_handlers={
            MLSearchError: _on_error,
            HTTPException: _on_http_exception,
            Exception: _on_unexpected,
        },
    )
    app.state.node = node
    return app


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
