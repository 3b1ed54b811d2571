"""Search routes: `_search`, `_count`, `_msearch`."""

from __future__ import annotations

import time
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mlsearch.api._request import json_body, param_bool, raw_body
from mlsearch.api.render import error_body, json_response
from mlsearch.api.routes import search_pipeline
from mlsearch.api.routes._common import blocking, node_of
from mlsearch.engine import aggs
from mlsearch.engine.fusion import Fusion
from mlsearch.engine.index import Index
from mlsearch.engine.query import dsl
from mlsearch.engine.query.compile import count_matches
from mlsearch.engine.scroll import Scrolls
from mlsearch.engine.search import context_for, execute, matching_query, parse_request
from mlsearch.errors import IllegalArgumentError, MLSearchError, ParsingError
from mlsearch.neural import mentions_models, rewrite
from mlsearch.neural.semantic import targets_of
from mlsearch.pipelines.search import SearchContext, SearchPipeline

_SEARCH_PARAMS = (
    "q",
    "size",
    "from",
    "sort",
    "_source",
    "_source_includes",
    "_source_excludes",
    "track_total_hits",
    "explain",
    "version",
    "seq_no_primary_term",
    "stored_fields",
    "docvalue_fields",
    "scroll",  # opens a scroll context (engine/scroll.py)
)


async def _with_model_outputs(
    request: Request, body: dict[str, Any], indices: list[Index] | None = None
) -> dict[str, Any]:
    """The body with its `neural` / `neural_sparse` queries run through their models (neural-search's rewrite);
    a `neural` query on a `semantic` field of the searched indices goes to its embedding field."""
    ml = getattr(node_of(request), "ml", None)
    if ml is None or not mentions_models(body):
        return body
    semantic = targets_of([index.mappings.tree for index in indices or []], ml.registry.find)
    return await blocking(rewrite, body, ml, None, semantic)


def _params(request: Request) -> dict[str, str]:
    """The URL's search parameters (a fresh dict: `_run` takes size / from out of it)."""
    return {k: request.query_params[k] for k in _SEARCH_PARAMS if k in request.query_params}


def _indices(request: Request, expression: str | None) -> list[Index]:
    return node_of(request).indices.resolve(
        expression,
        ignore_unavailable=param_bool(request, "ignore_unavailable"),
        allow_no_indices=param_bool(request, "allow_no_indices", True),
    )


async def search(request: Request) -> Response:
    body = await json_body(request) or {}
    if not isinstance(body, dict):
        raise ParsingError("request body must be an object")
    indices = _indices(request, request.path_params.get("index"))
    response = await _run(request, body, indices, request.query_params.get("search_pipeline"), _params(request))
    return json_response(response, request=request)


async def _run(
    request: Request, body: dict[str, Any], indices: list[Index], pipeline_id: str | None, params: dict[str, str]
) -> dict[str, Any]:
    """One search through its pipeline (`_search`, and each line of `_msearch`)."""
    # URL size / from are part of the request the processors see (oversample, two-phase window), as in OpenSearch
    paging = {k: params.pop(k) for k in ("size", "from") if k in params}
    if paging:
        body = {**body, **{k: _int_param(k, v) for k, v in paging.items()}}
    # Request processors first (neural_query_enricher fills in model ids), then the models' outputs.
    pipeline, ctx, body = await _pipeline_request(request, body, indices, pipeline_id)
    body = await _with_model_outputs(request, body, indices)
    fusion = pipeline.fusion() if pipeline is not None else None
    # Parsing joins the search on the worker thread: the event loop stays free for other connections, and a knn
    # search crosses threads once.
    scrolls = node_of(request).scrolls if "scroll" in params else None
    response = await blocking(_search, indices, body, params, fusion, scrolls)
    if pipeline is not None and ctx is not None and pipeline.response:
        response = await blocking(pipeline.transform_response, response, ctx)
    return response


