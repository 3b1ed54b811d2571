"""METRICS_CORRELATION (execute only): find events in a set of metrics and the metrics that move together in them.

Input `{"metrics": [[T floats], ... M rows]}` (M * T <= 10,000). Each metric is standardised robustly (median and
MAD). An event window is a maximal run of time steps where at least one metric deviates by more than 3 robust
standard deviations (windows closer than 3 steps are joined; a window needs 2 deviating steps). For each window the event pattern is the mean
absolute deviation profile of the deviating metrics over the whole series (zero outside the window, scaled to a
maximum of 1), and the suspected metrics are those whose deviation profile over the series correlates with the pattern at
0.5 or more. Output as ML Commons' code emits it: `{"inference_results": [{event_window, event_pattern,
suspected_metrics}, ...]}`; `event_window` is [start, end) in time steps.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from mlsearch.errors import IllegalArgumentError
from mlsearch.ml.algorithms.base import SourceReader
from mlsearch.ml.algorithms.registry import EXECUTE, algorithms

MAX_VALUES = 10_000
_Z = 3.0
_GAP = 3
_MIN_STEPS = 2
_MIN_CORRELATION = 0.5


@algorithms.register("METRICS_CORRELATION", {EXECUTE})
class MetricsCorrelation:
    def __init__(self, parameters: Mapping[str, Any] | None = None) -> None:
        pass

    def execute(self, body: Mapping[str, Any], read: SourceReader | None = None) -> dict[str, Any]:
        x = _metrics(body.get("metrics"))
        deviation = _robust_deviation(x)
        results = []
        flags = deviation.max(axis=0) > _Z
        for start, end in _windows(flags):
            if flags[start:end].sum() < _MIN_STEPS:  # a lone outlier is noise, not an event
                continue
            window = deviation[:, start:end]
            involved = window.max(axis=1) > _Z
            pattern = np.zeros(x.shape[1])
            pattern[start:end] = window[involved].mean(axis=0)
            pattern /= pattern.max() or 1.0
            suspected = [i for i in range(x.shape[0]) if _correlation(deviation[i], pattern) >= _MIN_CORRELATION]
            if not suspected:
                continue
            results.append(
                {
                    "event_window": [start, end],
                    "event_pattern": pattern.round(6).tolist(),
                    "suspected_metrics": suspected,
                }
            )
        return {"inference_results": results}


def _metrics(raw: Any) -> np.ndarray:
    if not isinstance(raw, list) or not raw or not all(isinstance(r, list) and r for r in raw):
        raise IllegalArgumentError("[metrics] must be a non-empty array of non-empty arrays of numbers")
    if len({len(r) for r in raw}) != 1:
        raise IllegalArgumentError("every metric in [metrics] must have the same length")
    if len(raw) * len(raw[0]) > MAX_VALUES:
        raise IllegalArgumentError(f"[metrics] may hold at most {MAX_VALUES} values")
    try:
        x = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError):
        raise IllegalArgumentError("[metrics] must contain only numbers") from None
    if not np.isfinite(x).all():
        raise IllegalArgumentError("[metrics] must contain only finite numbers")
    return x


def _robust_deviation(x: np.ndarray) -> np.ndarray:
    median = np.median(x, axis=1, keepdims=True)
    mad = np.median(np.abs(x - median), axis=1, keepdims=True) * 1.4826
    scale = np.where(mad > 0, mad, np.maximum(x.std(axis=1, keepdims=True), 1e-12))
    return np.abs(x - median) / scale


def _windows(flags: np.ndarray) -> list[tuple[int, int]]:
    runs: list[list[int]] = []
    for t in np.flatnonzero(flags).tolist():
        if runs and t - runs[-1][1] <= _GAP:
            runs[-1][1] = t + 1
        else:
            runs.append([t, t + 1])
    return [(a, b) for a, b in runs]


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    if a.std() == 0 or b.std() == 0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])
