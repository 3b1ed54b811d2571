"""RCF_SUMMARIZE: summarise rows into at most `max_k` clusters, as the Random Cut Forest library's Summarizer.

Phase 1 clusters the rows into `initial_k` groups (default min(rows, max(4 * max_k, 10))) by Lloyd iterations
under `distance_type` (L1, L2 — also spelled EUCLIDEAN — or LInfinity; centres are medians for L1 and means
otherwise). Phase 2 repeatedly merges the two closest centres into their size-weighted mean until `max_k` remain,
reassigning rows after each merge when `phase1_reassign` is true (the default). Predicts `ClusterID` per row.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy.spatial.distance import cdist

from mlsearch.errors import IllegalArgumentError
from mlsearch.ml.algorithms._params import Params
from mlsearch.ml.algorithms.frame import Frame, render_frame
from mlsearch.ml.algorithms.registry import PREDICT, TRAIN, TRAIN_PREDICT, algorithms

_METRICS = {"L1": "cityblock", "L2": "euclidean", "EUCLIDEAN": "euclidean", "LINFINITY": "chebyshev"}


@algorithms.register("RCF_SUMMARIZE", {TRAIN, PREDICT, TRAIN_PREDICT})
class RCFSummarize:
    def __init__(self, parameters: Mapping[str, Any] | None = None) -> None:
        params = Params(parameters)
        self.max_k = params.int("max_k", 2, minimum=1) or 2
        self.initial_k = params.int("initial_k", None, minimum=1)
        self.distance_type = params.choice("distance_type", "L2", tuple(_METRICS))
        self.reassign = str(params.raw.get("phase1_reassign", True)).lower() != "false"
        self.seed = params.int("seed", 42) or 0
        self.columns: list[str] = []
        self.centers: np.ndarray | None = None

    def fit_array(self, x: np.ndarray) -> RCFSummarize:
        if x.shape[0] == 0:
            raise IllegalArgumentError("input data frame is empty: no rows")
        rng = np.random.default_rng(self.seed)
        k = min(x.shape[0], self.initial_k or max(4 * self.max_k, 10))
        centers = x[rng.choice(x.shape[0], size=k, replace=False)].astype(np.float64)
        for _ in range(10):
            labels = self._assign(x, centers)
            centers = self._centres(x, labels, centers)
        sizes = np.bincount(self._assign(x, centers), minlength=len(centers)).astype(np.float64)
        while len(centers) > self.max_k:
            centers, sizes = self._merge_closest(centers, sizes)
            if self.reassign:
                sizes = np.bincount(self._assign(x, centers), minlength=len(centers)).astype(np.float64)
        self.centers = centers
        return self

    def _assign(self, x: np.ndarray, centers: np.ndarray) -> np.ndarray:
        return np.argmin(cdist(x, centers, _METRICS[self.distance_type]), axis=1)

    def _centres(self, x: np.ndarray, labels: np.ndarray, centers: np.ndarray) -> np.ndarray:
        out = centers.copy()
        for j in np.unique(labels):
            members = x[labels == j]
            out[j] = np.median(members, axis=0) if self.distance_type == "L1" else members.mean(axis=0)
        return out

    def _merge_closest(self, centers: np.ndarray, sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        d = cdist(centers, centers, _METRICS[self.distance_type])
        np.fill_diagonal(d, np.inf)
        a, b = np.unravel_index(np.argmin(d), d.shape)
        weight = sizes[a] + sizes[b]
        merged = centers[a] if weight == 0 else (centers[a] * sizes[a] + centers[b] * sizes[b]) / weight
        keep = [i for i in range(len(centers)) if i not in (a, b)]
        return np.vstack([centers[keep], merged]), np.append(sizes[keep], weight)

    def predict_array(self, x: np.ndarray) -> np.ndarray:
        if self.centers is None:
            raise IllegalArgumentError("the RCF_SUMMARIZE model is not trained")
        return self._assign(x, self.centers)

    def fit(self, frame: Frame) -> RCFSummarize:
        self.columns = list(frame.names)
        return self.fit_array(frame.numeric())

    def predict(self, frame: Frame) -> dict[str, Any]:
        return render_frame(["ClusterID"], ["INTEGER"], [self.predict_array(frame.numeric(self.columns)).tolist()])

    def state(self) -> dict[str, Any]:
        assert self.centers is not None
        return {"columns": self.columns, "centers": self.centers.tolist(), "distance_type": self.distance_type}

    def load_state(self, state: Mapping[str, Any]) -> None:
        self.columns = list(state["columns"])
        self.centers = np.asarray(state["centers"], dtype=np.float64)
        self.distance_type = state["distance_type"]
