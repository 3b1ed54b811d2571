"""Counters and latency windows behind `_plugins/_ml/stats` and `_plugins/_ml/profile`."""

from __future__ import annotations

import threading
from collections import defaultdict, deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np


class MLStats:
    """Request and failure counts per node, per algorithm and action, and per model; predict latencies per model."""

    def __init__(self, window: int = 100) -> None:
        self._lock = threading.Lock()
        self._window = window
        self.request_count = 0
        self.failure_count = 0
        # Synchronous jobs running now (train, predict, execute of classic algorithms); async ones are the tasks'.
        self.executing_count = 0
        self._algorithms: dict[str, dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(_counts))
        self._models: dict[str, dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(_counts))
        self._latencies: dict[str, deque[float]] = {}

    def record(
        self, action: str, algorithm: str | None, model_id: str | None, *, failed: bool, millis: float | None = None
    ) -> None:
        """One API request: `action` is ML Commons' lower-case action name (predict, register, deploy, ...)."""
        with self._lock:
            self.request_count += 1
            if failed:
                self.failure_count += 1
            if algorithm:
                _bump(self._algorithms[algorithm.lower()][action], failed)
            if model_id:
                _bump(self._models[model_id][action], failed)
                if millis is not None and not failed:
                    self._latencies.setdefault(model_id, deque(maxlen=self._window)).append(millis)

    @contextmanager
    def executing(self) -> Iterator[None]:
        """Count a job in `ml_executing_task_count` while it runs."""
        with self._lock:
            self.executing_count += 1
        try:
            yield
        finally:
            with self._lock:
                self.executing_count -= 1

    def algorithms(self) -> dict[str, Any]:
        with self._lock:
            return {a: {act: dict(c) for act, c in acts.items()} for a, acts in self._algorithms.items()}

    def models(self) -> dict[str, Any]:
        with self._lock:
            return {m: {act: dict(c) for act, c in acts.items()} for m, acts in self._models.items()}

    def latency_summary(self, model_id: str) -> dict[str, Any] | None:
        """count, max, min, average, p50, p90, p99 of recent predict latencies (ms), or None."""
        with self._lock:
            window = list(self._latencies.get(model_id, ()))
        if not window:
            return None
        values = np.asarray(window, dtype=np.float64)
        return {
            "count": len(window),
            "max": float(values.max()),
            "min": float(values.min()),
            "average": float(values.mean()),
            "p50": float(np.percentile(values, 50)),
            "p90": float(np.percentile(values, 90)),
            "p99": float(np.percentile(values, 99)),
        }

    def forget(self, model_id: str) -> None:
        with self._lock:
            self._models.pop(model_id, None)
            self._latencies.pop(model_id, None)


def _counts() -> dict[str, int]:
    return {"ml_action_request_count": 0}


def _bump(bucket: dict[str, int], failed: bool) -> None:
    bucket["ml_action_request_count"] += 1
    if failed:
        bucket["ml_action_failure_count"] = bucket.get("ml_action_failure_count", 0) + 1
