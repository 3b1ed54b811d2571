"""The node's search pipelines: definitions as sent (for GET) and built pipelines, persisted atomically as JSON."""

from __future__ import annotations

import fnmatch
import os
import threading
from pathlib import Path
from typing import Any

import orjson

from mlsearch.errors import ResourceNotFoundError
from mlsearch.pipelines.search import build_pipeline
from mlsearch.pipelines.search.base import SearchPipeline


class SearchPipelineStore:
    """Search pipelines by id; every change rewrites `search_pipelines.json` (write, fsync, rename)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._definitions: dict[str, dict[str, Any]] = {}
        self._built: dict[str, SearchPipeline] = {}
        if path.exists():
            for pipeline_id, body in orjson.loads(path.read_bytes()).items():
                self._definitions[pipeline_id] = body
                self._built[pipeline_id] = build_pipeline(pipeline_id, body)

    def put(self, pipeline_id: str, body: dict[str, Any]) -> None:
        built = build_pipeline(pipeline_id, body)  # validate before anything changes
        with self._lock:
            self._definitions[pipeline_id] = body
            self._built[pipeline_id] = built
            self._save()

    def definitions(self, pattern: str | None = None) -> dict[str, dict[str, Any]]:
        """Stored definitions whose id matches one of the comma-separated ids or wildcards (all when None)."""
        with self._lock:
            if not pattern or pattern in ("*", "_all"):
                return dict(self._definitions)
            patterns = pattern.split(",")
            return {k: v for k, v in self._definitions.items() if any(fnmatch.fnmatchcase(k, p) for p in patterns)}

    def delete(self, pattern: str) -> None:
        with self._lock:
            patterns = pattern.split(",")
            doomed = [k for k in self._definitions if any(fnmatch.fnmatchcase(k, p) for p in patterns)]
            if not doomed:
                raise ResourceNotFoundError(f"pipeline [{pattern}] is missing")
            for key in doomed:
                del self._definitions[key]
                del self._built[key]
            self._save()

    def find(self, pipeline_id: str) -> SearchPipeline | None:
        with self._lock:
            return self._built.get(pipeline_id)

    def _save(self) -> None:
        tmp = self.path.with_suffix(".json.tmp")
        with open(tmp, "wb") as handle:
            handle.write(orjson.dumps(self._definitions))
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(self.path)
