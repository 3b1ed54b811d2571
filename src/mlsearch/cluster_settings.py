"""Cluster settings (`_cluster/settings`): a typed registry of known settings, persistent and transient values.

The ML Commons and k-NN settings are registered here too, so that clients can set them before those features
read them."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any

from mlsearch.engine.settings import (
    Setting,
    SettingsRegistry,
    as_string,
    boolean,
    byte_size,
    flatten,
    integer,
    nest,
    number,
    one_of,
    string_list,
    text,
    time_value,
)

_TRUSTED_ENDPOINTS = [
    r"^https://runtime\.sagemaker\..*[a-z0-9-]\.amazonaws\.com/.*$",
    r"^https://api\.sagemaker\..*[a-z0-9-]\.amazonaws\.com/.*$",
    r"^https://api\.openai\.com/.*$",
    r"^https://api\.cohere\.ai/.*$",
    r"^https://api\.deepseek\.com/.*$",
    r"^https://generativelanguage\.googleapis\.com/.*$",
    r"^https://bedrock-runtime\..*[a-z0-9-]\.amazonaws\.com/.*$",
    r"^https://bedrock-agent-runtime\..*[a-z0-9-]\.amazonaws\.com/.*$",
    r"^https://bedrock\..*[a-z0-9-]\.amazonaws\.com/.*$",
    r"^https://textract\..*[a-z0-9-]\.amazonaws\.com$",
    r"^https://comprehend\..*[a-z0-9-]\.amazonaws\.com$",
    r"^https://rekognition(-fips)?\..*[a-z0-9-]\.amazonaws\.com$",
]


def _core() -> list[Setting]:
    return [
        Setting("action.auto_create_index", "true", text),
        Setting("action.destructive_requires_name", False, boolean),
        Setting("search.max_buckets", 65535, integer(0)),
        Setting("search.default_search_timeout", "-1", time_value),
        Setting("search.allow_expensive_queries", True, boolean),
        Setting("search.max_open_scroll_context", 500, integer(0)),
        Setting("search.max_keep_alive", "24h", time_value),
        Setting("search.default_keep_alive", "5m", time_value),
        Setting("indices.query.bool.max_clause_count", 1024, integer(1)),
        Setting("cluster.max_shards_per_node", 1000, integer(1)),
        Setting("cluster.routing.allocation.enable", "all", one_of("all", "primaries", "new_primaries", "none")),
        Setting("cluster.routing.allocation.disk.threshold_enabled", True, boolean),
        Setting("cluster.routing.allocation.disk.watermark.low", "85%", byte_size),
        Setting("cluster.routing.allocation.disk.watermark.high", "90%", byte_size),
        Setting("cluster.routing.allocation.disk.watermark.flood_stage", "95%", byte_size),
        Setting("cluster.blocks.read_only", False, boolean),
        Setting("logger.org.opensearch", "info", text),
    ]


def _ml_commons() -> list[Setting]:
    p = "plugins.ml_commons."
    booleans = {
        "only_run_on_ml_node": True,
        "enable_inhouse_python_model": False,
        "allow_custom_deployment_plan": False,
        "model_auto_redeploy.enable": True,
        "allow_registering_model_via_url": False,
        "allow_registering_model_via_local_file": False,
        "local_model.enabled": True,
        "model_access_control_enabled": False,
        "memory_feature_enabled": True,
        "rag_pipeline_feature_enabled": True,
        "agent_framework_enabled": True,
        "unified_agent_api_enabled": False,
        "agentic_memory_enabled": True,
        "mcp_connector_enabled": False,
        "mcp_server_enabled": False,
        "execute_tools_enabled": True,
        "controller_enabled": True,
        "safe_delete_model": False,
        "stream_enabled": False,
        "index_insight_feature_enabled": False,
        "agentic_search_template_enabled": False,
        "ag_ui_enabled": False,
        "connector.private_ip_enabled": False,
        "connector_access_control_enabled": False,
        "remote_inference.enabled": True,
        "model_auto_deploy.enable": True,
        "offline_batch_inference_enabled": True,
        "offline_batch_ingestion_enabled": True,
    }
    integers = {
        "max_model_on_node": 10,
        "max_register_model_tasks_per_node": 10,
        "max_deploy_model_tasks_per_node": 10,
        "max_ml_task_per_node": 10,
        "sync_up_job_interval_in_seconds": 10,
        "ml_task_timeout_in_seconds": 600,
        "monitoring_request_count": 100,
        "model_auto_redeploy.lifetime_retry_times": 3,
        "max_json_size": 100_000_000,
        "max_batch_inference_tasks": 100,
        "max_batch_ingestion_tasks": 100,
        "batch_ingestion_bulk_size": 500,
    }
    lists = {
        "trusted_connector_endpoints_regex": _TRUSTED_ENDPOINTS,
        "trusted_connector_private_endpoints_regex": [],
        "connector.restricted_ip_patterns": [],
        "remote_job.status_field": ["status", "Status", "TransformJobStatus"],
        "task_dispatcher.eligible_node_role.remote_model": ["data", "ml"],
        "task_dispatcher.eligible_node_role.local_model": ["data", "ml"],
    }
    texts = {
        "task_dispatch_policy": "round_robin",
        "trusted_url_regex": r"^(https?|ftp|file)://[-a-zA-Z0-9+&@#/%?=~_|!:,.;]*[-a-zA-Z0-9+&@#/%=~_|]",
        "exclude_nodes._name": "",
        "disk_free_space_threshold": "5GB",
        "remote_job.status_regex.completed": "(complete|completed|partiallyCompleted)",
        "remote_job.status_regex.cancelled": "(stopped|cancelled)",
        "remote_job.status_regex.cancelling": "(stopping|cancelling)",
        "remote_job.status_regex.expired": "(expired|timeout)",
        "remote_job.status_regex.failed": "(failed)",
    }
    settings = [Setting(p + k, v, boolean) for k, v in booleans.items()]
    settings += [Setting(p + k, v, integer(0)) for k, v in integers.items()]
    settings += [Setting(p + k, v, string_list) for k, v in lists.items()]
    settings += [Setting(p + k, v, text) for k, v in texts.items()]
    settings += [
        Setting(p + "native_memory_threshold", 90, integer(0, 100)),
        Setting(p + "jvm_heap_memory_threshold", 85, integer(0, 100)),
        Setting(p + "model_auto_redeploy_success_ratio", 0.8, number(0, 1)),
        Setting(p + "multi_tenancy_enabled", False, boolean, dynamic=False),
        Setting(p + "metrics_collection_enabled", False, boolean, dynamic=False),
    ]
    return settings


def _knn() -> list[Setting]:
    p = "knn."
    return [
        Setting("plugins.knn.memory.circuit_breaker.enabled", True, boolean),
        Setting("plugins.knn.memory.circuit_breaker.limit", "50%", byte_size),
        Setting("plugins.knn.circuit_breaker.unset.percentage", 75.0, number(0, 100)),
        Setting("plugins.knn.cache.item.expiry.enabled", False, boolean),
        Setting("plugins.knn.cache.item.expiry.minutes", "3h", time_value),
        Setting("plugins.knn.algo_param.index_thread_qty", 1, integer(1, 32)),
        Setting("plugins.knn.model.index.number_of_shards", 1, integer(1)),
        Setting("plugins.knn.model.index.number_of_replicas", 1, integer(0)),
        Setting("plugins.knn.model.cache.size.limit", "10%", byte_size),
        Setting("plugins.knn.faiss.avx2.disabled", False, boolean, dynamic=False),
        Setting("plugins.knn.faiss.avx512.disabled", False, boolean, dynamic=False),
        Setting(f"plugins.{p}remote_index_build.enabled", False, boolean),
    ]


def cluster_settings_registry(extra: Iterable[Setting] = ()) -> SettingsRegistry:
    return SettingsRegistry([*_core(), *_ml_commons(), *_knn(), *extra], prefixes=("logger.",))


class ClusterSettings:
    """Persistent and transient values over the registry's defaults; persistent ones survive restarts."""

    def __init__(self, registry: SettingsRegistry, persistent: Mapping[str, Any] | None = None) -> None:
        self.registry = registry
        self._persistent: dict[str, Any] = dict(persistent or {})
        self._transient: dict[str, Any] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> Any:
        """The value in force: transient, then persistent, then the default."""
        with self._lock:
            if name in self._transient:
                return self._transient[name]
            if name in self._persistent:
                return self._persistent[name]
        setting = self.registry.find(name)
        return None if setting is None else setting.default

    @property
    def persistent(self) -> dict[str, Any]:
        return dict(self._persistent)

    def update(self, persistent: Mapping[str, Any], transient: Mapping[str, Any]) -> tuple[dict, dict]:
        """Validate both groups first, then apply: None resets a setting (wildcards `x.*` reset groups)."""
        flat_p, flat_t = flatten(persistent), flatten(transient)
        parsed_p = self._validate(flat_p)
        parsed_t = self._validate(flat_t)
        with self._lock:
            _apply(self._persistent, parsed_p)
            _apply(self._transient, parsed_t)
        return parsed_p, parsed_t

    def _validate(self, flat: dict[str, Any]) -> dict[str, Any]:
        plain = {k: v for k, v in flat.items() if not (k.endswith("*") and v is None)}
        parsed = self.registry.validate(plain, updating=True)
        parsed.update({k: None for k in flat if k.endswith("*") and flat[k] is None})
        return parsed

    def render(self, *, include_defaults: bool = False, flat: bool = False) -> dict[str, Any]:
        with self._lock:
            groups = {"persistent": dict(self._persistent), "transient": dict(self._transient)}
        if include_defaults:
            groups["defaults"] = self.registry.defaults()
        return {
            key: (
                {k: as_string(v) for k, v in values.items()}
                if flat
                else nest({k: as_string(v) for k, v in values.items()})
            )
            for key, values in groups.items()
        }


def _apply(target: dict[str, Any], parsed: Mapping[str, Any]) -> None:
    for name, value in parsed.items():
        if value is None:
            if name.endswith("*"):
                prefix = name[:-1]
                for key in [k for k in target if k.startswith(prefix)]:
                    del target[key]
            else:
                target.pop(name, None)
        else:
            target[name] = value


def echo(parsed: Mapping[str, Any]) -> dict[str, Any]:
    """What PUT _cluster/settings answers with: the settings it applied, nested, as strings."""
    return nest({k: as_string(v) for k, v in parsed.items() if v is not None})
