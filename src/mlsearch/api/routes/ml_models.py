"""ML Commons models: register (pretrained, URL, chunked), deploy, undeploy, get / search / update / delete, predict."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mlsearch.api._request import json_body, param_bool, raw_body
from mlsearch.api.render import json_response
from mlsearch.api.routes._ml import ML, ml_of, run, system_write_result
from mlsearch.errors import IllegalArgumentError
from mlsearch.ml.system_indices import MODEL_INDEX


async def register(request: Request) -> Response:
    body = await json_body(request)
    deploy = param_bool(request, "deploy")
    return json_response(await run(request, ml_of(request).register_model, body, deploy=deploy), request=request)


async def register_meta(request: Request) -> Response:
    body = await json_body(request)
    return json_response(await run(request, ml_of(request).register_model_meta, body), request=request)


async def upload_chunk(request: Request) -> Response:
    raw = request.path_params["chunk_number"]
    try:
        number = int(raw)
    except ValueError:
        raise IllegalArgumentError(f"Failed to parse chunk number [{raw}]") from None
    data = await raw_body(request)
    service = ml_of(request)
    return json_response(
        await run(request, service.upload_chunk, request.path_params["model_id"], number, data), request=request
    )


async def deploy(request: Request) -> Response:
    body = await json_body(request)
    return json_response(
        await run(request, ml_of(request).deploy, request.path_params["model_id"], body), request=request
    )


async def undeploy(request: Request) -> Response:
    body = await json_body(request)
    model_id = request.path_params.get("model_id")
    return json_response(await run(request, ml_of(request).undeploy, model_id, body), request=request)


async def get(request: Request) -> Response:
    model_id = request.path_params["model_id"]
    content = param_bool(request, "return_content")
    return json_response(
        await run(request, ml_of(request).get_model, model_id, return_content=content), request=request
    )


async def search(request: Request) -> Response:
    body = await json_body(request)
    return json_response(await run(request, ml_of(request).registry.search, body), request=request)


async def update(request: Request) -> Response:
    body = await json_body(request, required=True)
    result = await run(request, ml_of(request).update_model, request.path_params["model_id"], body)
    return json_response(system_write_result(request, MODEL_INDEX, result), request=request)


async def delete(request: Request) -> Response:
    result = await run(request, ml_of(request).delete_model, request.path_params["model_id"])
    return json_response(system_write_result(request, MODEL_INDEX, result), request=request)


async def predict(request: Request) -> Response:
    body = await json_body(request)
    algorithm = request.path_params.get("algorithm")
    response = await run(request, ml_of(request).predict, request.path_params["model_id"], body, algorithm)
    return json_response(response, request=request)


async def batch_predict(request: Request) -> Response:
    body = await json_body(request)
    batch = ml_of(request).remote.batch
    return json_response(await run(request, batch.start, request.path_params["model_id"], body), request=request)


def routes() -> list[Route]:
    base = f"{ML}/models"
    return [
        Route(f"{base}/_register", register, methods=["POST"]),
        Route(f"{base}/_upload", register, methods=["POST"]),
        Route(f"{base}/_register_meta", register_meta, methods=["POST"]),
        Route(f"{base}/meta", register_meta, methods=["POST"]),
        Route(f"{base}/_undeploy", undeploy, methods=["POST"]),
        Route(f"{base}/_unload", undeploy, methods=["POST"]),
        Route(f"{base}/_search", search, methods=["GET", "POST"]),
        Route(f"{base}/{{model_id}}/upload_chunk/{{chunk_number}}", upload_chunk, methods=["POST"]),
        Route(f"{base}/{{model_id}}/chunk/{{chunk_number}}", upload_chunk, methods=["POST"]),
        Route(f"{base}/{{model_id}}/_deploy", deploy, methods=["POST"]),
        Route(f"{base}/{{model_id}}/_load", deploy, methods=["POST"]),
        Route(f"{base}/{{model_id}}/_undeploy", undeploy, methods=["POST"]),
        Route(f"{base}/{{model_id}}/_unload", undeploy, methods=["POST"]),
        Route(f"{base}/{{model_id}}/_predict", predict, methods=["POST"]),
        Route(f"{base}/{{model_id}}/_batch_predict", batch_predict, methods=["POST"]),
        Route(f"{ML}/_predict/{{algorithm}}/{{model_id}}", predict, methods=["POST"]),
        Route(f"{base}/{{model_id}}", get, methods=["GET"]),
        Route(f"{base}/{{model_id}}", update, methods=["PUT"]),
        Route(f"{base}/{{model_id}}", delete, methods=["DELETE"]),
    ]
