"""What an algorithm offers: the estimator contract (fit / predict / learned state) or a one-shot execute."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from mlsearch.ml.algorithms.frame import Frame


class Trainable(Protocol):
    """scikit-learn-like: configured by OpenSearch's `parameters`, fitted on a frame, state as plain JSON."""

    def fit(self, frame: Frame) -> Trainable: ...

    def predict(self, frame: Frame) -> dict[str, Any]:
        """The `prediction_result` frame (column_metas + rows), one row per input row unless documented."""
        ...

    def state(self) -> dict[str, Any]:
        """The learned state, JSON-serialisable (lists and numbers; never pickle)."""
        ...

    def load_state(self, state: Mapping[str, Any]) -> None: ...


# Executors that read an index (anomaly_localization) get the documents through this callable, so that this package
# needs no engine: (index expression, query DSL body, max documents) -> the documents' `_source` maps.
SourceReader = Callable[[str, Mapping[str, Any], int], Sequence[Mapping[str, Any]]]


class Executable(Protocol):
    """A model-less algorithm run by `_execute`: the request body in, the response body out."""

    def execute(self, body: Mapping[str, Any], read: SourceReader) -> dict[str, Any]: ...
