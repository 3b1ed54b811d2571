"""PipelineStore: the node's ingest pipelines by id, kept as their bodies (as PUT) in one JSON file in the data dir,
written atomically, and held parsed in memory."""

from __future__ import annotations

import fnmatch
import os
import threading
from pathlib import Path
from typing import Any

import orjson

import mlsearch.pipelines.ingest  # noqa: F401  (registers the built-in processors)
from mlsearch.errors import IllegalArgumentError, ResourceNotFoundError
from mlsearch.pipelines.base import Registry, Services, registry
from mlsearch.pipelines.runner import Pipeline, parse_pipeline


class PipelineStore:
    def __init__(self, path: Path, services: Services, processors: Registry = registry) -> None:
        self.path = path
        self.services = services
        self.registry = processors
        services.registry = processors
        self._lock = threading.Lock()
        self._bodies: dict[str, dict[str, Any]] = {}
        self._parsed: dict[str, Pipeline] = {}
        if path.exists():
            for pipeline_id, body in orjson.loads(path.read_bytes()).items():
                self._bodies[pipeline_id] = body
                self._parsed[pipeline_id] = parse_pipeline(pipeline_id, body, processors, services)

    def parse(self, pipeline_id: str, body: Any) -> Pipeline:
        return parse_pipeline(pipeline_id, body, self.registry, self.services)

    def put(self, pipeline_id: str, body: dict[str, Any]) -> None:
        pipeline = self.parse(pipeline_id, body)
        with self._lock:
            self._bodies[pipeline_id] = body
            self._parsed[pipeline_id] = pipeline
            self._save()

    def find(self, pipeline_id: str) -> Pipeline | None:
        return self._parsed.get(pipeline_id)

    def get(self, pipeline_id: str) -> Pipeline:
        """The pipeline; 400 `pipeline with id [x] does not exist` as the write path reports it."""
        pipeline = self._parsed.get(pipeline_id)
        if pipeline is None:
            raise IllegalArgumentError(f"pipeline with id [{pipeline_id}] does not exist")
        return pipeline

    def bodies(self, pattern: str | None = None) -> dict[str, dict[str, Any]]:
        """Stored bodies whose id matches a comma list of ids / wildcards (all when None)."""
        if pattern in (None, "", "*", "_all"):
            return dict(self._bodies)
        wanted = [p.strip() for p in pattern.split(",") if p.strip()]  # type: ignore[union-attr]
        return {i: b for i, b in self._bodies.items() if any(fnmatch.fnmatchcase(i, w) for w in wanted)}

    def delete(self, pattern: str) -> None:
        with self._lock:
            doomed = list(self.bodies(pattern))
            if not doomed:
                raise ResourceNotFoundError(f"pipeline [{pattern}] is missing")
            for pipeline_id in doomed:
                self._bodies.pop(pipeline_id, None)
                self._parsed.pop(pipeline_id, None)
            self._save()

    def _save(self) -> None:
        tmp = self.path.with_suffix(self.path.suffix + ".tmp")
        with open(tmp, "wb") as handle:
            handle.write(orjson.dumps(self._bodies))
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(self.path)
