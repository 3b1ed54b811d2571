"""The node: the long-lived services of one process (indices, cluster settings), started and stopped together."""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from mlsearch.cluster_settings import ClusterSettings, cluster_settings_registry
from mlsearch.config import Settings
from mlsearch.engine.bert_analyzer import configure as configure_dl_analyzers
from mlsearch.engine.indices import Indices
from mlsearch.engine.scroll import Scrolls
from mlsearch.ml.agents import Agents
from mlsearch.ml.memory import ConversationMemory
from mlsearch.ml.service import MLService
from mlsearch.ml.wiring import build_ml_service
from mlsearch.pipelines.base import Services
from mlsearch.pipelines.cache import EmbeddingCache
from mlsearch.pipelines.search.store import SearchPipelineStore
from mlsearch.pipelines.store import PipelineStore


@dataclass
class Node:
    settings: Settings
    indices: Indices
    cluster_settings: ClusterSettings
    node_id: str
    ml: MLService
    pipelines: PipelineStore
    search_pipelines: SearchPipelineStore
    memory: ConversationMemory
    agents: Agents
    scrolls: Scrolls = field(default_factory=Scrolls)
    started_at: float = field(default_factory=time.time)

    def start(self) -> None:
        self.indices.open_all()
        self.indices.start_refresher()
        self.ml.start()

    def stopping(self) -> None:
        """The process got a stop signal: cancel what would keep the graceful shutdown waiting (calls to remote
        models that do not answer). Runs before in-flight HTTP requests are drained, `close` after."""
        self.ml.cancel_remote_calls()

    def close(self) -> None:
        try:
            self.ml.close()
        finally:
            self.indices.close()

    def save_cluster_settings(self) -> None:
        _atomic_write(self.settings.data_dir / "cluster_settings.json", orjson.dumps(self.cluster_settings.persistent))

    def cluster_uuid(self) -> str:
        return self._state("cluster_uuid")

    def _state(self, key: str) -> Any:
        path = self.settings.data_dir / "node.json"
        return orjson.loads(path.read_bytes())[key]


def build_node(settings: Settings) -> Node:
    """Every long-lived object of the process, wired; nothing is opened at import time."""
    data = settings.data_dir
    data.mkdir(parents=True, exist_ok=True)
    identity = _identity(data)
    persistent = {}
    stored = data / "cluster_settings.json"
    if stored.exists():
        persistent = orjson.loads(stored.read_bytes())
    configure_dl_analyzers(settings.resolved_cache_dir())
    indices = Indices(data, refresh_tick=settings.refresh_tick_seconds)
    cluster_settings = ClusterSettings(cluster_settings_registry(), persistent)
    ml = build_ml_service(settings, indices, cluster_settings.get, identity["node_id"])
    memory = ConversationMemory(ml.records)
    return Node(
        settings=settings,
        indices=indices,
        cluster_settings=cluster_settings,
        node_id=identity["node_id"],
        ml=ml,
        pipelines=_pipelines(data, indices, ml),
        search_pipelines=SearchPipelineStore(data / "search_pipelines.json"),
        memory=memory,
        agents=Agents(ml, indices, memory),
        scrolls=Scrolls(cluster_settings.get),
    )


def _pipelines(data: Path, indices: Indices, ml: MLService) -> PipelineStore:
    """Ingest pipelines, with what their processors use: models, the embedding cache, stored documents."""

    def existing(index_name: str, doc_id: str) -> dict[str, Any] | None:
        index = indices.write_target(index_name)
        doc = index.get(doc_id) if index is not None else None
        return orjson.loads(doc.source) if doc is not None and doc.source else None

    services = Services(models=ml, cache=EmbeddingCache(), existing=existing)
    return PipelineStore(data / "ingest_pipelines.json", services)


def _identity(data: Path) -> dict[str, str]:
    path = data / "node.json"
    if path.exists():
        return orjson.loads(path.read_bytes())
    identity = {"node_id": _short_id(), "cluster_uuid": _short_id()}
    _atomic_write(path, orjson.dumps(identity))
    return identity


def _short_id() -> str:
    import base64

    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)
