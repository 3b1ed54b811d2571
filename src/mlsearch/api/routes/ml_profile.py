"""ML Commons profile and stats (`/_plugins/_ml/profile...`, `/_plugins/_ml/stats...`)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mlsearch.api._request import json_body
from mlsearch.api.render import json_response
from mlsearch.api.routes._ml import ML, id_list, ml_of, run
from mlsearch.errors import ParsingError
from mlsearch.ml import monitoring


async def profile(request: Request) -> Response:
    body = await json_body(request) or {}
    if not isinstance(body, dict):
        raise ParsingError("request body must be an object")
    path = request.url.path.rstrip("/")
    models = not path.endswith("/tasks") and "/profile/tasks" not in path
    tasks = not path.endswith("/models") and "/profile/models" not in path
    model_ids = id_list(request.path_params.get("model_ids")) or _ids(body, "model_ids")
    task_ids = id_list(request.path_params.get("task_ids")) or _ids(body, "task_ids")
    view = request.query_params.get("view", "node")
    answer = await run(
        request,
        monitoring.profile,
        ml_of(request),
        models=models,
        tasks=tasks,
        model_ids=model_ids,
        task_ids=task_ids,
        view=view,
    )
    return json_response(answer, request=request)


def _ids(body: dict[str, Any], key: str) -> list[str] | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, list):
        raise ParsingError(f"[{key}] must be an array")
    return [str(v) for v in value]


async def stats(request: Request) -> Response:
    answer = await run(
        request,
        monitoring.stats,
        ml_of(request),
        stat_names=id_list(request.path_params.get("stat")),
        node_ids=id_list(request.path_params.get("node_id")),
    )
    return json_response(answer, request=request)


def routes() -> list[Route]:
    paths = [
        "/profile",
        "/profile/models",
        "/profile/models/{model_ids}",
        "/profile/tasks",
        "/profile/tasks/{task_ids}",
    ]
    out = [Route(f"{ML}{p}", profile, methods=["GET", "POST"]) for p in paths]
    for p in ("/stats", "/stats/{stat}", "/{node_id}/stats", "/{node_id}/stats/{stat}"):
        out.append(Route(f"{ML}{p}", stats, methods=["GET"]))
        out.append(Route(f"{ML}{p}/", stats, methods=["GET"]))
    return out
