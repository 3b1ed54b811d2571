"""Counters of the k-NN plugin's stats API, one object per node (owned by the catalog, handed to every index's
vector projection), plus the graph cache bookkeeping behind hit/miss/load/eviction counts."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

COUNTERS = (
    "knn_query_requests",
    "graph_query_requests",
    "graph_query_errors",
    "graph_index_requests",
    "graph_index_errors",
    "script_compilations",
    "script_compilation_errors",
    "script_query_requests",
    "script_query_errors",
    "hit_count",
    "miss_count",
    "load_success_count",
    "load_exception_count",
    "eviction_count",
    "total_load_time",  # nanoseconds, as the plugin reports it
    "training_requests",
    "training_errors",
)


@dataclass
class KnnStats:
    """Monotonic counters (under one lock; increments are rare next to the work they count) and the memory a
    running training holds."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))
    training_memory_bytes: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def bump(self, name: str, by: int = 1) -> None:
        with self._lock:
            self.counts[name] += by

    def bump_each(self, *names: str) -> None:
        """Add one to each of `names` (one lock for several counters of the same event)."""
        with self._lock:
            counts = self.counts
            for name in names:
                counts[name] += 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.counts)
