"""ML Commons agents and tools: register, get, update, search, delete, execute (sync or `?async=true`), and the
tools list / get / direct execute."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mlsearch.api._request import json_body, param_bool
from mlsearch.api.render import json_response
from mlsearch.api.routes._common import node_of
from mlsearch.api.routes._ml import ML, run, system_write_result
from mlsearch.ml.agents import Agents
from mlsearch.ml.system_indices import AGENT_INDEX


def agents_of(request: Request) -> Agents:
    return node_of(request).agents


async def register(request: Request) -> Response:
    body = await json_body(request, required=True)
    return json_response(await run(request, agents_of(request).register, body), request=request)


async def get(request: Request) -> Response:
    return json_response(await run(request, agents_of(request).get, request.path_params["agent_id"]), request=request)


async def update(request: Request) -> Response:
    body = await json_body(request, required=True)
    result = await run(request, agents_of(request).update, request.path_params["agent_id"], body)
    return json_response(system_write_result(request, AGENT_INDEX, result), request=request)


async def search(request: Request) -> Response:
    body = await json_body(request)
    return json_response(await run(request, agents_of(request).search, body), request=request)


async def delete(request: Request) -> Response:
    result = await run(request, agents_of(request).delete, request.path_params["agent_id"])
    return json_response(system_write_result(request, AGENT_INDEX, result), request=request)


async def execute(request: Request) -> Response:
    body = await json_body(request)
    agents = agents_of(request)
    fn = agents.execute_async if param_bool(request, "async") else agents.execute
    return json_response(await run(request, fn, request.path_params["agent_id"], body), request=request)


async def list_tools(request: Request) -> Response:
    return json_response(agents_of(request).list_tools(), request=request)


async def get_tool(request: Request) -> Response:
    return json_response(agents_of(request).get_tool(request.path_params["tool"]), request=request)


async def execute_tool(request: Request) -> Response:
    body = await json_body(request)
    result = await run(request, agents_of(request).execute_tool, request.path_params["tool"], body)
    return json_response(result, request=request)


def routes() -> list[Route]:
    base = f"{ML}/agents"
    return [
        Route(f"{base}/_register", register, methods=["POST"]),
        Route(f"{base}/_search", search, methods=["GET", "POST"]),
        Route(f"{base}/{{agent_id}}/_execute", execute, methods=["POST"]),
        Route(f"{base}/{{agent_id}}", get, methods=["GET"]),
        Route(f"{base}/{{agent_id}}", update, methods=["PUT"]),
        Route(f"{base}/{{agent_id}}", delete, methods=["DELETE"]),
        Route(f"{ML}/tools", list_tools, methods=["GET"]),
        Route(f"{ML}/tools/_execute/{{tool}}", execute_tool, methods=["POST"]),
        Route(f"{ML}/tools/{{tool}}", get_tool, methods=["GET"]),
    ]
