"""The k-NN plugin's REST APIs (`/_plugins/_knn`): stats, warmup, clear_cache and trained models (spec §5.6)."""

from __future__ import annotations

import fnmatch
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mlsearch.api._request import json_body
from mlsearch.api.render import json_response
from mlsearch.api.routes._common import blocking, node_of
from mlsearch.engine.index import Index
from mlsearch.engine.vectors.models import MODEL_INDEX, KnnModels
from mlsearch.engine.vectors.stats import COUNTERS
from mlsearch.errors import IllegalArgumentError

_PREFIX = "/_plugins/_knn"
_CLUSTER_STATS = ("circuit_breaker_triggered", "model_index_status")
_NODE_STATS = (
    *COUNTERS,
    "graph_memory_usage",
    "graph_memory_usage_percentage",
    "cache_capacity_reached",
    "indices_in_cache",
    "nmslib_initialized",
    "faiss_initialized",
    "lucene_initialized",
    "indexing_from_model_degraded",
    "training_memory_usage",
    "training_memory_usage_percentage",
)
# The plugin's default native memory limit is a share of the JVM heap; here, a fixed 50% of 4 GiB.
_CACHE_LIMIT_KB = 2 * 1024 * 1024


def _models(request: Request) -> KnnModels:
    """Built on first use and kept on the app; it also becomes the node's model lookup for knn_vector fields."""
    state = request.app.state
    if not hasattr(state, "knn_models"):
        node = node_of(request)
        knn = node.indices.knn
        state.knn_models = KnnModels(node.indices, knn.stats, node.node_id)
        knn.models = state.knn_models.resolve
    return state.knn_models


# ---- stats -------------------------------------------------------------------------------------------------


async def stats(request: Request) -> Response:
    node = node_of(request)
    wanted = _wanted(request.path_params.get("stats"))
    node_ids = request.path_params.get("node_ids")
    node_stats = await blocking(_node_stats, node)
    body: dict[str, Any] = {
        "_nodes": {"total": 1, "successful": 1, "failed": 0},
        "cluster_name": node.settings.cluster_name,
    }
    cluster = {"circuit_breaker_triggered": False, "model_index_status": _model_index_status(node)}
    body.update({k: v for k, v in cluster.items() if wanted is None or k in wanted})
    nodes: dict[str, Any] = {}
    if node_ids is None or node_ids in ("_all", "_local") or node.node_id in node_ids.split(","):
        nodes[node.node_id] = {k: v for k, v in node_stats.items() if wanted is None or k in wanted}
    body["_nodes"]["total"] = body["_nodes"]["successful"] = len(nodes)
    body["nodes"] = nodes
    return json_response(body, request=request)


def _wanted(spec: str | None) -> set[str] | None:
    if not spec:
        return None
    names = {s.strip() for s in spec.split(",") if s.strip()}
    unknown = sorted(names - set(_NODE_STATS) - set(_CLUSTER_STATS))
    if unknown:
        raise IllegalArgumentError(f"request [/_plugins/_knn/stats] contains unrecognized stats: {unknown}")
    return names


def _node_stats(node: Any) -> dict[str, Any]:
    knn = node.indices.knn
    counts = knn.stats.snapshot()
    in_cache: dict[str, Any] = {}
    total_bytes = 0
    for index in node.indices.all():
        used, graphs = index.vectors.cache_usage()
        if graphs:
            kb = used // 1024
            in_cache[index.name] = {
                "graph_memory_usage": kb,
                "graph_memory_usage_percentage": round(100.0 * kb / _CACHE_LIMIT_KB, 2),
                "graph_count": graphs,
            }
            total_bytes += used
    total_kb = total_bytes // 1024
    training_kb = knn.stats.training_memory_bytes // 1024
    return {
        **counts,
        "graph_memory_usage": total_kb,
        "graph_memory_usage_percentage": round(100.0 * total_kb / _CACHE_LIMIT_KB, 2),
        "cache_capacity_reached": total_kb >= _CACHE_LIMIT_KB,
        "indices_in_cache": in_cache,
        "nmslib_initialized": False,
        "faiss_initialized": True,
        "lucene_initialized": False,
        "indexing_from_model_degraded": False,
        "training_memory_usage": training_kb,
        "training_memory_usage_percentage": round(100.0 * training_kb / _CACHE_LIMIT_KB, 2),
    }


def _model_index_status(node: Any) -> str | None:
    index = node.indices.find(MODEL_INDEX)
    if index is None:
        return None
    return "green" if int(index.setting("index.number_of_replicas", 0)) == 0 else "yellow"


# ---- warmup / clear cache ----------------------------------------------------------------------------------


def _knn_indices(request: Request) -> list[Index]:
    expression = request.path_params["index"]
    indices = node_of(request).indices
    out: list[Index] = []
    for part in expression.split(","):
        if any(c in part for c in "*?"):
            out.extend(i for i in indices.all() if fnmatch.fnmatchcase(i.name, part) and not i.name.startswith("."))
        else:
            out.extend(indices.resolve(part))
    return list({i.name: i for i in out}.values())


def _shards(indices: list[Index]) -> dict[str, Any]:
    total = sum(int(i.setting("index.number_of_shards", 1)) for i in indices)
    return {"_shards": {"total": total, "successful": total, "failed": 0}}


async def warmup(request: Request) -> Response:
    indices = _knn_indices(request)
    for index in indices:
        await blocking(index.vectors.warmup)
    return json_response(_shards(indices), request=request)


async def clear_cache(request: Request) -> Response:
    indices = _knn_indices(request)
    for index in indices:
        index.vectors.clear_cache()
    return json_response(_shards(indices), request=request)


# ---- models ------------------------------------------------------------------------------------------------


async def train(request: Request) -> Response:
    body = await json_body(request, required=True)
    model_id = await blocking(_models(request).train, request.path_params.get("model_id"), body)
    return json_response({"model_id": model_id}, request=request)


async def get_model(request: Request) -> Response:
    return json_response(await blocking(_models(request).get, request.path_params["model_id"]), request=request)


async def delete_model(request: Request) -> Response:
    return json_response(await blocking(_models(request).delete, request.path_params["model_id"]), request=request)


async def search_models(request: Request) -> Response:
    body = await json_body(request)
    params = {
        k: v
        for k, v in request.query_params.items()
        if k in ("size", "from", "_source", "_source_excludes", "_source_includes", "q", "sort")
    }
    return json_response(await blocking(_models(request).search, body, params), request=request)


def routes() -> list[Route]:
    models = f"{_PREFIX}/models"
    return [
        Route(f"{_PREFIX}/stats", stats, methods=["GET"]),
        Route(f"{_PREFIX}/stats/{{stats}}", stats, methods=["GET"]),
        Route(f"{_PREFIX}/warmup/{{index}}", warmup, methods=["GET"]),
        Route(f"{_PREFIX}/clear_cache/{{index}}", clear_cache, methods=["POST"]),
        Route(f"{models}/_train", train, methods=["POST"]),
        Route(f"{models}/_search", search_models, methods=["GET", "POST"]),
        Route(f"{models}/{{model_id}}/_train", train, methods=["POST"]),
        Route(f"{models}/{{model_id}}", get_model, methods=["GET"]),
        Route(f"{models}/{{model_id}}", delete_model, methods=["DELETE"]),
        Route(f"{_PREFIX}/{{node_ids}}/stats", stats, methods=["GET"]),
        Route(f"{_PREFIX}/{{node_ids}}/stats/{{stats}}", stats, methods=["GET"]),
    ]
