"""Stochastic gradient descent with ML Commons' (Tribuo's) optimiser names, for the linear models.

Mapping of `optimiser` (ML Commons' names) to update rules, with `t` the step number from 1 and `g` the gradient:
- SIMPLE_SGD: w -= lr * g, with momentum `momentum_factor` (STANDARD or NESTEROV `momentum_type`) when > 0.
- LINEAR_DECAY_SGD: as SIMPLE_SGD with lr / t;  SQRT_DECAY_SGD: lr / sqrt(t)  (Tribuo's SGD.getLinearDecaySGD / getSqrtDecaySGD).
- ADA_GRAD: G += g^2; w -= lr * g / (sqrt(G) + epsilon).
- ADA_DELTA: Zeiler's rule with rho = `decay_rate` and `epsilon` (no learning rate).
- ADAM: Kingma & Ba with `learning_rate`, `beta1`, `beta2`, `epsilon` and bias correction.
- RMS_PROP: E[g^2] = decay_rate * E + (1 - decay_rate) * g^2; w -= lr * g / (sqrt(E) + epsilon).
Rows are shuffled each epoch with `seed`; a step averages the gradient over `batch_size` rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mlsearch.ml.algorithms._params import Params

OPTIMISERS = ("SIMPLE_SGD", "LINEAR_DECAY_SGD", "SQRT_DECAY_SGD", "ADA_GRAD", "ADA_DELTA", "ADAM", "RMS_PROP")
MOMENTUM_TYPES = ("STANDARD", "NESTEROV")

# (weights, batch rows, batch targets) -> gradient with the weights' shape
Gradient = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True, slots=True)
class SgdConfig:
    optimiser: str
    learning_rate: float
    momentum_factor: float
    momentum_type: str
    epsilon: float
    beta1: float
    beta2: float
    decay_rate: float
    epochs: int
    batch_size: int
    seed: int

    @classmethod
    def read(cls, params: Params, *, learning_rate: float, epsilon: float) -> SgdConfig:
        return cls(
            optimiser=params.choice("optimiser", "ADA_GRAD", OPTIMISERS),
            learning_rate=params.float("learning_rate", learning_rate, positive=True) or learning_rate,
            momentum_factor=params.float("momentum_factor", 0.0) or 0.0,
            momentum_type=params.choice("momentum_type", "STANDARD", MOMENTUM_TYPES),
            epsilon=params.float("epsilon", epsilon, positive=True) or epsilon,
            beta1=params.float("beta1", 0.9) or 0.9,
            beta2=params.float("beta2", 0.99) or 0.99,
            decay_rate=params.float("decay_rate", 0.9) or 0.9,
            epochs=params.int("epochs", 5, minimum=1) or 5,
            batch_size=params.int("batch_size", 1, minimum=1) or 1,
            seed=params.int("seed", 12345) or 0,
        )


class _Optimiser:
    """Per-parameter state of one optimiser; `step` returns the update to subtract."""

    def __init__(self, cfg: SgdConfig, shape: tuple[int, ...]) -> None:
        self.cfg = cfg
        self.t = 0
        self.a = np.zeros(shape)  # velocity, G, E[g^2] or Adam's m
        self.b = np.zeros(shape)  # Adam's v or AdaDelta's E[dx^2]

    def step(self, g: np.ndarray) -> np.ndarray:
        cfg = self.cfg
        self.t += 1
        name = cfg.optimiser
        if name in ("SIMPLE_SGD", "LINEAR_DECAY_SGD", "SQRT_DECAY_SGD"):
            lr = (
                cfg.learning_rate
                / {"SIMPLE_SGD": 1.0, "LINEAR_DECAY_SGD": self.t, "SQRT_DECAY_SGD": np.sqrt(self.t)}[name]
            )
            if cfg.momentum_factor <= 0:
                return lr * g
            self.a = cfg.momentum_factor * self.a + lr * g
            return cfg.momentum_factor * self.a + lr * g if cfg.momentum_type == "NESTEROV" else self.a
        if name == "ADA_GRAD":
            self.a += g * g
            return cfg.learning_rate * g / (np.sqrt(self.a) + cfg.epsilon)
        if name == "RMS_PROP":
            self.a = cfg.decay_rate * self.a + (1 - cfg.decay_rate) * g * g
            return cfg.learning_rate * g / (np.sqrt(self.a) + cfg.epsilon)
        if name == "ADA_DELTA":
            rho = cfg.decay_rate
            self.a = rho * self.a + (1 - rho) * g * g
            update = np.sqrt(self.b + cfg.epsilon) / np.sqrt(self.a + cfg.epsilon) * g
            self.b = rho * self.b + (1 - rho) * update * update
            return update
        self.a = cfg.beta1 * self.a + (1 - cfg.beta1) * g  # ADAM
        self.b = cfg.beta2 * self.b + (1 - cfg.beta2) * g * g
        m_hat = self.a / (1 - cfg.beta1**self.t)
        v_hat = self.b / (1 - cfg.beta2**self.t)
        return cfg.learning_rate * m_hat / (np.sqrt(v_hat) + cfg.epsilon)


def minimise(cfg: SgdConfig, weights: np.ndarray, x: np.ndarray, y: np.ndarray, gradient: Gradient) -> np.ndarray:
    """Run `epochs` passes of mini-batch SGD from `weights`; returns the final weights."""
    rng = np.random.default_rng(cfg.seed)
    optimiser = _Optimiser(cfg, weights.shape)
    w = weights.astype(np.float64, copy=True)
    n = x.shape[0]
    for _ in range(cfg.epochs):
        order = rng.permutation(n)
        for start in range(0, n, cfg.batch_size):
            rows = order[start : start + cfg.batch_size]
            w -= optimiser.step(gradient(w, x[rows], y[rows]))
    return w


def with_bias(x: np.ndarray) -> np.ndarray:
    """Rows with a trailing 1 so the last weight is the intercept."""
    return np.hstack([x, np.ones((x.shape[0], 1))])
