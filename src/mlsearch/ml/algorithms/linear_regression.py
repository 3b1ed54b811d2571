"""LINEAR_REGRESSION: a linear model trained by SGD with ML Commons' optimisers and objectives (see `_sgd`).

Objectives (gradient of the loss in the residual r = prediction - target):
SQUARED_LOSS r; ABSOLUTE_LOSS sign(r); HUBER r clipped to [-5, 5] (Tribuo's default Huber cost of 5).
Every column but `target` is a feature; the model predicts a DOUBLE column named after the target.
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

OBJECTIVES = ("SQUARED_LOSS", "ABSOLUTE_LOSS", "HUBER")
_HUBER_COST = 5.0


@algorithms.register("LINEAR_REGRESSION", {TRAIN, PREDICT})
class LinearRegression:
    def __init__(self, parameters: Mapping[str, Any] | None = None) -> None:
        params = Params(parameters)
        self.target = params.str("target", None)
        self.objective = params.choice("objective", "SQUARED_LOSS", OBJECTIVES)
        self.sgd = SgdConfig.read(params, learning_rate=0.01, epsilon=1e-6)
        self.columns: list[str] = []
        self.weights: np.ndarray | None = None  # one per feature, then the intercept

    def fit_array(self, x: np.ndarray, y: np.ndarray) -> LinearRegression:
        objective = self.objective

        def gradient(w: np.ndarray, xb: np.ndarray, yb: np.ndarray) -> np.ndarray:
            r = xb @ w - yb
            if objective == "ABSOLUTE_LOSS":
                r = np.sign(r)
            elif objective == "HUBER":
                r = np.clip(r, -_HUBER_COST, _HUBER_COST)
            return xb.T @ r / xb.shape[0]

        self.weights = minimise(self.sgd, np.zeros(x.shape[1] + 1), with_bias(x), y, gradient)
        return self

    def predict_array(self, x: np.ndarray) -> np.ndarray:
        if self.weights is None:
            raise IllegalArgumentError("the linear regression model is not trained")
        return with_bias(x) @ self.weights

    @property
    def coef_(self) -> np.ndarray:
        assert self.weights is not None
        return self.weights[:-1]

    @property
    def intercept_(self) -> float:
        assert self.weights is not None
        return float(self.weights[-1])

    def fit(self, frame: Frame) -> LinearRegression:
        if not self.target:
            raise IllegalArgumentError("parameter [target] is required to train a LINEAR_REGRESSION model")
        y = frame.numeric([self.target])[:, 0]
        features = frame.without(self.target)
        self.columns = list(features.names)
        return self.fit_array(features.numeric(), y)

    def predict(self, frame: Frame) -> dict[str, Any]:
        values = self.predict_array(frame.numeric(self.columns))
        return render_frame([self.target or "prediction"], ["DOUBLE"], [values.tolist()])

    def state(self) -> dict[str, Any]:
        assert self.weights is not None
        return {
            "columns": self.columns,
            "target": self.target,
            "coefficients": self.coef_.tolist(),
            "intercept": self.intercept_,
        }

    def load_state(self, state: Mapping[str, Any]) -> None:
        self.columns = list(state["columns"])
        self.target = state["target"]
        self.weights = np.asarray([*state["coefficients"], state["intercept"]], dtype=np.float64)
