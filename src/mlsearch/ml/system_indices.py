"""ML Commons' system indices on our own engine: created with their mappings on first use, read and written by id.

Records of model groups, models, tasks and config live here (never artefacts), so the plugin's `_search` endpoints
take the regular query DSL through the engine's search."""

from __future__ import annotations

import threading
from typing import Any

import orjson

from mlsearch.engine import aggs
from mlsearch.engine.index import DocOp, Index, OpResult
from mlsearch.engine.indices import Indices
from mlsearch.engine.search import execute, parse_request
from mlsearch.errors import ParsingError

MODEL_GROUP_INDEX = ".plugins-ml-model-group"
MODEL_INDEX = ".plugins-ml-model"
TASK_INDEX = ".plugins-ml-task"
CONFIG_INDEX = ".plugins-ml-config"
CONNECTOR_INDEX = ".plugins-ml-connector"
AGENT_INDEX = ".plugins-ml-agent"
MEMORY_META_INDEX = ".plugins-ml-memory-meta"
MEMORY_MESSAGE_INDEX = ".plugins-ml-memory-message"

_TEXT_WITH_KEYWORD = {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}}
_DATE = {"type": "date", "format": "strict_date_time||epoch_millis"}


def _mapping(properties: dict[str, Any]) -> dict[str, Any]:
    return {"dynamic": "false", "properties": properties}


# Mappings after ml-commons' own (`*.json` index mappings); `dynamic: false` keeps unknown fields in `_source` only.
_MAPPINGS: dict[str, dict[str, Any]] = {
    MODEL_GROUP_INDEX: _mapping(
        {
            "name": _TEXT_WITH_KEYWORD,
            "latest_version": {"type": "integer"},
            "description": {"type": "text"},
            "access": {"type": "keyword"},
            "backend_roles": _TEXT_WITH_KEYWORD,
            "owner": {"type": "object", "enabled": False},
            "created_time": _DATE,
            "last_updated_time": _DATE,
        }
    ),
    MODEL_INDEX: _mapping(
        {
            "name": _TEXT_WITH_KEYWORD,
            "model_group_id": {"type": "keyword"},
            "algorithm": {"type": "keyword"},
            "model_version": {"type": "keyword"},
            "model_format": {"type": "keyword"},
            "model_state": {"type": "keyword"},
            "model_content_size_in_bytes": {"type": "long"},
            "model_content_hash_value": {"type": "keyword"},
            "model_config": {
                "properties": {
                    "model_type": {"type": "keyword"},
                    "embedding_dimension": {"type": "integer"},
                    "framework_type": {"type": "keyword"},
                    "all_config": {"type": "text"},
                }
            },
            "description": {"type": "text"},
            "is_enabled": {"type": "boolean"},
            "is_hidden": {"type": "boolean"},
            "created_time": _DATE,
            "last_updated_time": _DATE,
            "last_registered_time": _DATE,
            "last_deployed_time": _DATE,
            "last_undeployed_time": _DATE,
            "chunk_number": {"type": "long"},
            "total_chunks": {"type": "long"},
            "planning_worker_node_count": {"type": "integer"},
            "current_worker_node_count": {"type": "integer"},
            "planning_worker_nodes": {"type": "keyword"},
            "deploy_to_all_nodes": {"type": "boolean"},
        }
    ),
    TASK_INDEX: _mapping(
        {
            "model_id": {"type": "keyword"},
            "task_type": {"type": "keyword"},
            "function_name": {"type": "keyword"},
            "state": {"type": "keyword"},
            "input_type": {"type": "keyword"},
            "progress": {"type": "float"},
            "output_index": {"type": "keyword"},
            "worker_node": {"type": "keyword"},
            "create_time": _DATE,
            "last_update_time": _DATE,
            "error": {"type": "text"},
            "is_async": {"type": "boolean"},
        }
    ),
    CONNECTOR_INDEX: _mapping(
        {
            "name": _TEXT_WITH_KEYWORD,
            "description": {"type": "text"},
            "version": {"type": "keyword"},
            "protocol": {"type": "keyword"},
            "backend_roles": _TEXT_WITH_KEYWORD,
            "access": {"type": "keyword"},
            "created_time": _DATE,
            "last_updated_time": _DATE,
        }
    ),
    AGENT_INDEX: _mapping(
        {
            "name": _TEXT_WITH_KEYWORD,
            "type": {"type": "keyword"},
            "description": {"type": "text"},
            "app_type": {"type": "keyword"},
            "is_hidden": {"type": "boolean"},
            "llm": {"type": "object", "enabled": False},
            "tools": {"type": "object", "enabled": False},
            "parameters": {"type": "object", "enabled": False},
            "memory": {"type": "object", "enabled": False},
            "created_time": _DATE,
            "last_updated_time": _DATE,
        }
    ),
    CONFIG_INDEX: _mapping({"type": {"type": "keyword"}, "create_time": _DATE, "last_updated_time": _DATE}),
    MEMORY_META_INDEX: _mapping(
        {
            "name": {"type": "text"},
            "create_time": _DATE,
            "updated_time": _DATE,
            "user": {"type": "keyword"},
            "application_type": {"type": "keyword"},
            "additional_info": {"type": "flat_object"},
        }
    ),
    MEMORY_MESSAGE_INDEX: _mapping(
        {
            "memory_id": {"type": "keyword"},
            "create_time": _DATE,
            "updated_time": _DATE,
            "input": {"type": "text"},
            "prompt_template": {"type": "text"},
            "response": {"type": "text"},
            "origin": {"type": "keyword"},
            "additional_info": {"type": "flat_object"},
            "parent_message_id": {"type": "keyword"},
            "trace_number": {"type": "long"},
        }
    ),
}
_SETTINGS = {"index": {"number_of_shards": 1, "number_of_replicas": 1, "hidden": True}}


