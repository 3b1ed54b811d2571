"""Index routes: create, delete, exists, get, `_mapping`, `_settings`, `_refresh`, `_flush`, `_aliases`."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mlsearch.api._request import json_body, param_bool
from mlsearch.api.render import json_response
from mlsearch.api.routes._common import blocking, node_of
from mlsearch.engine.index import Index
from mlsearch.engine.indices import VERSION_CREATED
from mlsearch.engine.mapping import Mappings
from mlsearch.engine.settings import as_string, nest, normalize_index_settings
from mlsearch.errors import (
    ActionRequestValidationError,
    IllegalArgumentError,
    IndexNotFoundError,
    MapperParsingError,
    ParsingError,
)
from mlsearch.neural.semantic import transform_mappings


def _resolve(request: Request, expression: str | None, **defaults: Any) -> list[Index]:
    options = {
        "ignore_unavailable": param_bool(request, "ignore_unavailable", defaults.get("ignore_unavailable", False)),
        "allow_no_indices": param_bool(request, "allow_no_indices", defaults.get("allow_no_indices", True)),
    }
    if request.query_params.get("expand_wildcards") in ("all", "hidden"):
        options["include_hidden"] = True
    return node_of(request).indices.resolve(expression, **options)


async def create_index(request: Request) -> Response:
    name = request.path_params["index"]
    body = (
        await json_body(
            request,
            error=lambda reason: MapperParsingError(
                "failed to parse", caused_by={"type": "json_parse_exception", "reason": reason}
            ),
        )
        or {}
    )
    if not isinstance(body, dict):
        raise ParsingError("request body must be an object")
    node = node_of(request)
    if "mappings" in body:
        body = {**body, "mappings": await _with_semantic_info(request, body["mappings"])}
    await blocking(node.indices.create, name, body)
    return json_response({"acknowledged": True, "shards_acknowledged": True, "index": name}, request=request)


async def _with_semantic_info(request: Request, mappings: Any) -> Any:
    """The mappings with the semantic info field of each `semantic` field added (its model looked up)."""
    ml = getattr(node_of(request), "ml", None)
    if ml is None or not isinstance(mappings, dict):
        return mappings
    return await blocking(transform_mappings, mappings, ml.registry.find)


async def delete_index(request: Request) -> Response:
    expression = request.path_params["index"]
    node = node_of(request)
    destructive = node.cluster_settings.get("action.destructive_requires_name")
    if destructive and any(p in ("_all", "*") or "*" in p for p in expression.split(",")):
        raise IllegalArgumentError("Wildcard expressions or all indices are not allowed")
    explicit = [p for p in expression.split(",") if p and "*" not in p and not p.startswith("-") and p != "_all"]
    if not param_bool(request, "ignore_unavailable"):
        for name in explicit:
            if node.indices.find(name) is None:
                if name in node.indices.aliases():
                    raise IllegalArgumentError(
                        f"The provided expression [{name}] matches an alias, specify the corresponding concrete "
                        f"indices instead."
                    )
                raise IndexNotFoundError(name)
    for index in _resolve(request, expression):
        await blocking(node.indices.delete, index)
    return json_response({"acknowledged": True}, request=request)


async def index_exists(request: Request) -> Response:
    try:
        found = _resolve(request, request.path_params["index"], allow_no_indices=False)
    except IndexNotFoundError:
        return Response(b"", status_code=404)
    return Response(b"", status_code=200 if found else 404)


async def get_index(request: Request) -> Response:
    indices = _resolve(request, request.path_params["index"], allow_no_indices=False)
    flat = param_bool(request, "flat_settings")
    body = {
        i.name: {"aliases": i.meta.aliases, "mappings": i.mappings.to_json(), "settings": _settings_of(i, flat)}
        for i in indices
    }
    return json_response(body, request=request)


def _settings_of(index: Index, flat: bool, include_defaults: bool = False) -> dict[str, Any]:
    values = {
        "index.creation_date": index.meta.creation_date,
        "index.uuid": index.meta.uuid,
        "index.version.created": VERSION_CREATED,
        "index.provided_name": index.name,
        **index.meta.settings,
    }
    rendered = {k: as_string(v) for k, v in values.items()}
    return rendered if flat else nest(rendered)


async def get_settings(request: Request) -> Response:
    indices = _resolve(request, request.path_params.get("index"))
    flat = param_bool(request, "flat_settings")
    name_filter = request.path_params.get("name")
    body = {}
    for index in indices:
        settings = _settings_of(index, True)
        if name_filter:
            import fnmatch

            settings = {
                k: v for k, v in settings.items() if any(fnmatch.fnmatchcase(k, p) for p in name_filter.split(","))
            }
        entry: dict[str, Any] = {"settings": settings if flat else nest(settings)}
        if param_bool(request, "include_defaults"):
            defaults = {
                k: as_string(v)
                for k, v in node_of(request).indices.registry.defaults().items()
                if k not in index.meta.settings
            }
            entry["defaults"] = defaults if flat else nest(defaults)
        body[index.name] = entry
    return json_response(body, request=request)


async def put_settings(request: Request) -> Response:
    body = await json_body(request, required=True)
    if not isinstance(body, dict):
        raise ParsingError("request body must be an object")
    if "settings" in body and isinstance(body["settings"], dict) and len(body) == 1:
        body = body["settings"]
    node = node_of(request)
    flat = normalize_index_settings(body)
    if not flat:
        raise ActionRequestValidationError("Validation Failed: 1: no settings to update;")
    indices = _resolve(request, request.path_params.get("index"))
    for name in flat:
        setting = node.indices.registry.find(name)
        if setting is not None and not setting.dynamic:
            names = ", ".join(f"{i.name}/{i.meta.uuid}" for i in indices)
            raise IllegalArgumentError(f"Can't update non dynamic settings [[{name}]] for open indices [[{names}]]")
    parsed = node.indices.registry.validate(flat, updating=True)
    for index in indices:
        await blocking(index.update_settings, parsed)
    return json_response({"acknowledged": True}, request=request)


async def get_mapping(request: Request) -> Response:
    indices = _resolve(request, request.path_params.get("index"))
    return json_response({i.name: {"mappings": i.mappings.to_json()} for i in indices}, request=request)


async def put_mapping(request: Request) -> Response:
    body = await _with_semantic_info(request, await json_body(request, required=True))
    addition = Mappings.parse(body)
    indices = _resolve(request, request.path_params["index"], allow_no_indices=False)
    for index in indices:
        index.mappings.merge(addition)  # check every index before changing any
    for index in indices:
        await blocking(index.put_mapping, addition)
    return json_response({"acknowledged": True}, request=request)


async def get_field_mapping(request: Request) -> Response:
    indices = _resolve(request, request.path_params.get("index"))
    wanted = request.path_params["fields"].split(",")
    body = {}
    for index in indices:
        found = {}
        for pattern in wanted:
            for leaf in index.mappings.fields_matching(pattern):
                found[leaf.path] = {
                    "full_name": leaf.path,
                    "mapping": {leaf.path.rsplit(".", 1)[-1]: dict(leaf.params)},
                }
        body[index.name] = {"mappings": found}
    return json_response(body, request=request)


async def refresh(request: Request) -> Response:
    indices = _resolve(request, request.path_params.get("index"))
    for index in indices:
        await blocking(index.refresh)
    n = len(indices)
    return json_response({"_shards": {"total": n * 2, "successful": n, "failed": 0}}, request=request)


async def flush(request: Request) -> Response:
    indices = _resolve(request, request.path_params.get("index"))
    for index in indices:
        await blocking(index.flush)
    n = len(indices)
    return json_response({"_shards": {"total": n * 2, "successful": n, "failed": 0}}, request=request)


async def open_close(request: Request) -> Response:
    """Every index here stays open: `_open` of an existing index succeeds, `_close` is refused plainly."""
    indices = _resolve(request, request.path_params["index"], allow_no_indices=False)
    if request.url.path.endswith("_close"):
        raise IllegalArgumentError(
            f"closing indices is not supported by mlsearch yet; [{', '.join(i.name for i in indices)}] stays open"
        )
    return json_response({"acknowledged": True, "shards_acknowledged": True}, request=request)


# ---- aliases --------------------------------------------------------------------------------------------


async def update_aliases(request: Request) -> Response:
    body = await json_body(request, required=True)
    if not isinstance(body, dict) or not isinstance(body.get("actions"), list) or not body["actions"]:
        raise ActionRequestValidationError("Validation Failed: 1: At least one action is required;")
    node = node_of(request)
    actions = []
    for item in body["actions"]:
        if not isinstance(item, dict) or len(item) != 1:
            raise ParsingError("[aliases] failed to parse field [actions]")
        verb, spec = next(iter(item.items()))
        if verb not in ("add", "remove", "remove_index"):
            raise ParsingError(f"Unknown action [{verb}]")
        index_names = spec.get("indices") or [spec.get("index")]
        alias_names = spec.get("aliases") or [spec.get("alias")]
        if verb == "remove_index":
            alias_names = [""]
        options = {
            k: v
            for k, v in spec.items()
            if k in ("filter", "routing", "index_routing", "search_routing", "is_write_index", "is_hidden")
        }
        for pattern in index_names:
            if pattern is None:
                raise ActionRequestValidationError("Validation Failed: 1: One of [index] or [indices] is required;")
            for index in node.indices.resolve(pattern, allow_no_indices=False):
                for alias in alias_names:
                    if alias is None:
                        raise ActionRequestValidationError(
                            "Validation Failed: 1: One of [alias] or [aliases] is required;"
                        )
                    actions.append((verb, index.name, alias, options))
    await blocking(node.indices.update_aliases, actions)
    return json_response({"acknowledged": True}, request=request)


async def put_alias(request: Request) -> Response:
    body = await json_body(request) or {}
    node = node_of(request)
    alias = request.path_params["name"]
    actions = [
        ("add", i.name, alias, body) for i in node.indices.resolve(request.path_params["index"], allow_no_indices=False)
    ]
    await blocking(node.indices.update_aliases, actions)
    return json_response({"acknowledged": True}, request=request)


async def delete_alias(request: Request) -> Response:
    node = node_of(request)
    alias = request.path_params["name"]
    actions = [
        ("remove", i.name, alias, {})
        for i in node.indices.resolve(request.path_params["index"], allow_no_indices=False)
    ]
    await blocking(node.indices.update_aliases, actions)
    return json_response({"acknowledged": True}, request=request)


async def get_alias(request: Request) -> Response:
    import fnmatch

    node = node_of(request)
    wanted = request.path_params.get("name")
    indices = _resolve(request, request.path_params.get("index"))
    body = {}
    for index in indices:
        aliases = {
            a: o
            for a, o in index.meta.aliases.items()
            if wanted is None or any(fnmatch.fnmatchcase(a, p) for p in wanted.split(","))
        }
        if wanted is None or aliases:
            body[index.name] = {"aliases": aliases}
    if wanted and not body:
        return json_response({"error": f"alias [{wanted}] missing", "status": 404}, 404, request=request)
    del node
    return json_response(body, request=request)


def routes() -> list[Route]:
    return [
        Route("/_mapping", get_mapping, methods=["GET"]),
        Route("/_mappings", get_mapping, methods=["GET"]),
        Route("/_settings", get_settings, methods=["GET"]),
        Route("/_settings", put_settings, methods=["PUT"]),
        Route("/_refresh", refresh, methods=["GET", "POST"]),
        Route("/_flush", flush, methods=["GET", "POST"]),
        Route("/_aliases", update_aliases, methods=["POST"]),
        Route("/_alias", get_alias, methods=["GET"]),
        Route("/_alias/{name}", get_alias, methods=["GET"]),
        Route("/_aliases", get_alias, methods=["GET"]),
        Route("/{index}", create_index, methods=["PUT"]),
        Route("/{index}", delete_index, methods=["DELETE"]),
        Route("/{index}", index_exists, methods=["HEAD"]),
        Route("/{index}", get_index, methods=["GET"]),
        Route("/{index}/_mapping", get_mapping, methods=["GET"]),
        Route("/{index}/_mappings", get_mapping, methods=["GET"]),
        Route("/{index}/_mapping", put_mapping, methods=["PUT", "POST"]),
        Route("/{index}/_mappings", put_mapping, methods=["PUT", "POST"]),
        Route("/{index}/_mapping/field/{fields}", get_field_mapping, methods=["GET"]),
        Route("/_mapping/field/{fields}", get_field_mapping, methods=["GET"]),
        Route("/{index}/_settings", get_settings, methods=["GET"]),
        Route("/{index}/_settings/{name}", get_settings, methods=["GET"]),
        Route("/{index}/_settings", put_settings, methods=["PUT"]),
        Route("/{index}/_refresh", refresh, methods=["GET", "POST"]),
        Route("/{index}/_flush", flush, methods=["GET", "POST"]),
        Route("/{index}/_open", open_close, methods=["POST"]),
        Route("/{index}/_close", open_close, methods=["POST"]),
        Route("/{index}/_alias", get_alias, methods=["GET"]),
        Route("/{index}/_alias/{name}", get_alias, methods=["GET"]),
        Route("/{index}/_alias/{name}", put_alias, methods=["PUT", "POST"]),
        Route("/{index}/_aliases/{name}", put_alias, methods=["PUT", "POST"]),
        Route("/{index}/_alias/{name}", delete_alias, methods=["DELETE"]),
        Route("/{index}/_aliases", get_alias, methods=["GET"]),
    ]
