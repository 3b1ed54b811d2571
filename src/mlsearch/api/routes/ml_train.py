"""ML Commons classic-ML routes: `_train` (sync or `?async=true`), `_predict`, `_train_predict`, `_execute`.

They run on the node's ML service (`node.ml.classic`): trained models are records of its model registry, async
training is a task of its task service."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mlsearch.api._request import json_body, param_bool
from mlsearch.api.render import json_response
from mlsearch.api.routes._ml import ML, ml_of, run
from mlsearch.errors import IllegalArgumentError, ParsingError
from mlsearch.ml.algorithms import algorithms
from mlsearch.ml.training import ClassicML


def _classic(request: Request) -> ClassicML:
    return ml_of(request).classic


async def _body(request: Request) -> dict[str, Any]:
    body = await json_body(request) or {}
    if not isinstance(body, dict):
        raise ParsingError("request body must be an object")
    return body


async def train(request: Request) -> Response:
    service = _classic(request)
    algorithm = request.path_params["algorithm"]
    body = await _body(request)
    if param_bool(request, "async"):
        task_id = await run(request, service.train_async, algorithm, body)
        return json_response({"task_id": task_id, "status": "CREATED"}, request=request)
    model_id = await run(request, service.train, algorithm, body)
    return json_response({"model_id": model_id, "status": "COMPLETED"}, request=request)


async def predict(request: Request) -> Response:
    """`_predict/{algorithm}/{model_id}`: classic algorithms here; model functions (text_embedding, remote, ...)
    belong to the deployed-model predict API."""
    if request.path_params["algorithm"].upper() not in algorithms.names():
        from mlsearch.api.routes import ml_models

        return await ml_models.predict(request)
    body = await _body(request)
    if param_bool(request, "async"):
        raise IllegalArgumentError("async predict is not supported")
    service = _classic(request)
    result = await run(
        request, service.predict, request.path_params["algorithm"], request.path_params["model_id"], body
    )
    return json_response(result, request=request)


async def train_predict(request: Request) -> Response:
    body = await _body(request)
    result = await run(request, _classic(request).train_predict, request.path_params["algorithm"], body)
    return json_response(result, request=request)


async def execute(request: Request) -> Response:
    body = await _body(request)
    result = await run(request, _classic(request).execute, request.path_params["algorithm"], body)
    return json_response(result, request=request)


def routes() -> list[Route]:
    table = [
        ("/_train/{algorithm}", train),
        ("/_predict/{algorithm}/{model_id}", predict),
        ("/_train_predict/{algorithm}", train_predict),
        ("/_execute/{algorithm}", execute),
    ]
    out = []
    for path, handler in table:
        out.append(Route(ML + path, handler, methods=["POST"]))
        out.append(Route(ML + path + "/", handler, methods=["POST"]))
    return out
