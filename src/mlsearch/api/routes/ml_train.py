"""ML Commons classic-ML routes: `_train` (sync or `?async=true`), `_predict`, `_train_predict`, `_execute`."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mlsearch.api._request import json_body, param_bool
from mlsearch.api.render import json_response
from mlsearch.api.routes._common import blocking, node_of
from mlsearch.errors import IllegalArgumentError, ParsingError
from mlsearch.ml.algorithms import TRAIN, algorithms
from mlsearch.ml.train_tasks import TrainTasks
from mlsearch.ml.trained_models import TrainedModels
from mlsearch.ml.training import ClassicML

_PREFIX = "/_plugins/_ml"


def _services(request: Request) -> tuple[ClassicML, TrainTasks]:
    """Built on first use and kept on the app. TODO(merge): app.py builds these with the shared registry/tasks."""
    state = request.app.state
    if not hasattr(state, "classic_ml"):
        node = node_of(request)
        state.classic_ml = ClassicML(node.indices, TrainedModels(node.indices))
        state.train_tasks = TrainTasks(node.indices, node.node_id)
        state.background = set()
    return state.classic_ml, state.train_tasks


async def _body(request: Request) -> dict[str, Any]:
    body = await json_body(request) or {}
    if not isinstance(body, dict):
        raise ParsingError("request body must be an object")
    return body


async def train(request: Request) -> Response:
    service, tasks = _services(request)
    algorithm = request.path_params["algorithm"]
    body = await _body(request)
    if not param_bool(request, "async"):
        model_id = await blocking(service.train, algorithm, body)
        return json_response({"model_id": model_id, "status": "COMPLETED"}, request=request)
    spec = algorithms.for_api(algorithm, TRAIN)
    spec.factory(body.get("parameters"))  # reject bad parameters now, not in the task
    task_id = await blocking(tasks.create, "TRAINING", spec.name, service.input_type(body))
    job = asyncio.create_task(blocking(tasks.run, task_id, lambda: service.train(algorithm, body)))
    # Keep a reference until done, or the event loop may drop the task.
    request.app.state.background.add(job)
    job.add_done_callback(request.app.state.background.discard)
    return json_response({"task_id": task_id, "status": "CREATED"}, request=request)


async def predict(request: Request) -> Response:
    """`_predict/{algorithm}/{model_id}`: classic algorithms here; model functions (text_embedding, remote, ...)
    belong to the deployed-model predict API."""
    if request.path_params["algorithm"].upper() not in algorithms.names():
        from mlsearch.api.routes import ml_models

        return await ml_models.predict(request)
    service, _ = _services(request)
    body = await _body(request)
    if param_bool(request, "async"):
        raise IllegalArgumentError("async predict is not supported")
    result = await blocking(service.predict, request.path_params["algorithm"], request.path_params["model_id"], body)
    return json_response(result, request=request)


async def train_predict(request: Request) -> Response:
    service, _ = _services(request)
    body = await _body(request)
    return json_response(await blocking(service.train_predict, request.path_params["algorithm"], body), request=request)


async def execute(request: Request) -> Response:
    service, _ = _services(request)
    body = await _body(request)
    return json_response(await blocking(service.execute, request.path_params["algorithm"], body), request=request)


def routes() -> list[Route]:
    table = [
        ("/_train/{algorithm}", train),
        ("/_predict/{algorithm}/{model_id}", predict),
        ("/_train_predict/{algorithm}", train_predict),
        ("/_execute/{algorithm}", execute),
    ]
    out = []
    for path, handler in table:
        out.append(Route(_PREFIX + path, handler, methods=["POST"]))
        out.append(Route(_PREFIX + path + "/", handler, methods=["POST"]))
    return out
