"""Long ML jobs as tasks: records in `.plugins-ml-task`, run on a bounded worker pool.

States follow ML Commons: CREATED -> RUNNING -> COMPLETED | FAILED (with `error`)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from mlsearch.errors import MLSearchError, StatusError
from mlsearch.ml.ids import new_id
from mlsearch.ml.system_indices import TASK_INDEX, SystemIndices

log = logging.getLogger(__name__)

# A job returns the fields to set on its task when it completes (e.g. `model_id`), or None.
Job = Callable[[], dict[str, Any] | None]
# A task as the tasks API shows it, from its id and record.
View = Callable[[str, dict[str, Any]], dict[str, Any]]


def now_millis() -> int:
    return int(time.time() * 1000)


class TaskFailed(Exception):
    """A job failure whose `error` is recorded verbatim on the task (e.g. a deploy's JSON node map)."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


class Tasks:
    """Create, run, read and delete tasks. Running tasks are also tracked in memory for the profile API."""

    def __init__(self, records: SystemIndices, node_id: str, *, workers: int = 4) -> None:
        self._records = records
        self._node_id = node_id
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ml-task")
        self._running: dict[str, dict[str, Any]] = {}
        self._futures: dict[str, Future[None]] = {}
        self._lock = threading.Lock()
        self._views: dict[str, View] = {}

    def create(
        self,
        task_type: str,
        function_name: str,
        *,
        model_id: str | None = None,
        input_type: str | None = None,
        is_async: bool = True,
    ) -> str:
        task_id = new_id()
        stamp = now_millis()
        doc: dict[str, Any] = {
            "task_type": task_type,
            "function_name": function_name,
            "state": "CREATED",
            **({"input_type": input_type} if input_type is not None else {}),
            "worker_node": [self._node_id],
            "create_time": stamp,
            "last_update_time": stamp,
            "is_async": is_async,
        }
        if model_id is not None:
            doc = {"model_id": model_id, **doc}
        self._records.create(TASK_INDEX, task_id, doc)
        return task_id

    def submit(self, task_id: str, job: Job, *, announce_running: bool = True) -> Future[None]:
        """Run `job` on the pool. Without `announce_running` the job itself marks the task RUNNING (with what it
        produced so far, e.g. a register task's model_id)."""
        with self._lock:
            self._running[task_id] = {}
            future = self._pool.submit(self._run, task_id, job, announce_running)
            self._futures[task_id] = future
        return future

    def mark_running(self, task_id: str, **fields: Any) -> None:
        self._set(task_id, {**fields, "state": "RUNNING"})

    def _run(self, task_id: str, job: Job, announce_running: bool = True) -> None:
        try:
            if announce_running:
                self._set(task_id, {"state": "RUNNING"})
            outcome = job() or {}
            self._set(task_id, {**outcome, "state": "COMPLETED"})
        except TaskFailed as exc:
            self._fail(task_id, exc.error)
        except MLSearchError as exc:
            self._fail(task_id, exc.reason)
        except Exception as exc:
            log.exception("task %s failed", task_id)
            self._fail(task_id, str(exc) or type(exc).__name__)
        finally:
            with self._lock:
                self._running.pop(task_id, None)
                self._futures.pop(task_id, None)

    def _fail(self, task_id: str, error: str) -> None:
        try:
            self._set(task_id, {"state": "FAILED", "error": error})
        except Exception:
            log.exception("cannot record the failure of task %s", task_id)

    def _set(self, task_id: str, fields: dict[str, Any]) -> None:
        self._records.update(TASK_INDEX, task_id, {**fields, "last_update_time": now_millis()})

    def get(self, task_id: str) -> dict[str, Any]:
        doc = self.find(task_id)
        if doc is None:
            raise StatusError("Failed to find task", status=404)
        return doc

    def find(self, task_id: str) -> dict[str, Any] | None:
        return self._records.get(TASK_INDEX, task_id)

    def update(self, task_id: str, fields: dict[str, Any]) -> None:
        """Set fields of a task record (and its last_update_time)."""
        self._set(task_id, fields)

    def add_view(self, task_type: str, view: View) -> None:
        """How the tasks API shows tasks of one type, e.g. a batch prediction refreshed from its remote job."""
        self._views[task_type] = view

    def view(self, task_id: str) -> dict[str, Any]:
        """A task as `GET /tasks/{id}` returns it."""
        doc = self.get(task_id)
        view = self._views.get(str(doc.get("task_type")))
        return view(task_id, doc) if view is not None else doc

    def delete(self, task_id: str) -> Any:
        doc = self.get(task_id)
        if doc.get("state") == "RUNNING":
            raise StatusError("Task cannot be deleted in running state. Try after some time.", status=400)
        return self._records.delete(TASK_INDEX, task_id)

    def running(self) -> dict[str, dict[str, Any]]:
        """Records of tasks not finished yet, by id."""
        with self._lock:
            ids = list(self._running)
        found = {i: self._records.get(TASK_INDEX, i) for i in ids}
        return {i: doc for i, doc in found.items() if doc is not None}

    def executing_count(self) -> int:
        with self._lock:
            return len(self._running)

    def wait_idle(self, timeout: float) -> None:
        """Wait for submitted tasks (shutdown and tests)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                futures = list(self._futures.values())
            if not futures or time.monotonic() > deadline:
                return
            for future in futures:
                future.exception(timeout=max(0.0, deadline - time.monotonic()))

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
