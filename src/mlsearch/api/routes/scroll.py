"""The scroll API: `_search/scroll` (next page) and its DELETE (clear); `?scroll=` on `_search` opens a context."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mlsearch.api._request import json_body
from mlsearch.api.render import json_response
from mlsearch.api.routes._common import blocking, node_of
from mlsearch.engine.index import Index
from mlsearch.engine.scroll import Scrolls
from mlsearch.errors import ActionRequestValidationError, IllegalArgumentError, ParsingError


def scrolls_of(request: Request) -> Scrolls:
    return node_of(request).scrolls


async def scroll(request: Request) -> Response:
    body = await _body(request)
    scroll_id = request.path_params.get("scroll_id") or request.query_params.get("scroll_id")
    scroll_id = body.get("scroll_id", scroll_id)
    keep_alive = body.get("scroll", request.query_params.get("scroll"))
    if not scroll_id:
        raise ActionRequestValidationError("Validation Failed: 1: scrollId is missing;")
    if not isinstance(scroll_id, str) or (keep_alive is not None and not isinstance(keep_alive, str)):
        raise ParsingError("Unknown parameter in request body or parameter is of the wrong type")
    indices = node_of(request).indices

    def is_open(index: Index) -> bool:
        return indices.find(index.name) is index

    response = await blocking(scrolls_of(request).next, scroll_id, keep_alive, is_open)
    return json_response(response, request=request)


async def clear_scroll(request: Request) -> Response:
    body = await _body(request)
    ids = _ids(body.get("scroll_id"))
    in_path = request.path_params.get("scroll_id") or request.query_params.get("scroll_id")
    if in_path:
        ids = [*ids, *(part for part in in_path.split(",") if part)]
    if not ids:
        raise ActionRequestValidationError("Validation Failed: 1: no scroll ids specified;")
    scrolls = scrolls_of(request)
    freed = scrolls.clear_all() if "_all" in ids else scrolls.clear(ids)
    # OpenSearch answers 404 when nothing was freed (unknown, expired or already cleared ids)
    return json_response({"succeeded": True, "num_freed": freed}, 200 if freed else 404, request=request)


async def _body(request: Request) -> dict[str, Any]:
    body = await json_body(request) or {}
    if not isinstance(body, dict):
        raise ParsingError("request body must be an object")
    return body


def _ids(value: Any) -> list[str]:
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    if not all(isinstance(item, str) for item in items):
        raise IllegalArgumentError("scroll_id array element should only contain scroll_id")
    return [item for part in items for item in part.split(",") if item]


def routes() -> list[Route]:
    # registered before the `/{index}/...` patterns, so that `_search` is never taken for an index name
    return [
        Route("/_search/scroll", scroll, methods=["GET", "POST"]),
        Route("/_search/scroll", clear_scroll, methods=["DELETE"]),
        Route("/_search/scroll/{scroll_id}", scroll, methods=["GET", "POST"]),
        Route("/_search/scroll/{scroll_id}", clear_scroll, methods=["DELETE"]),
    ]
