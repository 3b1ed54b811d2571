"""LOCAL_SAMPLE_CALCULATOR: ML Commons' sample executor; `{"operation": max|min|sum, "input_data": [...]}`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from mlsearch.errors import IllegalArgumentError
from mlsearch.ml.algorithms.base import SourceReader
from mlsearch.ml.algorithms.registry import EXECUTE, algorithms

_OPERATIONS = {"max": np.max, "min": np.min, "sum": np.sum}


@algorithms.register("LOCAL_SAMPLE_CALCULATOR", {EXECUTE})
class LocalSampleCalculator:
    def __init__(self, parameters: Mapping[str, Any] | None = None) -> None:
        pass

    def execute(self, body: Mapping[str, Any], read: SourceReader | None = None) -> dict[str, Any]:
        operation = str(body.get("operation", "")).lower()
        if operation not in _OPERATIONS:
            raise IllegalArgumentError(f"Unsupported operation [{body.get('operation')}]; use max, min or sum")
        data = body.get("input_data")
        if not isinstance(data, list) or not data:
            raise IllegalArgumentError("input_data must be a non-empty array of numbers")
        if any(isinstance(v, bool) or not isinstance(v, int | float) for v in data):
            raise IllegalArgumentError("input_data must contain only numbers")
        return {"result": float(_OPERATIONS[operation](np.asarray(data, dtype=np.float64)))}
