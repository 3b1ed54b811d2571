"""Document routes: index, create, get, exists, `_source`, delete, `_update`, `_mget`."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mlsearch.api._request import json_body, refresh_param
from mlsearch.api.render import error_body, json_response
from mlsearch.api.routes._common import blocking, node_of, write_result
from mlsearch.api.routes._pipeline import dropped_result, has_semantic, ingest_document, pipeline_ids, write_pipelines
from mlsearch.api.routes._pipeline import run as run_pipelines
from mlsearch.api.routes._writes import auto_id, concurrency, forced_refresh, target_index
from mlsearch.engine.index import DocOp, Index
from mlsearch.engine.source_filter import SourceFilter
from mlsearch.errors import (
    ActionRequestValidationError,
    IllegalArgumentError,
    IndexNotFoundError,
    MapperParsingError,
    MLSearchError,
    ParsingError,
)


def _doc_parse_error(reason: str) -> MapperParsingError:
    return MapperParsingError("failed to parse", caused_by={"type": "json_parse_exception", "reason": reason})


async def _write(request: Request, index: Index, op: DocOp) -> Response:
    refresh = refresh_param(request)
    [result] = await blocking(index.write, [op], refresh=refresh)
    if result.error is not None:
        raise result.error
    return json_response(
        write_result(index, result, forced_refresh=forced_refresh(request)), result.status, request=request
    )


async def index_doc(request: Request) -> Response:
    index = await target_index(request, request.path_params["index"])
    source = await json_body(request, required=True, error=_doc_parse_error)
    doc_id = request.path_params.get("id")
    op_type = request.query_params.get("op_type", "index")
    if op_type not in ("index", "create"):
        raise IllegalArgumentError(f"opType must be 'create' or 'index', found: [{op_type}]")
    if doc_id is None:
        if request.method == "PUT":
            raise IllegalArgumentError("Validation Failed: 1: an id is required for a PUT request;")
        doc_id, op_type = auto_id(), "create"
    if request.url.path.rstrip("/").split("/")[-2] == "_create":
        op_type = "create"
    op = concurrency(request, op_type, doc_id, source)
    ids = pipeline_ids(index, request.query_params.get("pipeline"))
    if (ids or has_semantic(index)) and isinstance(source, dict):
        pipelines = write_pipelines(node_of(request), index, ids)
        [outcome] = await blocking(run_pipelines, pipelines, [ingest_document(index, doc_id, source)])
        if isinstance(outcome, MLSearchError):
            raise outcome
        if outcome is None:
            return json_response(dropped_result(index.name, doc_id), request=request)
        op = replace(op, source=outcome.source)
    return await _write(request, index, op)


async def delete_doc(request: Request) -> Response:
    node = node_of(request)
    index = node.indices.write_target(request.path_params["index"])
    if index is None:
        raise IndexNotFoundError(request.path_params["index"])
    return await _write(request, index, concurrency(request, "delete", request.path_params["id"], None))


async def update_doc(request: Request) -> Response:
    index = await target_index(request, request.path_params["index"])
    body = await json_body(request, required=True)
    if not isinstance(body, dict):
        raise ParsingError("request body must be an object")
    allowed = {"doc", "upsert", "doc_as_upsert", "detect_noop", "script", "scripted_upsert", "_source"}
    for key in body:
        if key not in allowed:
            raise ParsingError(f"[UpdateRequest] unknown field [{key}]")
    if "doc" not in body and "script" not in body:
        raise ActionRequestValidationError("Validation Failed: 1: script or doc is missing;")
    if "doc" in body and "script" in body:
        raise ActionRequestValidationError("Validation Failed: 1: can't provide both script and doc;")
    op = concurrency(request, "update", request.path_params["id"], body)
    refresh = refresh_param(request)
    [result] = await blocking(index.write, [op], refresh=refresh)
    if result.error is not None:
        raise result.error
    response = write_result(index, result, forced_refresh=forced_refresh(request))
    wanted = _update_source_filter(request, body)
    if wanted is not None and result.source is not None:
        get: dict[str, Any] = {"_seq_no": result.seq_no, "_primary_term": result.primary_term, "found": True}
        filtered = wanted.apply(result.source)
        if filtered is not None:
            get["_source"] = filtered
        response["get"] = get
    return json_response(response, result.status, request=request)


def _update_source_filter(request: Request, body: dict[str, Any]) -> SourceFilter | None:
    from_params = SourceFilter.from_params(
        request.query_params.get("_source"),
        request.query_params.get("_source_includes"),
        request.query_params.get("_source_excludes"),
    )
    if from_params is not None:
        return from_params if from_params.enabled else None
    if "_source" in body and body["_source"] is not False:
        return SourceFilter.parse(body["_source"])
    return None


def _found(index: Index, doc: Any, source_filter: SourceFilter | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "_index": index.name,
        "_id": doc.id,
        "_version": doc.version,
        "_seq_no": doc.seq_no,
        "_primary_term": doc.primary_term,
        "found": True,
    }
    source = orjson.loads(doc.source)
    filtered = source if source_filter is None else source_filter.apply(source)
    if filtered is not None:
        body["_source"] = filtered
    return body


async def get_doc(request: Request) -> Response:
    index = (
        node_of(request).indices.get(request.path_params["index"])
        if node_of(request).indices.find(request.path_params["index"])
        else _alias_target(request)
    )
    doc_id = request.path_params["id"]
    doc = await blocking(index.get, doc_id)
    if doc is None:
        return json_response({"_index": index.name, "_id": doc_id, "found": False}, 404, request=request)
    return json_response(_found(index, doc, _params_filter(request)), request=request)


def _alias_target(request: Request) -> Index:
    node = node_of(request)
    index = node.indices.write_target(request.path_params["index"])
    if index is None:
        raise IndexNotFoundError(request.path_params["index"])
    return index


def _params_filter(request: Request) -> SourceFilter | None:
    return SourceFilter.from_params(
        request.query_params.get("_source"),
        request.query_params.get("_source_includes"),
        request.query_params.get("_source_excludes"),
    )


async def get_source(request: Request) -> Response:
    index = _alias_target(request)
    doc_id = request.path_params["id"]
    doc = await blocking(index.get, doc_id)
    if doc is None:
        from mlsearch.errors import ResourceNotFoundError

        raise ResourceNotFoundError(f"Document not found [{index.name}]/[{doc_id}]")
    source = orjson.loads(doc.source)
    wanted = _params_filter(request)
    return json_response(source if wanted is None else wanted.apply(source) or {}, request=request)


async def mget(request: Request) -> Response:
    body = await json_body(request, required=True)
    if not isinstance(body, dict):
        raise ParsingError("request body must be an object")
    default_index = request.path_params.get("index")
    requests: list[tuple[str | None, str, Any]] = []
    if "docs" in body:
        for item in body["docs"]:
            if not isinstance(item, dict) or "_id" not in item:
                raise ActionRequestValidationError("Validation Failed: 1: id is missing for doc 0;")
            requests.append((item.get("_index", default_index), str(item["_id"]), item.get("_source")))
    elif "ids" in body:
        requests = [(default_index, str(i), None) for i in body["ids"]]
    else:
        raise ParsingError("unexpected token [START_OBJECT], expected [docs] or [ids]")
    node = node_of(request)
    base_filter = _params_filter(request)
    docs = []
    for index_name, doc_id, source_spec in requests:
        if index_name is None:
            raise ActionRequestValidationError("Validation Failed: 1: index is missing for doc 0;")
        index = node.indices.write_target(index_name)
        if index is None:
            # mget reports a missing index per document, in the full error envelope
            docs.append(
                {"_index": index_name, "_id": doc_id, "error": error_body(IndexNotFoundError(index_name))["error"]}
            )
            continue
        doc = await blocking(index.get, doc_id)
        if doc is None:
            docs.append({"_index": index.name, "_id": doc_id, "found": False})
            continue
        wanted = SourceFilter.parse(source_spec) if source_spec is not None else base_filter
        docs.append(_found(index, doc, wanted))
    return json_response({"docs": docs}, request=request)


async def doc_exists(request: Request) -> Response:
    node = node_of(request)
    index = node.indices.write_target(request.path_params["index"])
    if index is None:
        return Response(b"", status_code=404)
    doc = await blocking(index.get, request.path_params["id"])
    return Response(b"", status_code=200 if doc is not None else 404)


def routes() -> list[Route]:
    return [
        Route("/_mget", mget, methods=["GET", "POST"]),
        Route("/{index}/_mget", mget, methods=["GET", "POST"]),
        Route("/{index}/_doc", index_doc, methods=["POST"]),
        Route("/{index}/_doc/{id:path}", doc_exists, methods=["HEAD"]),
        Route("/{index}/_doc/{id:path}", get_doc, methods=["GET"]),
        Route("/{index}/_doc/{id:path}", index_doc, methods=["PUT", "POST"]),
        Route("/{index}/_doc/{id:path}", delete_doc, methods=["DELETE"]),
        Route("/{index}/_create/{id:path}", index_doc, methods=["PUT", "POST"]),
        Route("/{index}/_update/{id:path}", update_doc, methods=["POST"]),
        Route("/{index}/_source/{id:path}", get_source, methods=["GET"]),
        Route("/{index}/_source/{id:path}", doc_exists, methods=["HEAD"]),
    ]
