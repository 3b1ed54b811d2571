"""LOGISTIC_REGRESSION: a multinomial linear classifier trained by SGD (optimisers as in `_sgd`).

Objectives: LOGMULTICLASS (softmax cross-entropy, the default) and HINGE (multi-class hinge: the true class must
beat the best other class by a margin of 1). Classes are the distinct values of the `target` column, predicted as
a STRING column `result`. Defaults follow ML Commons: learning_rate 1, epsilon 0.1, optimiser ADA_GRAD, 5 epochs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from mlsearch.errors import IllegalArgumentError
from mlsearch.ml.algorithms._params import Params
from mlsearch.ml.algorithms._sgd import SgdConfig, minimise, with_bias
from mlsearch.ml.algorithms.frame import Frame, render_frame
from mlsearch.ml.algorithms.registry import PREDICT, TRAIN, algorithms

OBJECTIVES = ("LOGMULTICLASS", "HINGE")


@algorithms.register("LOGISTIC_REGRESSION", {TRAIN, PREDICT})
class LogisticRegression:
    def __init__(self, parameters: Mapping[str, Any] | None = None) -> None:
        params = Params(parameters)
        self.target = params.str("target", None)
        self.objective = params.choice("objective", "LOGMULTICLASS", OBJECTIVES)
        self.sgd = SgdConfig.read(params, learning_rate=1.0, epsilon=0.1)
        self.columns: list[str] = []
        self.classes: list[str] = []
        self.weights: np.ndarray | None = None  # (features + 1) x classes

    def fit_array(self, x: np.ndarray, labels: list[str]) -> LogisticRegression:
        self.classes = sorted(set(labels))
        if len(self.classes) < 2:
            raise IllegalArgumentError("the target column needs at least two distinct classes")
        index = {c: i for i, c in enumerate(self.classes)}
        y = np.array([index[v] for v in labels])
        hinge = self.objective == "HINGE"

        def gradient(w: np.ndarray, xb: np.ndarray, yb: np.ndarray) -> np.ndarray:
            scores = xb @ w
            rows = np.arange(len(yb))
            if hinge:
                margins = scores - scores[rows, yb][:, None] + 1.0
                margins[rows, yb] = 0.0
                worst = np.argmax(margins, axis=1)
                violated = margins[rows, worst] > 0
                d = np.zeros_like(scores)
                d[rows[violated], worst[violated]] += 1.0
                d[rows[violated], yb[violated]] -= 1.0
            else:
                d = _softmax(scores)
                d[rows, yb] -= 1.0
            return xb.T @ d / xb.shape[0]

        start = np.zeros((x.shape[1] + 1, len(self.classes)))
        self.weights = minimise(self.sgd, start, with_bias(x), y, gradient)
        return self

    def predict_array(self, x: np.ndarray) -> list[str]:
        if self.weights is None:
            raise IllegalArgumentError("the logistic regression model is not trained")
        return [self.classes[i] for i in np.argmax(with_bias(x) @ self.weights, axis=1)]

    def fit(self, frame: Frame) -> LogisticRegression:
        if not self.target:
            raise IllegalArgumentError("parameter [target] is required to train a LOGISTIC_REGRESSION model")
        labels = frame.column(self.target)
        if any(v is None for v in labels):
            raise IllegalArgumentError(f"column [{self.target}] has missing values; every row needs a class")
        features = frame.without(self.target)
        self.columns = list(features.names)
        return self.fit_array(features.numeric(), [_label(v) for v in labels])

    def predict(self, frame: Frame) -> dict[str, Any]:
        return render_frame(["result"], ["STRING"], [self.predict_array(frame.numeric(self.columns))])

    def state(self) -> dict[str, Any]:
        assert self.weights is not None
        return {
            "columns": self.columns,
            "target": self.target,
            "classes": self.classes,
            "weights": self.weights.tolist(),
        }

    def load_state(self, state: Mapping[str, Any]) -> None:
        self.columns = list(state["columns"])
        self.target = state["target"]
        self.classes = list(state["classes"])
        self.weights = np.asarray(state["weights"], dtype=np.float64)


def _label(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _softmax(scores: np.ndarray) -> np.ndarray:
    z = np.exp(scores - scores.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)