def _int_param(name: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise IllegalArgumentError(f"Failed to parse int parameter [{name}] with value [{value}]") from None


def _search(
    indices: list[Index],
    body: dict[str, Any],
    params: dict[str, str],
    fusion: Fusion | None,
    scrolls: Scrolls | None = None,
) -> dict[str, Any]:
    req = parse_request(body, params)
    if scrolls is not None:
        return scrolls.open(indices, req, params["scroll"], params, aggs_runner=aggs.run)
    return execute(indices, req, aggs_runner=aggs.run, fusion=fusion)


async def _pipeline_request(
    request: Request, body: dict[str, Any], indices: list[Index], pipeline_id: str | None
) -> tuple[SearchPipeline | None, SearchContext | None, dict[str, Any]]:
    """The search pipeline of this request (param, body or index default) and the body its request processors
    produce; they run first, so that e.g. neural_query_enricher fills model ids before neural queries rewrite."""
    node = node_of(request)
    pipeline = search_pipeline.resolve(node, pipeline_id, body, indices)
    if pipeline is None:
        return None, None, body
    ctx = search_pipeline.context_for(node, body)
    return pipeline, ctx, pipeline.transform_request(body, ctx)


async def count(request: Request) -> Response:
    body = await json_body(request) or {}
    if not isinstance(body, dict):
        raise ParsingError("request body must be an object")
    for key in body:
        if key != "query":
            raise ParsingError(f"request does not support [{key}]")
    params = _params(request)
    if "q" in params:
        body = {"query": {"query_string": {"query": params["q"]}}}
    indices = _indices(request, request.path_params.get("index"))
    body = await _with_model_outputs(request, body, indices)
    query = dsl.parse_query(body["query"]) if body.get("query") else dsl.MatchAll()
    total = await blocking(_count, indices, query)
    n = len(indices)
    return json_response(
        {"count": total, "_shards": {"total": n, "successful": n, "skipped": 0, "failed": 0}}, request=request
    )


def _count(indices: list[Index], query: dsl.Query) -> int:
    total = 0
    for index in indices:
        compiled = matching_query(query, context_for(index))
        total += count_matches(index.lexical.searcher(), compiled)
    return total


async def msearch(request: Request) -> Response:
    started = time.perf_counter()
    body = await raw_body(request)
    lines = [line for line in body.split(b"\n") if line.strip()]
    if len(lines) % 2:
        raise IllegalArgumentError("The msearch request must be terminated by a newline [\n]")
    default = request.path_params.get("index")
    responses: list[dict[str, Any]] = []
    for header_line, body_line in zip(lines[::2], lines[1::2], strict=True):
        try:
            header = orjson.loads(header_line) or {}
            search_body = orjson.loads(body_line) or {}
            target = header.get("index", default)
            if isinstance(target, list):
                target = ",".join(target)
            if not isinstance(search_body, dict):
                raise ParsingError("request body must be an object")
            indices = node_of(request).indices.resolve(
                target, ignore_unavailable=bool(header.get("ignore_unavailable", False))
            )
            # the header's search_pipeline, else the URL's, else the body's or the indices' default
            pipeline_id = header.get("search_pipeline", request.query_params.get("search_pipeline"))
            result = await _run(request, search_body, indices, pipeline_id, {})
            result["status"] = 200
            responses.append(result)
        except MLSearchError as exc:
            responses.append({**error_body(exc)})
        except orjson.JSONDecodeError as exc:
            err = ParsingError(f"Failed to parse msearch line: {exc}")
            responses.append(error_body(err))
    return json_response({"took": int((time.perf_counter() - started) * 1000), "responses": responses}, request=request)


def routes() -> list[Route]:
    return [
        Route("/_search", search, methods=["GET", "POST"]),
        Route("/{index}/_search", search, methods=["GET", "POST"]),
        Route("/_count", count, methods=["GET", "POST"]),
        Route("/{index}/_count", count, methods=["GET", "POST"]),
        Route("/_msearch", msearch, methods=["GET", "POST"]),
        Route("/{index}/_msearch", msearch, methods=["GET", "POST"]),
    ]
