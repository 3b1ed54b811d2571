"""What every index's vector projection shares on one node: the k-NN counters and how to look a trained model
up (set by the k-NN API service; indices keep their own copy of a model they use, so it is only asked once)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mlsearch.engine.vectors.stats import KnnStats

# model_id -> {"dimension", "space_type", "data_type", "model_definition", "blob" (bytes), "state"} or None
ModelSource = Callable[[str], "dict[str, Any] | None"]


@dataclass
class KnnNode:
    stats: KnnStats = field(default_factory=KnnStats)
    catalog: Any = None  # the node's Indices, where the model system index lives
    models: ModelSource | None = None

    def model(self, model_id: str) -> dict[str, Any] | None:
        if self.models is None and self.catalog is not None:
            from mlsearch.engine.vectors.models import KnnModels  # imported late: it needs the whole engine

            self.models = KnnModels(self.catalog, self.stats, "").resolve
        return None if self.models is None else self.models(model_id)
