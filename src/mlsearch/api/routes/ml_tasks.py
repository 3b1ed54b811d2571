"""ML Commons tasks: get, search, delete, cancel a batch job (`/_plugins/_ml/tasks`)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mlsearch.api._request import json_body
from mlsearch.api.render import json_response
from mlsearch.api.routes._ml import ML, ml_of, run, system_write_result
from mlsearch.ml.system_indices import TASK_INDEX


async def get(request: Request) -> Response:
    task_id = request.path_params["task_id"]
    return json_response(await run(request, ml_of(request).tasks.view, task_id), request=request)


async def search(request: Request) -> Response:
    body = await json_body(request)
    return json_response(await run(request, ml_of(request).records.search, TASK_INDEX, body), request=request)


async def delete(request: Request) -> Response:
    result = await run(request, ml_of(request).tasks.delete, request.path_params["task_id"])
    return json_response(system_write_result(request, TASK_INDEX, result), request=request)


async def cancel(request: Request) -> Response:
    batch = ml_of(request).remote.batch
    return json_response(await run(request, batch.cancel, request.path_params["task_id"]), request=request)


def routes() -> list[Route]:
    base = f"{ML}/tasks"
    return [
        Route(f"{base}/_search", search, methods=["GET", "POST"]),
        Route(f"{base}/{{task_id}}", get, methods=["GET"]),
        Route(f"{base}/{{task_id}}/_cancel", cancel, methods=["POST"]),
        Route(f"{base}/{{task_id}}", delete, methods=["DELETE"]),
    ]
