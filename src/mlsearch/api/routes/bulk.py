"""`_bulk`: NDJSON actions (index, create, update, delete), per-item results and errors."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mlsearch.api._request import raw_body, refresh_param
from mlsearch.api.render import json_response
from mlsearch.api.routes._common import blocking, node_of, shards
from mlsearch.api.routes._pipeline import dropped_result, has_semantic, ingest_document, pipeline_ids, write_pipelines
from mlsearch.api.routes._pipeline import run as run_pipelines
from mlsearch.api.routes._writes import auto_id, forced_refresh, target_index, validate_op
from mlsearch.engine.index import DocOp, Index, OpResult
from mlsearch.errors import (
    ActionRequestValidationError,
    IllegalArgumentError,
    IndexNotFoundError,
    MapperParsingError,
    MLSearchError,
)
from mlsearch.node import Node

_ACTIONS = ("index", "create", "update", "delete")
_META_KEYS = {
    "_index",
    "_id",
    "routing",
    "_routing",
    "if_seq_no",
    "if_primary_term",
    "version",
    "version_type",
    "pipeline",
    "require_alias",
    "retry_on_conflict",
    "_source",
    "op_type",
    "dynamic_templates",
    "_type",
}


class _Item:
    """One action of the request: where it goes, the operation, or the error that stops it early."""

    def __init__(self, action: str, index_name: str | None, op: DocOp | None, error: MLSearchError | None) -> None:
        self.action = action
        self.index_name = index_name
        self.op = op
        self.error = error
        self.result: OpResult | None = None
        self.index: Index | None = None
        self.pipeline: str | None = None  # the item's `pipeline`, else the request's `?pipeline=`
        self.dropped = False


def _parse(lines: list[bytes], default_index: str | None, default_pipeline: str | None = None) -> list[_Item]:
    items: list[_Item] = []
    i = 0
    while i < len(lines):
        try:
            header = orjson.loads(lines[i])
        except orjson.JSONDecodeError as exc:
            raise IllegalArgumentError(
                f"Malformed action/metadata line [{i + 1}], expected START_OBJECT but found [{exc}]"
            ) from None
        if not isinstance(header, dict) or len(header) != 1:
            raise IllegalArgumentError(
                f"Malformed action/metadata line [{i + 1}], expected START_OBJECT or "
                f"END_OBJECT but found [VALUE_STRING]"
            )
        action, meta = next(iter(header.items()))
        if action not in _ACTIONS:
            raise IllegalArgumentError(
                f"Malformed action/metadata line [{i + 1}], expected field [create], "
                f"[delete], [index] or [update] but found [{action}]"
            )
        if not isinstance(meta, dict):
            raise IllegalArgumentError(f"Malformed action/metadata line [{i + 1}], expected START_OBJECT")
        for key in meta:
            if key not in _META_KEYS:
                raise IllegalArgumentError(f"Action/metadata line [{i + 1}] contains an unknown parameter [{key}]")
        i += 1
        source: Any = None
        error: MLSearchError | None = None
        if action != "delete":
            if i >= len(lines):
                raise IllegalArgumentError("The bulk request must be terminated by a newline [\\n]")
            try:
                source = orjson.loads(lines[i])
            except orjson.JSONDecodeError as exc:
                error = MapperParsingError(
                    "failed to parse", caused_by={"type": "json_parse_exception", "reason": str(exc)}
                )
            i += 1
        items.append(_item(action, meta, source, error, default_index, default_pipeline))
    return items


def _item(
    action: str,
    meta: dict[str, Any],
    source: Any,
    error: MLSearchError | None,
    default_index: str | None,
    default_pipeline: str | None = None,
) -> _Item:
    index_name = meta.get("_index", default_index)
    doc_id = meta.get("_id")
    if index_name is None:
        error = error or ActionRequestValidationError("Validation Failed: 1: index is missing;")
    if doc_id is None:
        if action in ("update", "delete"):
            error = error or ActionRequestValidationError("Validation Failed: 1: id is missing;")
        else:
            doc_id = auto_id()
            action = "create"
    op = None
    if error is None:
        try:
            op = DocOp(
                action=action,
                id=str(doc_id),
                source=source,
                if_seq_no=meta.get("if_seq_no"),
                if_primary_term=meta.get("if_primary_term"),
                version=meta.get("version"),
                version_type=meta.get("version_type", "internal"),
            )
            validate_op(op)
        except MLSearchError as exc:
            error, op = exc, None
    item = _Item(action, index_name, op, error)
    item.pipeline = meta.get("pipeline", default_pipeline)
    item.op_id = str(doc_id) if doc_id is not None else None  # type: ignore[attr-defined]
    return item


def _validate(items: list[_Item]) -> None:
    """Like OpenSearch's BulkRequest.validate(): a request-level problem in any item rejects the whole request."""
    problems = [
        item.error.reason.removeprefix("Validation Failed: 1: ")
        for item in items
        if isinstance(item.error, ActionRequestValidationError)
    ]
    if problems:
        numbered = "".join(f"{n}: {p}" for n, p in enumerate(problems, 1))
        raise ActionRequestValidationError(f"Validation Failed: {numbered}")


