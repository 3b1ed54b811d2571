"""Cluster-level routes: `/`, `_cluster/health`, `_cluster/settings`, `_cat/*`, `_nodes`."""

from __future__ import annotations

import os
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mlsearch import API_LEVEL, __version__
from mlsearch.api._request import json_body, param_bool
from mlsearch.api.render import cat_response, json_response
from mlsearch.api.routes._common import blocking, dir_size, node_of
from mlsearch.api.routes.cat import plugin_infos
from mlsearch.cluster_settings import echo
from mlsearch.errors import ActionRequestValidationError, IllegalArgumentError, ParsingError

# The Lucene version OpenSearch 3.1 ships; some clients print it.
LUCENE_VERSION = "10.2.1"


async def root(request: Request) -> Response:
    node = node_of(request)
    body = {
        "name": node.settings.node_name,
        "cluster_name": node.settings.cluster_name,
        "cluster_uuid": node.cluster_uuid(),
        "version": {
            "distribution": "mlsearch",
            "number": API_LEVEL,
            "mlsearch_version": __version__,
            "build_type": "pip",
            "build_hash": "unknown",
            "build_date": "2026-11-28T00:00:00Z",
            "build_snapshot": False,
            "lucene_version": LUCENE_VERSION,
            "minimum_wire_compatibility_version": "2.19.0",
            "minimum_index_compatibility_version": "2.0.0",
        },
        "tagline": "The OpenSearch Project: https://opensearch.org/",
    }
    return json_response(body, request=request)


async def health(request: Request) -> Response:
    node = node_of(request)
    expression = request.path_params.get("index")
    indices = node.indices.resolve(expression) if expression else node.indices.all()
    status = _status(indices)
    count = len(indices)
    body: dict[str, Any] = {
        "cluster_name": node.settings.cluster_name,
        "status": status,
        "timed_out": False,
        "number_of_nodes": 1,
        "number_of_data_nodes": 1,
        "discovered_master": True,
        "discovered_cluster_manager": True,
        "active_primary_shards": count,
        "active_shards": count,
        "relocating_shards": 0,
        "initializing_shards": 0,
        "unassigned_shards": sum(int(i.setting("index.number_of_replicas", 1)) for i in indices),
        "delayed_unassigned_shards": 0,
        "number_of_pending_tasks": 0,
        "number_of_in_flight_fetch": 0,
        "task_max_waiting_in_queue_millis": 0,
        "active_shards_percent_as_number": 100.0
        if not indices
        else round(100.0 * count / (count + sum(int(i.setting("index.number_of_replicas", 1)) for i in indices)), 1),
    }
    if request.query_params.get("level") == "indices":
        body["indices"] = {i.name: _index_health(i) for i in indices}
    return json_response(body, request=request)


def _index_health(index: Any) -> dict[str, Any]:
    replicas = int(index.setting("index.number_of_replicas", 1))
    return {
        "status": "yellow" if replicas else "green",
        "number_of_shards": 1,
        "number_of_replicas": replicas,
        "active_primary_shards": 1,
        "active_shards": 1,
        "relocating_shards": 0,
        "initializing_shards": 0,
        "unassigned_shards": replicas,
    }


def _status(indices: list[Any]) -> str:
    # One node holds every primary; replicas asked for cannot be allocated, as on a one-node OpenSearch.
    return "yellow" if any(int(i.setting("index.number_of_replicas", 1)) > 0 for i in indices) else "green"


async def get_cluster_settings(request: Request) -> Response:
    node = node_of(request)
    body = node.cluster_settings.render(
        include_defaults=param_bool(request, "include_defaults"), flat=param_bool(request, "flat_settings")
    )
    return json_response(body, request=request)


async def put_cluster_settings(request: Request) -> Response:
    node = node_of(request)
    body = await json_body(request)
    if not body or not isinstance(body, dict) or not ({"persistent", "transient"} & set(body)):
        raise ActionRequestValidationError("Validation Failed: 1: no settings to update;")
    for key in body:
        if key not in ("persistent", "transient"):
            raise ParsingError(f"request body contains unknown key [{key}]")
    persistent, transient = body.get("persistent") or {}, body.get("transient") or {}
    if not isinstance(persistent, dict) or not isinstance(transient, dict):
        raise IllegalArgumentError("settings must be objects")
    applied_p, applied_t = node.cluster_settings.update(persistent, transient)
    await blocking(node.save_cluster_settings)
    flat = param_bool(request, "flat_settings")
    from mlsearch.engine.settings import as_string

    render = (lambda p: {k: as_string(v) for k, v in p.items() if v is not None}) if flat else echo
    return json_response(
        {"acknowledged": True, "persistent": render(applied_p), "transient": render(applied_t)}, request=request
    )


_CAT_INDICES = [
    "health",
    "status",
    "index",
    "uuid",
    "pri",
    "rep",
    "docs.count",
    "docs.deleted",
    "store.size",
    "pri.store.size",
]


