"""ML Commons model groups: register, update, get, search, delete (`/_plugins/_ml/model_groups`)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mlsearch.api._request import json_body
from mlsearch.api.render import json_response
from mlsearch.api.routes._ml import ML, ml_of, run, system_write_result
from mlsearch.ml.system_indices import MODEL_GROUP_INDEX


async def register(request: Request) -> Response:
    body = await json_body(request)
    return json_response(await run(request, ml_of(request).register_model_group, body), request=request)


async def update(request: Request) -> Response:
    body = await json_body(request)
    group_id = request.path_params["model_group_id"]
    return json_response(await run(request, ml_of(request).update_model_group, group_id, body), request=request)


async def get(request: Request) -> Response:
    group_id = request.path_params["model_group_id"]
    return json_response(await run(request, ml_of(request).get_model_group, group_id), request=request)


async def search(request: Request) -> Response:
    body = await json_body(request)
    return json_response(await run(request, ml_of(request).groups.search, body), request=request)


async def delete(request: Request) -> Response:
    group_id = request.path_params["model_group_id"]
    result = await run(request, ml_of(request).delete_model_group, group_id)
    return json_response(system_write_result(request, MODEL_GROUP_INDEX, result), request=request)


def routes() -> list[Route]:
    base = f"{ML}/model_groups"
    return [
        Route(f"{base}/_register", register, methods=["POST"]),
        Route(f"{base}/_search", search, methods=["GET", "POST"]),
        Route(f"{base}/{{model_group_id}}", get, methods=["GET"]),
        Route(f"{base}/{{model_group_id}}", update, methods=["PUT"]),
        Route(f"{base}/{{model_group_id}}", delete, methods=["DELETE"]),
    ]
