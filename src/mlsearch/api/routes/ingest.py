"""Ingest pipeline API: `PUT|GET|DELETE /_ingest/pipeline/{id}` and `_simulate` (with `verbose`)."""

from __future__ import annotations

import copy
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mlsearch.api._request import json_body, param_bool
from mlsearch.api.render import json_response
from mlsearch.api.routes._common import blocking, node_of
from mlsearch.errors import ParseError
from mlsearch.pipelines.base import config_error
from mlsearch.pipelines.document import IngestDocument
from mlsearch.pipelines.runner import Pipeline, Trace, error_object

SIMULATED = "_simulate_pipeline"


async def put_pipeline(request: Request) -> Response:
    node = node_of(request)
    body = await json_body(request, required=True)
    if not isinstance(body, dict):
        raise ParseError("request body must be an object")
    await blocking(node.pipelines.put, request.path_params["id"], body)
    return json_response({"acknowledged": True}, request=request)


async def get_pipeline(request: Request) -> Response:
    found = node_of(request).pipelines.bodies(request.path_params.get("id"))
    if not found and request.path_params.get("id") not in (None, "*", "_all"):
        return json_response({}, 404, request=request)
    return json_response(found, request=request)


async def delete_pipeline(request: Request) -> Response:
    await blocking(node_of(request).pipelines.delete, request.path_params["id"])
    return json_response({"acknowledged": True}, request=request)


async def simulate(request: Request) -> Response:
    node = node_of(request)
    body = await json_body(request, required=True)
    if not isinstance(body, dict):
        raise ParseError("request body must be an object")
    pipeline_id = request.path_params.get("id")
    if pipeline_id is not None:
        pipeline = node.pipelines.get(pipeline_id)
    else:
        if "pipeline" not in body:
            raise config_error(None, None, "pipeline", "required property is missing")
        pipeline = node.pipelines.parse(SIMULATED, body["pipeline"])
    docs = _docs(body.get("docs"))
    verbose = param_bool(request, "verbose")
    results = await blocking(_simulate, pipeline, docs, verbose)
    return json_response({"docs": results}, request=request)


def _docs(raw: Any) -> list[IngestDocument]:
    if raw is None:
        raise config_error(None, None, "docs", "required property is missing")
    if not isinstance(raw, list):
        raise config_error(None, None, "docs", "property isn't a list, but of type [java.lang.String]")
    docs = []
    for entry in raw:
        if not isinstance(entry, dict) or "_source" not in entry:
            raise config_error(None, None, "_source", "required property is missing")
        meta = {"_index": str(entry.get("_index", "_index")), "_id": str(entry.get("_id", "_id"))}
        for key in ("_routing", "_version", "_version_type", "_if_seq_no", "_if_primary_term"):
            if key in entry:
                meta[key] = entry[key]
        docs.append(IngestDocument(copy.deepcopy(entry["_source"]), meta))
    return docs


def _simulate(pipeline: Pipeline, docs: list[IngestDocument], verbose: bool) -> list[Any]:
    if verbose:
        out = []
        for doc in docs:
            trace: Trace = []
            pipeline.run([doc], [trace])
            out.append({"processor_results": trace})
        return out
    rendered: list[Any] = []
    for outcome in pipeline.run(docs):
        if outcome is None:
            rendered.append(None)
        elif isinstance(outcome, IngestDocument):
            outcome.ingest.pop("pipeline", None)
            rendered.append({"doc": outcome.render()})
        else:
            rendered.append({"error": error_object(outcome)})
    return rendered


def routes() -> list[Route]:
    base = "/_ingest/pipeline"
    return [
        Route(base, get_pipeline, methods=["GET"]),
        Route(f"{base}/_simulate", simulate, methods=["GET", "POST"]),
        Route(f"{base}/{{id}}/_simulate", simulate, methods=["GET", "POST"]),
        Route(f"{base}/{{id}}", get_pipeline, methods=["GET"]),
        Route(f"{base}/{{id}}", put_pipeline, methods=["PUT"]),
        Route(f"{base}/{{id}}", delete_pipeline, methods=["DELETE"]),
    ]