async def cat_indices(request: Request) -> Response:
    node = node_of(request)
    expression = request.path_params.get("index")
    indices = node.indices.resolve(expression, include_hidden=bool(expression)) if expression else node.indices.all()
    rows = []
    for index in indices:
        size = dir_size(index.path)
        replicas = int(index.setting("index.number_of_replicas", 1))
        rows.append(
            {
                "health": "yellow" if replicas else "green",
                "status": index.meta.state,
                "index": index.name,
                "uuid": index.meta.uuid,
                "pri": 1,
                "rep": replicas,
                "docs.count": index.count(),
                "docs.deleted": 0,
                "store.size": _human(size),
                "pri.store.size": _human(size),
            }
        )
    return cat_response(request, _CAT_INDICES, rows)


_CAT_HEALTH = [
    "epoch",
    "timestamp",
    "cluster",
    "status",
    "node.total",
    "node.data",
    "discovered_cluster_manager",
    "shards",
    "pri",
    "relo",
    "init",
    "unassign",
    "pending_tasks",
    "max_task_wait_time",
    "active_shards_percent",
]


async def cat_health(request: Request) -> Response:
    node = node_of(request)
    indices = node.indices.all()
    now = time.time()
    row = {
        "epoch": int(now),
        "timestamp": time.strftime("%H:%M:%S", time.gmtime(now)),
        "cluster": node.settings.cluster_name,
        "status": _status(indices),
        "node.total": 1,
        "node.data": 1,
        "discovered_cluster_manager": "true",
        "shards": len(indices),
        "pri": len(indices),
        "relo": 0,
        "init": 0,
        "unassign": sum(int(i.setting("index.number_of_replicas", 1)) for i in indices),
        "pending_tasks": 0,
        "max_task_wait_time": "-",
        "active_shards_percent": "100.0%",
    }
    return cat_response(request, _CAT_HEALTH, [row])


async def nodes(request: Request) -> Response:
    node = node_of(request)
    info = {
        "name": node.settings.node_name,
        "transport_address": f"{node.settings.host}:9300",
        "host": node.settings.host,
        "ip": node.settings.host,
        "version": API_LEVEL,
        "build_type": "pip",
        "build_hash": "unknown",
        "roles": ["cluster_manager", "data", "ingest", "ml", "remote_cluster_client"],
        "attributes": {},
        "http": {
            "bound_address": [f"{node.settings.host}:{node.settings.port}"],
            "publish_address": f"{node.settings.host}:{node.settings.port}",
            "max_content_length_in_bytes": node.settings.max_content_length,
        },
        "os": {"available_processors": os.cpu_count() or 1},
        "plugins": plugin_infos(),
        "modules": [],
    }
    return json_response(
        {
            "_nodes": {"total": 1, "successful": 1, "failed": 0},
            "cluster_name": node.settings.cluster_name,
            "nodes": {node.node_id: info},
        },
        request=request,
    )


async def nodes_stats(request: Request) -> Response:
    node = node_of(request)
    indices = node.indices.all()
    docs = sum(i.count() for i in indices)
    size = sum(dir_size(i.path) for i in indices)
    stats = {
        "timestamp": int(time.time() * 1000),
        "name": node.settings.node_name,
        "transport_address": f"{node.settings.host}:9300",
        "host": node.settings.host,
        "ip": node.settings.host,
        "roles": ["cluster_manager", "data", "ingest", "ml", "remote_cluster_client"],
        "indices": {"docs": {"count": docs, "deleted": 0}, "store": {"size_in_bytes": size}},
        "process": {"timestamp": int(time.time() * 1000), "open_file_descriptors": _open_fds()},
        "jvm": {"uptime_in_millis": int((time.time() - node.started_at) * 1000)},
    }
    return json_response(
        {
            "_nodes": {"total": 1, "successful": 1, "failed": 0},
            "cluster_name": node.settings.cluster_name,
            "nodes": {node.node_id: stats},
        },
        request=request,
    )


def _open_fds() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return -1


def _human(size: int) -> str:
    for unit in ("b", "kb", "mb", "gb"):
        if size < 1024 or unit == "gb":
            return f"{size}{unit}" if unit == "b" else f"{size:.1f}{unit}"
        size /= 1024  # type: ignore[assignment]
    return f"{size}b"


def routes() -> list[Route]:
    return [
        Route("/", root, methods=["GET", "HEAD"]),
        Route("/_cluster/health", health, methods=["GET"]),
        Route("/_cluster/health/{index}", health, methods=["GET"]),
        Route("/_cluster/settings", get_cluster_settings, methods=["GET"]),
        Route("/_cluster/settings", put_cluster_settings, methods=["PUT"]),
        Route("/_cat/indices", cat_indices, methods=["GET"]),
        Route("/_cat/indices/{index}", cat_indices, methods=["GET"]),
        Route("/_cat/health", cat_health, methods=["GET"]),
        Route("/_nodes", nodes, methods=["GET"]),
        Route("/_nodes/stats", nodes_stats, methods=["GET"]),
        Route("/_nodes/{node_id}/stats", nodes_stats, methods=["GET"]),
    ]
