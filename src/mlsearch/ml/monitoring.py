"""The profile (`_plugins/_ml/profile`) and stats (`_plugins/_ml/stats`) answers, built from the service's state."""

from __future__ import annotations

import resource
from typing import Any

from mlsearch.ml.service import MLService
from mlsearch.ml.system_indices import CONFIG_INDEX, MODEL_INDEX, TASK_INDEX

_CLUSTER_STATS = (
    "ml_model_index_status",
    "ml_connector_index_status",
    "ml_config_index_status",
    "ml_task_index_status",
    "ml_controller_index_status",
    "ml_model_count",
    "ml_connector_count",
)
_NODE_STATS = (
    "ml_executing_task_count",
    "ml_request_count",
    "ml_failure_count",
    "ml_deployed_model_count",
    "ml_jvm_heap_usage",
    "ml_circuit_breaker_trigger_count",
)


def profile(
    service: MLService,
    *,
    models: bool,
    tasks: bool,
    model_ids: list[str] | None,
    task_ids: list[str] | None,
    view: str = "node",
) -> dict[str, Any]:
    """Deployed models (with predict latencies) and running tasks of this node, filtered by ids."""
    node_part: dict[str, Any] = {}
    if models:
        found = _models(service, model_ids)
        if found:
            node_part["models"] = found
    if tasks:
        running = service.tasks.running()
        found_tasks = {i: t for i, t in running.items() if not task_ids or i in task_ids}
        if found_tasks:
            node_part["tasks"] = found_tasks
    if not node_part:
        return {}
    if view == "model":
        return _model_view(service.node_id, node_part)
    return {"nodes": {service.node_id: node_part}}


def _models(service: MLService, model_ids: list[str] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for model_id in service.registry.deployed_ids():
        if model_ids and model_id not in model_ids:
            continue
        predictor = service.registry.predictor(model_id)
        if predictor is None:
            continue
        doc = service.registry.find(model_id) or {}
        entry: dict[str, Any] = {
            "model_state": doc.get("model_state", "DEPLOYED"),
            "predictor": f"{type(predictor).__module__}.{type(predictor).__qualname__}@{id(predictor):x}",
            "target_worker_nodes": [service.node_id],
            "worker_nodes": [service.node_id],
        }
        latencies = service.stats.latency_summary(model_id)
        if latencies is not None:
            entry["model_inference_stats"] = latencies
            entry["predict_request_stats"] = latencies
        entry["memory_size_estimation_cpu"] = int(doc.get("model_content_size_in_bytes", 0))
        entry["memory_size_estimation_gpu"] = 0
        out[model_id] = entry
    return out


def _model_view(node_id: str, node_part: dict[str, Any]) -> dict[str, Any]:
    models: dict[str, Any] = {}
    for model_id, entry in node_part.get("models", {}).items():
        models[model_id] = {
            "target_worker_nodes": entry["target_worker_nodes"],
            "worker_nodes": entry["worker_nodes"],
            "nodes": {node_id: entry},
        }
    for task_id, task in node_part.get("tasks", {}).items():
        model_id = task.get("model_id")
        if model_id is None:
            continue
        target = models.setdefault(model_id, {"target_worker_nodes": [], "worker_nodes": [], "nodes": {}})
        target.setdefault("tasks", {})[task_id] = task
    return {"models": models} if models else {}


def stats(service: MLService, *, stat_names: list[str] | None, node_ids: list[str] | None) -> dict[str, Any]:
    """Cluster-level stats, then this node's (when `node_ids` names it or is absent)."""
    wanted = set(stat_names or [])
    cluster = {
        "ml_model_index_status": _status(service, MODEL_INDEX),
        "ml_connector_index_status": _status(service, ".plugins-ml-connector"),
        "ml_config_index_status": _status(service, CONFIG_INDEX),
        "ml_task_index_status": _status(service, TASK_INDEX),
        "ml_controller_index_status": _status(service, ".plugins-ml-controller"),
        "ml_model_count": len(service.registry.all_models()) if service.records.exists(MODEL_INDEX) else 0,
        "ml_connector_count": service.records.count(".plugins-ml-connector")
        if service.records.exists(".plugins-ml-connector")
        else 0,
    }
    out: dict[str, Any] = {k: v for k, v in cluster.items() if not wanted or k in wanted}
    if node_ids and service.node_id not in node_ids and "_local" not in node_ids and "_all" not in node_ids:
        out["nodes"] = {}
        return out
    node = {
        "ml_executing_task_count": service.tasks.executing_count() + service.stats.executing_count,
        "ml_request_count": service.stats.request_count,
        "ml_failure_count": service.stats.failure_count,
        "ml_deployed_model_count": len(service.registry.deployed_ids()),
        "ml_jvm_heap_usage": _memory_percent(),
        "ml_circuit_breaker_trigger_count": 0,
    }
    node = {k: v for k, v in node.items() if not wanted or k in wanted}
    if not wanted or not (wanted & set(_CLUSTER_STATS + _NODE_STATS)):
        node["algorithms"] = service.stats.algorithms()
        node["models"] = service.stats.models()
    out["nodes"] = {service.node_id: node}
    return out


def _status(service: MLService, name: str) -> str:
    return "green" if service.records.exists(name) else "non-existent"


def _memory_percent() -> int:
    """This process's peak resident memory as a percentage of the machine's (the JVM heap's stand-in)."""
    try:
        import os

        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        return int(100 * peak / total) if total else 0
    except (ValueError, OSError):
        return 0