class SystemIndices:
    """Reads and writes of ML records; each system index is created on first use, refreshed on every write."""

    def __init__(self, indices: Indices) -> None:
        self._indices = indices
        self._lock = threading.Lock()

    def index(self, name: str) -> Index:
        existing = self._indices.find(name)
        if existing is not None:
            return existing
        with self._lock:
            existing = self._indices.find(name)
            if existing is not None:
                return existing
            return self._indices.create(name, {"settings": _SETTINGS, "mappings": _MAPPINGS[name]})

    def exists(self, name: str) -> bool:
        return self._indices.find(name) is not None

    def get(self, name: str, doc_id: str) -> dict[str, Any] | None:
        """The `_source` of a record, or None."""
        index = self._indices.find(name)
        doc = index.get(doc_id) if index is not None else None
        return None if doc is None or doc.source is None else orjson.loads(doc.source)

    def put(self, name: str, doc_id: str, source: dict[str, Any]) -> OpResult:
        return self._write(name, DocOp("index", doc_id, source))

    def create(self, name: str, doc_id: str, source: dict[str, Any]) -> OpResult:
        """Index a new record; a version conflict if the id exists."""
        return self._write(name, DocOp("create", doc_id, source))

    def update(self, name: str, doc_id: str, partial: dict[str, Any]) -> OpResult:
        return self._write(name, DocOp("update", doc_id, {"doc": partial}))

    def delete(self, name: str, doc_id: str) -> OpResult:
        return self._write(name, DocOp("delete", doc_id))

    def _write(self, name: str, op: DocOp) -> OpResult:
        [result] = self.index(name).write([op], refresh=True)
        if result.error is not None:
            raise result.error
        return result

    def search(self, name: str, body: Any) -> dict[str, Any]:
        """A search response over a system index, with `_version`, `_seq_no` and `_primary_term` on hits."""
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise ParsingError("request body must be an object")
        req = parse_request(body, {"version": "true", "seq_no_primary_term": "true"})
        index = self.index(name)
        # Records are read by id from the store as soon as written; waiting for an in-flight write (and its
        # refresh) keeps a search from missing what a GET already showed.
        with index.lock:
            return execute([index], req, aggs_runner=aggs.run)

    def find_all(self, name: str, query: dict[str, Any], size: int = 10000) -> list[tuple[str, dict[str, Any]]]:
        """(id, source) of every record matching a query DSL object."""
        if not self.exists(name):
            return []
        index = self.index(name)
        with index.lock:
            response = execute([index], parse_request({"query": query, "size": size}))
        return [(hit["_id"], hit["_source"]) for hit in response["hits"]["hits"]]

    def count(self, name: str) -> int:
        index = self._indices.find(name)
        return 0 if index is None else index.count()
