"""ML Commons conversational memory (`/_plugins/_ml/memory`): memories, their messages and traces, and `_search`."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mlsearch.api._request import json_body, param_int
from mlsearch.api.render import json_response
from mlsearch.api.routes._common import blocking, node_of, write_result
from mlsearch.engine.index import OpResult
from mlsearch.errors import IllegalArgumentError, ParsingError
from mlsearch.ml.memory import ConversationMemory, check_enabled, check_page
from mlsearch.ml.system_indices import MEMORY_MESSAGE_INDEX, MEMORY_META_INDEX

BASE = "/_plugins/_ml/memory"


def _memory(request: Request) -> ConversationMemory:
    """The node's memory service, once the feature gate allows it."""
    node = node_of(request)
    check_enabled(node.cluster_settings.get)
    return node.memory


def _page(request: Request) -> tuple[int, int]:
    return param_int(request, "max_results", 10) or 0, param_int(request, "next_token", 0) or 0


def _page_body(key: str, page: list[Any], max_results: int, next_token: int) -> dict[str, Any]:
    body: dict[str, Any] = {key: page}
    if len(page) == max_results:  # as ML Commons: a full page carries the next token
        body["next_token"] = next_token + max_results
    return body


def _object(body: Any) -> dict[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise ParsingError("request body must be an object")
    return body


def _string(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise IllegalArgumentError(f"[{key}] must be a string")
    return value


def _map(body: dict[str, Any], key: str) -> dict[str, Any] | None:
    value = body.get(key)
    if value is not None and not isinstance(value, dict):
        raise IllegalArgumentError(f"[{key}] must be an object")
    return value


def _write_result(request: Request, index_name: str, result: OpResult) -> dict[str, Any]:
    index = node_of(request).ml.records.index(index_name)
    return write_result(index, result, forced_refresh=True)


# ---- memories ---------------------------------------------------------------------------------------------


async def create_memory(request: Request) -> Response:
    memory = _memory(request)
    body = _object(await json_body(request))
    name = _string(body, "name")
    # As ML Commons: without a name, the other fields of the body are not kept either.
    kwargs: dict[str, Any] = {}
    if name is not None:
        kwargs = {
            "application_type": _string(body, "application_type"),
            "additional_info": _map(body, "additional_info"),
        }
    memory_id = await blocking(memory.create_memory, name, **kwargs)
    return json_response({"memory_id": memory_id}, request=request)


async def get_memory(request: Request) -> Response:
    memory = _memory(request)
    found = await blocking(memory.get_memory, request.path_params["memory_id"])
    return json_response(found, request=request)


async def list_memories(request: Request) -> Response:
    memory = _memory(request)
    max_results, next_token = _page(request)
    page, token = await blocking(memory.memories, max_results, next_token)
    body: dict[str, Any] = {"memories": page}
    if token is not None:
        body["next_token"] = token
    return json_response(body, request=request)


async def update_memory(request: Request) -> Response:
    memory = _memory(request)
    body = _object(await json_body(request, required=True))
    changes = {k: v for k, v in body.items() if k in ("name", "additional_info")}
    if not changes:
        raise IllegalArgumentError("Validation Failed: 1: Update conversation content can't be null;")
    _string(changes, "name")
    _map(changes, "additional_info")
    result = await blocking(memory.update_memory, request.path_params["memory_id"], changes)
    return json_response(_write_result(request, MEMORY_META_INDEX, result), request=request)


async def delete_memory(request: Request) -> Response:
    memory = _memory(request)
    await blocking(memory.delete_memory, request.path_params["memory_id"])
    return json_response({"success": True}, request=request)


async def search_memories(request: Request) -> Response:
    memory = _memory(request)
    body = await json_body(request)
    return json_response(await blocking(memory.search, MEMORY_META_INDEX, body), request=request)


# ---- messages ---------------------------------------------------------------------------------------------


async def create_message(request: Request) -> Response:
    memory = _memory(request)
    body = _object(await json_body(request))
    trace_number = body.get("trace_number")
    if trace_number is not None and (isinstance(trace_number, bool) or not isinstance(trace_number, int)):
        raise IllegalArgumentError("[trace_number] must be an integer")
    message_id = await blocking(
        memory.add_message,
        request.path_params["memory_id"],
        input=_string(body, "input"),
        prompt_template=_string(body, "prompt_template"),
        response=_string(body, "response"),
        origin=_string(body, "origin"),
        additional_info=_map(body, "additional_info"),
        parent_message_id=_string(body, "parent_message_id"),
        trace_number=trace_number,
    )
    return json_response({"message_id": message_id}, request=request)


async def list_messages(request: Request) -> Response:
    memory = _memory(request)
    memory_id = request.path_params["memory_id"]
    max_results, next_token = _page(request)
    check_page(max_results, next_token, "interactions")
    await blocking(memory.get_memory, memory_id)
    found = await blocking(memory.messages, memory_id, max_results, next_token)
    return json_response(_page_body("messages", found, max_results, next_token), request=request)


async def get_message(request: Request) -> Response:
    memory = _memory(request)
    return json_response(await blocking(memory.get_message, request.path_params["message_id"]), request=request)


async def update_message(request: Request) -> Response:
    memory = _memory(request)
    body = _object(await json_body(request, required=True))
    if "additional_info" not in body and "response" not in body:
        raise IllegalArgumentError("Validation Failed: 1: Update Interaction content can't be null;")
    result = await blocking(
        memory.update_message,
        request.path_params["message_id"],
        response=_string(body, "response"),
        additional_info=_map(body, "additional_info"),
    )
    return json_response(_write_result(request, MEMORY_MESSAGE_INDEX, result), request=request)


async def list_traces(request: Request) -> Response:
    memory = _memory(request)
    max_results, next_token = _page(request)
    check_page(max_results, next_token, "traces")
    found = await blocking(memory.traces, request.path_params["message_id"])
    page = found[next_token : next_token + max_results]
    return json_response(_page_body("traces", page, max_results, next_token), request=request)


async def search_messages(request: Request) -> Response:
    memory = _memory(request)
    memory_id = request.path_params["memory_id"]
    body = _object(await json_body(request))
    await blocking(memory.get_memory, memory_id)
    query = body.get("query") or {"match_all": {}}
    scoped = {**body, "query": {"bool": {"must": [query], "filter": [{"term": {"memory_id": memory_id}}]}}}
    return json_response(await blocking(memory.search, MEMORY_MESSAGE_INDEX, scoped), request=request)


def routes() -> list[Route]:
    return [
        Route(BASE, create_memory, methods=["POST"]),
        Route(f"{BASE}/", create_memory, methods=["POST"]),
        Route(BASE, list_memories, methods=["GET"]),
        Route(f"{BASE}/_search", search_memories, methods=["GET", "POST"]),
        Route(f"{BASE}/message/{{message_id}}", get_message, methods=["GET"]),
        Route(f"{BASE}/message/{{message_id}}", update_message, methods=["PUT"]),
        Route(f"{BASE}/message/{{message_id}}/traces", list_traces, methods=["GET"]),
        Route(f"{BASE}/{{memory_id}}", get_memory, methods=["GET"]),
        Route(f"{BASE}/{{memory_id}}", update_memory, methods=["PUT"]),
        Route(f"{BASE}/{{memory_id}}", delete_memory, methods=["DELETE"]),
        Route(f"{BASE}/{{memory_id}}/messages", create_message, methods=["POST"]),
        Route(f"{BASE}/{{memory_id}}/messages", list_messages, methods=["GET"]),
        Route(f"{BASE}/{{memory_id}}/_search", search_messages, methods=["GET", "POST"]),
    ]
