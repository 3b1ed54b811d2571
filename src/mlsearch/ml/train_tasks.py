"""Minimal ML tasks in `.plugins-ml-task` for `_train?async=true`: CREATED -> RUNNING -> COMPLETED | FAILED.

A seam like `trained_models`: the shared task service replaces it at merge. Task documents carry ML Commons'
fields (`task_type`, `function_name`, `state`, `input_type`, `worker_node`, `create_time`, `last_update_time`,
`is_async`, `model_id` once trained, `error` on failure).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import orjson

from mlsearch.engine.indices import Indices
from mlsearch.errors import MLSearchError
from mlsearch.ml import _system_index

log = logging.getLogger(__name__)

TASK_INDEX = ".plugins-ml-task"
_MAPPINGS = {
    "properties": {
        "task_type": {"type": "keyword"},
        "function_name": {"type": "keyword"},
        "state": {"type": "keyword"},
        "input_type": {"type": "keyword"},
        "model_id": {"type": "keyword"},
        "worker_node": {"type": "keyword"},
        "error": {"type": "text"},
        "is_async": {"type": "boolean"},
        "create_time": {"type": "date", "format": "strict_date_time||epoch_millis"},
        "last_update_time": {"type": "date", "format": "strict_date_time||epoch_millis"},
    }
}


class TrainTasks:
    """Create a task record, then run the work and record its outcome on the same document."""

    def __init__(self, indices: Indices, node_id: str) -> None:
        self.indices = indices
        self.node_id = node_id

    def create(self, task_type: str, function_name: str, input_type: str) -> str:
        index = _system_index.ensure(self.indices, TASK_INDEX, _MAPPINGS)
        task_id = _system_index.new_id()
        now = _system_index.now_millis()
        _system_index.put(
            index,
            task_id,
            {
                "task_type": task_type,
                "function_name": function_name,
                "state": "CREATED",
                "input_type": input_type,
                "worker_node": [self.node_id],
                "create_time": now,
                "last_update_time": now,
                "is_async": True,
            },
        )
        return task_id

    def run(self, task_id: str, work: Callable[[], str]) -> None:
        """Run `work` (returns the model id) and move the task to COMPLETED, or FAILED with the error's reason."""
        self._update(task_id, state="RUNNING")
        try:
            model_id = work()
        except MLSearchError as exc:
            self._update(task_id, state="FAILED", error=exc.reason)
            return
        except Exception as exc:
            log.exception("training task %s failed", task_id)
            self._update(task_id, state="FAILED", error=f"{type(exc).__name__}: {exc}")
            return
        self._update(task_id, state="COMPLETED", model_id=model_id)

    def _update(self, task_id: str, **fields: Any) -> None:
        index = self.indices.get(TASK_INDEX)
        doc = index.get(task_id)
        source = orjson.loads(doc.source) if doc is not None and doc.source is not None else {}
        source.update(fields, last_update_time=_system_index.now_millis())
        _system_index.put(index, task_id, source)
