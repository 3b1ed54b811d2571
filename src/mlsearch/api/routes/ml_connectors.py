"""ML Commons connectors: create, get, search, update, delete."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mlsearch.api._request import json_body
from mlsearch.api.render import json_response
from mlsearch.api.routes._ml import ML, ml_of, run, system_write_result
from mlsearch.ml.system_indices import CONNECTOR_INDEX


async def create(request: Request) -> Response:
    body = await json_body(request, required=True)
    return json_response(await run(request, ml_of(request).connectors.create, body), request=request)


async def get(request: Request) -> Response:
    connector_id = request.path_params["connector_id"]
    return json_response(await run(request, ml_of(request).connectors.get, connector_id), request=request)


async def search(request: Request) -> Response:
    body = await json_body(request)
    return json_response(await run(request, ml_of(request).connectors.search, body), request=request)


async def update(request: Request) -> Response:
    body = await json_body(request, required=True)
    result = await run(request, ml_of(request).update_connector, request.path_params["connector_id"], body)
    return json_response(system_write_result(request, CONNECTOR_INDEX, result), request=request)


async def delete(request: Request) -> Response:
    result = await run(request, ml_of(request).delete_connector, request.path_params["connector_id"])
    return json_response(system_write_result(request, CONNECTOR_INDEX, result), request=request)


def routes() -> list[Route]:
    base = f"{ML}/connectors"
    return [
        Route(f"{base}/_create", create, methods=["POST"]),
        Route(f"{base}/_search", search, methods=["GET", "POST"]),
        Route(f"{base}/{{connector_id}}", get, methods=["GET"]),
        Route(f"{base}/{{connector_id}}", update, methods=["PUT"]),
        Route(f"{base}/{{connector_id}}", delete, methods=["DELETE"]),
    ]
