"""`_delete_by_query`, `_update_by_query` and `_reindex`: request parsing and BulkByScrollResponse rendering."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mlsearch.api._request import json_body, param_bool, param_int, refresh_param
from mlsearch.api.render import json_response
from mlsearch.api.routes._common import blocking, node_of
from mlsearch.api.routes._pipeline import has_semantic, ingest_document, pipeline_ids, resolve, write_pipelines
from mlsearch.api.routes._pipeline import run as run_pipelines
from mlsearch.api.routes._writes import target_index
from mlsearch.engine import by_query
from mlsearch.engine.by_query import ByQueryOptions, ByQueryStats, Planner, ReindexTarget, ScriptedUpdate
from mlsearch.engine.index import DocOp, Index
from mlsearch.engine.query import dsl
from mlsearch.engine.source_filter import SourceFilter
from mlsearch.engine.store import StoredDoc
from mlsearch.engine.update_script import UpdateScript, parse_script
from mlsearch.errors import ActionRequestValidationError, IllegalArgumentError, MLSearchError, ParsingError
from mlsearch.node import Node

_BY_QUERY_KEYS = {"query", "max_docs", "size", "conflicts", "slice", "script"}
_REINDEX_KEYS = {"source", "dest", "conflicts", "max_docs", "size", "script"}
_SOURCE_KEYS = {"index", "query", "size", "_source", "slice", "remote", "sort"}
_DEST_KEYS = {"index", "op_type", "version_type", "pipeline", "routing"}


def _check_keys(body: dict[str, Any], allowed: set[str], where: str) -> None:
    for key in body:
        if key not in allowed:
            raise ParsingError(f"[{where}] unknown field [{key}]")


def _check_sync(request: Request) -> None:
    if not param_bool(request, "wait_for_completion", True):
        raise IllegalArgumentError("wait_for_completion=false is not supported yet; run the request synchronously")


def _conflicts(value: Any) -> bool:
    """True for `proceed`; OpenSearch accepts only `abort` (the default) and `proceed`."""
    if value is None or value == "abort":
        return False
    if value == "proceed":
        return True
    raise IllegalArgumentError(f'conflicts may only be "proceed" or "abort" but was [{value}]')


def _max_docs(request: Request, body: dict[str, Any]) -> int | None:
    value = param_int(request, "max_docs")
    if value is None:
        value = body.get("max_docs", body.get("size"))
    if value is None:
        return None
    if not isinstance(value, int) or value < 0:
        raise ActionRequestValidationError(
            f"Validation Failed: 1: maxDocs should be greater than 0 if the request "
            f"is limited to some number of documents or -1 if it isn't but it was "
            f"[{value}];"
        )
    return value


def _options(request: Request, body: dict[str, Any], query_body: Any) -> ByQueryOptions:
    q = request.query_params.get("q")
    if q is not None:
        query_body = {"query_string": {"query": q}}
    query = dsl.parse_query(query_body) if query_body is not None else dsl.MatchAll()
    batch = param_int(request, "scroll_size", by_query.DEFAULT_BATCH_SIZE) or by_query.DEFAULT_BATCH_SIZE
    return ByQueryOptions(
        query=query,
        max_docs=_max_docs(request, body),
        batch_size=batch,
        proceed_on_conflicts=_conflicts(request.query_params.get("conflicts", body.get("conflicts"))),
        refresh=refresh_param(request),
    )


def _render(stats: ByQueryStats, counters: tuple[str, ...]) -> dict[str, Any]:
    """BulkByScrollResponse; each API shows only its own counters (as OpenSearch's REST handlers do)."""
    body: dict[str, Any] = {"took": stats.took_ms, "timed_out": False, "total": stats.total}
    for name in counters:
        body[name] = getattr(stats, name)
    body.update(
        {
            "batches": stats.batches,
            "version_conflicts": stats.version_conflicts,
            "noops": stats.noops,
            "retries": {"bulk": 0, "search": 0},
            "throttled_millis": 0,
            "requests_per_second": -1.0,
            "throttled_until_millis": 0,
            "failures": stats.failures,
        }
    )
    return body


async def _body(request: Request, allowed: set[str], where: str, *, required: bool = False) -> dict[str, Any]:
    body = await json_body(request, required=required) or {}
    if not isinstance(body, dict):
        raise ParsingError("request body must be an object")
    _check_keys(body, allowed, where)
    if "slice" in body:
        raise IllegalArgumentError("sliced requests are not supported yet")
    return body


def _script(body: dict[str, Any]) -> UpdateScript | None:
    """The job's script, checked before any document is read (a bad lang or a stored script id fails up front)."""
    return None if body.get("script") is None else parse_script(body["script"])


def _indices(request: Request) -> list[Index]:
    return node_of(request).indices.resolve(
        request.path_params["index"],
        ignore_unavailable=param_bool(request, "ignore_unavailable"),
        allow_no_indices=param_bool(request, "allow_no_indices", True),
    )


async def delete_by_query(request: Request) -> Response:
    _check_sync(request)
    # OpenSearch requires a body here (or `q`), so that a bare request cannot empty an index by accident.
    required = request.query_params.get("q") is None
    body = await _body(request, _BY_QUERY_KEYS, "delete_by_query", required=required)
    options = _options(request, body, body.get("query"))
    stats = await blocking(by_query.run, _indices(request), options, by_query.delete_planner)
    return json_response(_render(stats, ("deleted",)), stats.status, request=request)


async def update_by_query(request: Request) -> Response:
    _check_sync(request)
    body = await _body(request, _BY_QUERY_KEYS, "update_by_query")
    options = _options(request, body, body.get("query"))
    indices = _indices(request)
    requested = request.query_params.get("pipeline")
    script = _script(body)
    planner: Planner = by_query.update_planner if script is None else ScriptedUpdate(script)
    if any(pipeline_ids(i, requested) or has_semantic(i) for i in indices):
        planner = _through_pipelines(node_of(request), planner, requested)
    stats = await blocking(by_query.run, indices, options, planner)
    return json_response(_render(stats, ("updated", "deleted")), stats.status, request=request)


async def reindex(request: Request) -> Response:
    _check_sync(request)
    body = await _body(request, _REINDEX_KEYS, "reindex")
    source, dest = body.get("source"), body.get("dest")
    if not isinstance(source, dict) or not source.get("index"):
        raise ActionRequestValidationError(
            "Validation Failed: 1: use _all if you really want to copy from all existing indexes;"
        )
    if not isinstance(dest, dict) or not dest.get("index"):
        raise ActionRequestValidationError("Validation Failed: 1: index must be specified;")
    _check_keys(source, _SOURCE_KEYS, "source")
    _check_keys(dest, _DEST_KEYS, "dest")
    if "remote" in source:
        raise IllegalArgumentError("reindex from a remote cluster is not supported")
    script = _script(body)
    names = source["index"] if isinstance(source["index"], list) else [source["index"]]
    sources = node_of(request).indices.resolve(",".join(str(n) for n in names))
    target = replace(await _reindex_target(request, dest, source), script=script)
    if any(s.name == target.dest.name for s in sources):
        raise ActionRequestValidationError(
            f"Validation Failed: 1: reindex cannot write into an index its reading from [{target.dest.name}];"
        )
    options = _options(request, body, source.get("query"))
    if isinstance(source.get("size"), int) and source["size"] > 0:
        options = ByQueryOptions(
            options.query, options.max_docs, source["size"], options.proceed_on_conflicts, options.refresh
        )
    plan: Planner = target
    if pipeline_ids(target.dest, dest.get("pipeline")) or has_semantic(target.dest):
        resolve(node_of(request), pipeline_ids(target.dest, dest.get("pipeline")))  # a missing one fails up front
        plan = _through_pipelines(node_of(request), target, dest.get("pipeline"))
    stats = await blocking(by_query.run, sources, options, plan)
    return json_response(_render(stats, ("updated", "created", "deleted")), stats.status, request=request)


async def _reindex_target(request: Request, dest: dict[str, Any], source: dict[str, Any]) -> ReindexTarget:
    op_type = dest.get("op_type", "index")
    if op_type not in ("index", "create"):
        raise IllegalArgumentError(f"opType must be 'create' or 'index', found: [{op_type}]")
    version_type = dest.get("version_type", "internal")
    if version_type not in ("internal", "external", "external_gte"):
        raise IllegalArgumentError(f"No version type match [{version_type}]")
    index = await target_index(request, str(dest["index"]))
    return ReindexTarget(index, op_type, version_type, SourceFilter.parse(source.get("_source")))


def _through_pipelines(node: Node, plan: Planner, requested: str | None) -> Planner:
    """A planner whose index/create operations go through the target index's pipelines first (in batches, like
    `_bulk`), then its semantic fields' system pipeline. A document that fails in a pipeline stops the job with that
    error; a dropped one is not written."""

    def planned(index: Index, docs: list[StoredDoc]) -> tuple[Index, list[DocOp]]:
        target, ops = plan(index, docs)
        ids = pipeline_ids(target, requested)
        if not ids and not has_semantic(target):
            return target, ops
        pipelines = write_pipelines(node, target, ids)
        routed = [op for op in ops if isinstance(op.source, dict)]
        outcomes = run_pipelines(pipelines, [ingest_document(target, op.id, op.source) for op in routed])
        processed: dict[int, DocOp | None] = {}
        for op, outcome in zip(routed, outcomes, strict=True):
            if isinstance(outcome, MLSearchError):
                raise outcome
            processed[id(op)] = None if outcome is None else replace(op, source=outcome.source)
        kept = [processed.get(id(op), op) for op in ops]
        return target, [op for op in kept if op is not None]

    return planned


def routes() -> list[Route]:
    return [
        Route("/_reindex", reindex, methods=["POST"]),
        Route("/{index}/_delete_by_query", delete_by_query, methods=["POST"]),
        Route("/{index}/_update_by_query", update_by_query, methods=["POST"]),
    ]
