"""Node settings: a frozen dataclass built from CLI flags > MLSEARCH_* environment > defaults."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 9200
    data_dir: Path = field(default_factory=lambda: Path("data"))
    node_name: str = "mlsearch-node"
    cluster_name: str = "mlsearch"
    log_level: str = "info"
    # http.max_content_length in OpenSearch: 100mb by default.
    max_content_length: int = 100 * 1024 * 1024
    # How often the refresher looks for indices whose refresh_interval has elapsed.
    refresh_tick_seconds: float = 0.1
    # "module:callable" overrides for the ML model runtimes (format -> Runtime) and the pretrained catalog; empty
    # means the built-in ones. An extension point (an external inference server) and how tests plug in fakes.
    ml_runtime: str = ""
    ml_catalog: str = ""
    # Worker threads for ML tasks (register, deploy): plugins.ml_commons.max_ml_task_per_node's stand-in.
    ml_task_workers: int = 4
    # Where pretrained model zips are cached (downloads, and local models converted once): MLSEARCH_CACHE_DIR, else
    # `<data_dir>/cache` when empty. Shared between nodes and test runs so a conversion is paid for once.
    cache_dir: str = ""
    # Where OpenSearch publishes its pretrained model zips; a mirror (or a local HTTP server in tests) can stand in.
    ml_artifact_base_url: str = "https://artifacts.opensearch.org/models/ml-models"
    # Dynamic batching of concurrent predict calls to one deployed model: texts per batch and the longest wait.
    ml_batch_size: int = 32
    ml_batch_wait_ms: float = 1.0
    # Engine for ONNX models: auto (OpenVINO in bf16 when installed and the CPU has native bf16, else onnxruntime),
    # onnxruntime or openvino.
    ml_onnx_backend: str = "auto"
    # Base64 of the 32-byte AES key that encrypts connector credentials (MLSEARCH_MASTER_KEY); empty: a key file
    # created in the data directory (0600) on first use.
    master_key: str = field(default="", repr=False)

    def resolved_cache_dir(self) -> Path:
        return Path(self.cache_dir) if self.cache_dir else self.data_dir / "cache"

    @classmethod
    def load(cls, overrides: Mapping[str, object] | None = None, env: Mapping[str, str] | None = None) -> Settings:
        """Defaults, then MLSEARCH_<FIELD> environment variables, then explicit overrides (CLI)."""
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = env.get(f"MLSEARCH_{f.name.upper()}")
            if raw is not None:
                values[f.name] = raw
        values.update({k: v for k, v in (overrides or {}).items() if v is not None})
        return replace(cls(), **{k: _coerce(cls, k, v) for k, v in values.items()})


def _coerce(cls: type[Settings], name: str, value: object) -> object:
    default = getattr(cls(), name)
    if isinstance(default, Path):
        return Path(str(value))
    if isinstance(default, bool):
        return str(value).lower() in ("1", "true", "yes")
    if isinstance(default, int):
        return int(str(value))
    if isinstance(default, float):
        return float(str(value))
    return str(value)
