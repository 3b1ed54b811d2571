"""KMEANS: Lloyd's k-means with ML Commons' parameters (`centroids` 2, `iterations` 10, `distance_type` EUCLIDEAN).

EUCLIDEAN runs scikit-learn's KMeans (k-means++ seeding, one initialisation, Lloyd iterations). scikit-learn has
no other distance, so COSINE and L1 run our own Lloyd loop, vectorised with numpy. As in ML Commons, whose k-means
is Tribuo's, the distance only decides which centroid a row joins: a centroid is always the mean of its rows (raw
rows, not normalised ones, for COSINE; the mean, not the median, for L1), and a centroid left without rows keeps
its place. All three are deterministic for a given `seed` (an mlsearch extension, default 42). When there are more
centroids than rows, ML Commons (Tribuo) still trains; so do we: the rows seed the first centroids and the others
are drawn uniformly inside the rows' bounding box, so some clusters stay empty.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from mlsearch.errors import IllegalArgumentError
from mlsearch.ml.algorithms._params import Params
from mlsearch.ml.algorithms.frame import Frame, render_frame
from mlsearch.ml.algorithms.registry import PREDICT, TRAIN, TRAIN_PREDICT, algorithms

DISTANCES = ("EUCLIDEAN", "COSINE", "L1")


@algorithms.register("KMEANS", {TRAIN, PREDICT, TRAIN_PREDICT})
class KMeans:
    """k-means over every column of the input frame; predicts `ClusterID` per row."""

    def __init__(self, parameters: Mapping[str, Any] | None = None) -> None:
        params = Params(parameters)
        self.centroids = params.int("centroids", 2, minimum=1) or 2
        self.iterations = params.int("iterations", 10, minimum=1) or 10
        self.distance_type = params.choice("distance_type", "EUCLIDEAN", DISTANCES)
        self.seed = params.int("seed", 42) or 0
        self.columns: list[str] = []
        self.cluster_centers: np.ndarray | None = None
        self.iterations_run = 0

    # ---- estimator on arrays ---------------------------------------------------------------------------------

    def fit_array(self, x: np.ndarray) -> KMeans:
        if x.shape[0] == 0:
            raise IllegalArgumentError("input data frame is empty: no rows")
        if self.distance_type == "EUCLIDEAN" and x.shape[0] >= self.centroids:
            self._fit_sklearn(x)
        else:
            self._fit_lloyd(x)
        return self

    def predict_array(self, x: np.ndarray) -> np.ndarray:
        if self.cluster_centers is None:
            raise IllegalArgumentError("the k-means model is not trained")
        if x.shape[1] != self.cluster_centers.shape[1]:
            raise IllegalArgumentError(
                f"the model was trained on {self.cluster_centers.shape[1]} columns, the input has {x.shape[1]}"
            )
        return _assign(self.distance_type, _prepare(self.distance_type, x), self.cluster_centers)

    def _fit_sklearn(self, x: np.ndarray) -> None:
        from sklearn.cluster import KMeans as SkKMeans

        model = SkKMeans(
            n_clusters=self.centroids, max_iter=self.iterations, n_init=1, random_state=self.seed, algorithm="lloyd"
        ).fit(x)
        self.cluster_centers = model.cluster_centers_
        self.iterations_run = int(model.n_iter_)

    def _fit_lloyd(self, x: np.ndarray) -> None:
        rng = np.random.default_rng(self.seed)
        compared = _prepare(self.distance_type, x)  # what the distance sees; centroids average the raw rows
        centers = _initial_centers(x, self.centroids, rng)
        labels = np.full(x.shape[0], -1)
        for step in range(1, self.iterations + 1):
            new_labels = _assign(self.distance_type, compared, centers)
            self.iterations_run = step
            if np.array_equal(new_labels, labels):
                break
            labels = new_labels
            centers = _update(x, labels, centers)
        self.cluster_centers = centers

    # ---- the Trainable contract ------------------------------------------------------------------------------

    def fit(self, frame: Frame) -> KMeans:
        self.columns = list(frame.names)
        return self.fit_array(frame.numeric())

    def predict(self, frame: Frame) -> dict[str, Any]:
        labels = self.predict_array(frame.numeric(self.columns or None))
        return render_frame(["ClusterID"], ["INTEGER"], [labels.tolist()])

    def state(self) -> dict[str, Any]:
        assert self.cluster_centers is not None  # fit() ran; an internal invariant, not input validation
        return {
            "columns": self.columns,
            "centroids": self.cluster_centers.tolist(),
            "distance_type": self.distance_type,
            "iterations_run": self.iterations_run,
        }

    def load_state(self, state: Mapping[str, Any]) -> None:
        self.columns = list(state["columns"])
        self.cluster_centers = np.asarray(state["centroids"], dtype=np.float64)
        self.distance_type = state["distance_type"]
        self.iterations_run = int(state.get("iterations_run", 0))


def _prepare(distance: str, x: np.ndarray) -> np.ndarray:
    return _normalise(x) if distance == "COSINE" else x


def _normalise(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms == 0, 1.0, norms)


def _initial_centers(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding when there are enough rows; else every row plus uniform draws in the bounding box."""
    n = x.shape[0]
    if n >= k:
        from sklearn.cluster import kmeans_plusplus

        centers, _ = kmeans_plusplus(x, k, random_state=int(rng.integers(2**31)))
        return np.array(centers, dtype=np.float64)
    extra = rng.uniform(x.min(axis=0), x.max(axis=0), size=(k - n, x.shape[1]))
    return np.vstack([x, extra])


_BLOCK = 4096  # rows per distance block: small products stay in cache and off BLAS's thread pool


def _assign(distance: str, x: np.ndarray, centers: np.ndarray) -> np.ndarray:
    if distance == "L1":
        from scipy.spatial.distance import cdist

        return np.argmin(cdist(x, centers, "cityblock"), axis=1)
    # Both are "largest x·w + b" over the centres: cosine on unit rows (w = unit centres, b = 0), and Euclidean as
    # argmin |x - c|² = argmax (2 x·c - |c|²), the row's own |x|² being the same for every centre.
    if distance == "COSINE":
        weights, bias = _normalise(centers).T, np.zeros(centers.shape[0])
    else:
        weights, bias = 2.0 * centers.T, -(centers * centers).sum(axis=1)
    labels = np.empty(x.shape[0], dtype=np.intp)
    for start in range(0, x.shape[0], _BLOCK):
        scores = x[start : start + _BLOCK] @ weights
        scores += bias
        labels[start : start + _BLOCK] = scores.argmax(axis=1)
    return labels


def _update(x: np.ndarray, labels: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """New centres, the mean of each cluster's rows; a cluster left empty keeps its old centre (as Tribuo does)."""
    out = centers.copy()
    k = centers.shape[0]
    # Per-centre sums as one (k x n) one-hot product: several times faster than a bincount per column.
    sums = (labels[None, :] == np.arange(k)[:, None]).astype(x.dtype) @ x
    counts = np.bincount(labels, minlength=k)
    filled = counts > 0
    out[filled] = sums[filled] / counts[filled, None]
    return out