async def bulk(request: Request) -> Response:
    started = time.perf_counter()
    body = await raw_body(request)
    lines = [line for line in body.split(b"\n") if line.strip()]
    if not lines:
        raise ActionRequestValidationError("Validation Failed: 1: no requests added;")
    if not body.rstrip(b" \t\r").endswith(b"\n"):
        raise IllegalArgumentError("The bulk request must be terminated by a newline [\\n]")
    items = _parse(lines, request.path_params.get("index"), request.query_params.get("pipeline"))
    _validate(items)
    refresh = refresh_param(request)
    groups: dict[str, list[_Item]] = {}
    for item in items:
        if item.error is None and item.index_name is not None:
            try:
                item.index = await target_index(request, item.index_name)
            except MLSearchError as exc:
                item.error = exc
    node = node_of(request)
    await _run_pipelines(node, items)
    for item in items:
        if item.error is None and item.index is not None and not item.dropped:
            groups.setdefault(item.index.name, []).append(item)
    for name, group in groups.items():
        index = node.indices.get(name)
        results = await blocking(index.write, [g.op for g in group], refresh=refresh)
        for item, result in zip(group, results, strict=True):
            item.result = result
    forced = forced_refresh(request)
    rendered = [_render(item, forced) for item in items]
    errors = any("error" in next(iter(r.values())) for r in rendered)
    return json_response(
        {"took": int((time.perf_counter() - started) * 1000), "errors": errors, "items": rendered}, request=request
    )


async def _run_pipelines(node: Node, items: list[_Item]) -> None:
    """Index and create items through their pipelines: one batch per pipeline chain, so that model processors make
    one call for many documents; a failing document fails only its own item."""
    # One chain per pipeline ids, and per index when the index has semantic fields (its system pipeline).
    chains: dict[tuple[tuple[str, ...], str | None], list[_Item]] = {}
    semantic_index: dict[str, bool] = {}  # per index, looked up once per request
    for item in items:
        if item.error is not None or item.index is None or item.op is None or item.action not in ("index", "create"):
            continue
        if not isinstance(item.op.source, dict):
            continue  # the engine reports a malformed source
        ids = pipeline_ids(item.index, item.pipeline)
        if item.index.name not in semantic_index:
            semantic_index[item.index.name] = has_semantic(item.index)
        semantic = item.index.name if semantic_index[item.index.name] else None
        if ids or semantic:
            chains.setdefault((ids, semantic), []).append(item)
    for (ids, _), chain in chains.items():
        try:
            pipelines = write_pipelines(node, chain[0].index, ids)  # type: ignore[arg-type]
            docs = [ingest_document(i.index, i.op.id, i.op.source) for i in chain]  # type: ignore[union-attr, arg-type]
        except MLSearchError as exc:
            for item in chain:
                item.error = exc
            continue
        outcomes = await blocking(run_pipelines, pipelines, docs)
        for item, outcome in zip(chain, outcomes, strict=True):
            if isinstance(outcome, MLSearchError):
                item.error = outcome
            elif outcome is None:
                item.dropped = True
            else:
                item.op = replace(item.op, source=outcome.source)  # type: ignore[arg-type]


def _render(item: _Item, forced: bool) -> dict[str, Any]:
    doc_id = getattr(item, "op_id", None)
    if item.dropped:
        return {item.action: {**dropped_result(item.index.name, doc_id), "status": 200}}  # type: ignore[union-attr]
    error = item.error or (item.result.error if item.result else None)
    index_name = item.index.name if item.index else item.index_name
    if error is not None:
        inner: dict[str, Any] = {"_index": index_name, "_id": doc_id, "status": error.status, "error": error.body()}
        if isinstance(error, IndexNotFoundError):
            inner["error"] = error.body()
        return {item.action: inner}
    assert item.result is not None and item.index is not None
    result = item.result
    body: dict[str, Any] = {"_index": index_name, "_id": result.id, "_version": result.version, "result": result.result}
    if forced and result.result != "noop":
        body["forced_refresh"] = True
    body["_shards"] = shards(item.index) if result.result != "noop" else {"total": 0, "successful": 0, "failed": 0}
    body["_seq_no"], body["_primary_term"], body["status"] = result.seq_no, result.primary_term, result.status
    return {item.action: body}


def routes() -> list[Route]:
    return [
        Route("/_bulk", bulk, methods=["POST", "PUT"]),
        Route("/{index}/_bulk", bulk, methods=["POST", "PUT"]),
    ]
