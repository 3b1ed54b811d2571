"""BATCH_RCF and FIT_RCF: Random Cut Forest anomaly detection (our implementation, see `_forest`).

- BATCH_RCF trains a forest on the rows (each tree a uniform sample of `sample_size` rows) and predicts `score` and
  `anomalous` (score > `anomaly_score_threshold`) per row.
- FIT_RCF is the streaming detector (ML Commons' fixed-in-time RCF): rows are taken in `time_field` order, the last
  `shingle_size` rows are concatenated into one point, each point is scored by the current forest and then offered
  to each tree's time-decayed reservoir sample (a point with priority log(-log(u)) - time_decay * t replaces the
  sample's worst priority, so newer points are favoured at rate `time_decay`; 0 is a uniform reservoir). Scores are
  0 until the forest has seen `output_after` points. The `anomaly_grade` thresholds the score against the running
  mean + z * standard deviation of past scores, z = the normal quantile of 1 - `anomaly_rate`, and never below 1.0
  (the usual score of an ordinary point); above it the grade is 1 - threshold / score, in (0, 1).
The learned state (per-tree samples, counters, thresholder statistics, random state) is plain JSON; trees are
rebuilt from their samples on load, which by the paper's insertion theorem gives trees of the same distribution.
"""

from __future__ import annotations

import heapq
import math
import random
import statistics
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from mlsearch.errors import IllegalArgumentError
from mlsearch.ml.algorithms._forest import Forest, RandomCutTree, batch_forest, batch_samples, grow
from mlsearch.ml.algorithms._params import Params
from mlsearch.ml.algorithms.frame import Frame, render_frame
from mlsearch.ml.algorithms.registry import PREDICT, TRAIN, TRAIN_PREDICT, algorithms


@algorithms.register("BATCH_RCF", {TRAIN, PREDICT, TRAIN_PREDICT})
class BatchRCF:
    def __init__(self, parameters: Mapping[str, Any] | None = None) -> None:
        params = Params(parameters)
        self.number_of_trees = params.int("number_of_trees", 30, minimum=1) or 30
        self.sample_size = params.int("sample_size", 256, minimum=1) or 256
        self.output_after = params.int("output_after", 32, minimum=0)
        self.training_data_size = params.int("training_data_size", None, minimum=1)
        self.threshold = params.float("anomaly_score_threshold", 1.0)
        self.seed = params.int("seed", 42) or 0
        self.columns: list[str] = []
        self.samples = np.zeros((0, 0, 0))
        self._forest: Forest | None = None

    def fit_array(self, x: np.ndarray) -> BatchRCF:
        if x.shape[0] == 0:
            raise IllegalArgumentError("input data frame is empty: no rows")
        if self.training_data_size is not None:
            x = x[: self.training_data_size]
        self.samples = batch_samples(x, self.number_of_trees, self.sample_size, self.seed)
        self._forest = batch_forest(self.samples, self.seed)
        return self

    def score_array(self, x: np.ndarray) -> np.ndarray:
        if self._forest is None:
            raise IllegalArgumentError("the RCF model is not trained")
        return self._forest.score(x)

    def fit(self, frame: Frame) -> BatchRCF:
        self.columns = list(frame.names)
        return self.fit_array(frame.numeric())

    def predict(self, frame: Frame) -> dict[str, Any]:
        scores = self.score_array(frame.numeric(self.columns))
        return render_frame(
            ["score", "anomalous"], ["DOUBLE", "BOOLEAN"], [scores.tolist(), (scores > self.threshold).tolist()]
        )

    def state(self) -> dict[str, Any]:
        return {"columns": self.columns, "seed": self.seed, "samples": self.samples.tolist()}

    def load_state(self, state: Mapping[str, Any]) -> None:
        self.columns = list(state["columns"])
        self.seed = int(state["seed"])
        self.samples = np.asarray(state["samples"], dtype=np.float64)
        self._forest = batch_forest(self.samples, self.seed)


@algorithms.register("FIT_RCF", {TRAIN, PREDICT, TRAIN_PREDICT})
class FitRCF:
    def __init__(self, parameters: Mapping[str, Any] | None = None) -> None:
        params = Params(parameters)
        self.time_field = params.str("time_field", "timestamp") or "timestamp"
        self.number_of_trees = params.int("number_of_trees", 30, minimum=1) or 30
        self.shingle_size = params.int("shingle_size", 8, minimum=1) or 8
        self.sample_size = params.int("sample_size", 256, minimum=1) or 256
        self.output_after = params.int("output_after", 32, minimum=0) or 0
        self.time_decay = params.float("time_decay", 0.0001) or 0.0
        self.anomaly_rate = params.float("anomaly_rate", 0.005, positive=True) or 0.005
        self.date_format = params.str("date_format", "yyyy-MM-dd HH:mm:ss") or "yyyy-MM-dd HH:mm:ss"
        self.time_zone = params.str("time_zone", "UTC") or "UTC"
        self.seed = params.int("seed", 42) or 0
        if not 0 < self.anomaly_rate < 1:
            raise IllegalArgumentError("parameter [anomaly_rate] must be between 0 and 1")
        self.columns: list[str] = []
        self.stream = _Stream(self)

    def fit(self, frame: Frame) -> FitRCF:
        times, x = self._split(frame, training=True)
        self.stream.run(x[np.argsort(times, kind="stable")])
        return self

    def predict(self, frame: Frame) -> dict[str, Any]:
        times, x = self._split(frame, training=False)
        order = np.argsort(times, kind="stable")
        scores, grades = self.stream.run(x[order])
        out_scores, out_grades = np.empty_like(scores), np.empty_like(grades)
        out_scores[order], out_grades[order] = scores, grades
        return render_frame(
            [self.time_field, "score", "anomaly_grade"],
            ["LONG", "DOUBLE", "DOUBLE"],
            [times.tolist(), out_scores.tolist(), out_grades.tolist()],
        )

    def fit_predict(self, frame: Frame) -> dict[str, Any]:
        """Train-and-predict streams the rows once: each is scored before the forest learns it."""
        self._split(frame, training=True)
        return self.predict(frame)

    def _split(self, frame: Frame, *, training: bool) -> tuple[np.ndarray, np.ndarray]:
        if frame.size == 0:
            raise IllegalArgumentError("input data frame is empty: no rows")
        if self.time_field not in frame.names:
            raise IllegalArgumentError(f"input data has no time field column [{self.time_field}]")
        times = np.array([self._millis(v) for v in frame.column(self.time_field)], dtype=np.int64)
        if training:
            self.columns = [n for n in frame.names if n != self.time_field]
        return times, frame.numeric(self.columns)

    def _millis(self, value: Any) -> int:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return int(value)
        if not isinstance(value, str):
            raise IllegalArgumentError(f"time field [{self.time_field}] has a missing or invalid value [{value}]")
        try:
            parsed = datetime.strptime(value, _strptime_format(self.date_format))
        except ValueError:
            raise IllegalArgumentError(f"cannot parse [{value}] with date_format [{self.date_format}]") from None
        return int(parsed.replace(tzinfo=ZoneInfo(self.time_zone)).timestamp() * 1000)

    def state(self) -> dict[str, Any]:
        return {"columns": self.columns, "time_field": self.time_field, **self.stream.state()}

    def load_state(self, state: Mapping[str, Any]) -> None:
        self.columns = list(state["columns"])
        self.time_field = state["time_field"]
        self.stream.load(state)


class _Stream:
    """The streaming forest of FIT_RCF: shingling, score-then-update, reservoirs and the grade thresholder."""

    def __init__(self, cfg: FitRCF) -> None:
        self.cfg = cfg
        self.rng = random.Random(cfg.seed)
        self.trees = [RandomCutTree(random.Random(cfg.seed + i)) for i in range(cfg.number_of_trees)]
        self.reservoirs: list[list[tuple[float, int, tuple[float, ...]]]] = [[] for _ in self.trees]
        self.seen = 0  # points offered to the forest
        self.shingle: list[list[float]] = []
        self.stats = [0.0, 0.0, 0.0]  # decayed count, mean, M2 of past scores
        self.z = statistics.NormalDist().inv_cdf(1.0 - cfg.anomaly_rate)

    def run(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        scores, grades = np.zeros(x.shape[0]), np.zeros(x.shape[0])
        for i, row in enumerate(x.tolist()):
            self.shingle = [*self.shingle[1 - self.cfg.shingle_size :], row] if self.cfg.shingle_size > 1 else [row]
            if len(self.shingle) < self.cfg.shingle_size:
                continue
            point = tuple(v for r in self.shingle for v in r)
            if self.seen >= self.cfg.output_after and self.seen > 0:
                score = sum(t.score_one(point) for t in self.trees) / len(self.trees)
                scores[i], grades[i] = score, self._grade(score)
            self._update(point)
        return scores, grades

    def _update(self, point: tuple[float, ...]) -> None:
        self.seen += 1
        for tree, sample in zip(self.trees, self.reservoirs, strict=True):
            u = min(max(self.rng.random(), 1e-300), 1.0 - 1e-16)
            priority = math.log(-math.log(u)) - self.cfg.time_decay * self.seen
            if len(sample) < self.cfg.sample_size:
                heapq.heappush(sample, (-priority, self.seen, point))
                tree.insert(point)
            elif -sample[0][0] > priority:  # better (lower) than the worst kept point
                _, _, evicted = heapq.heapreplace(sample, (-priority, self.seen, point))
                tree.delete(evicted)
                tree.insert(point)

    def _grade(self, score: float) -> float:
        count, mean, m2 = self.stats
        sd = math.sqrt(m2 / count) if count > 1 else 0.0
        threshold = max(1.0, mean + self.z * sd) if count > 1 else math.inf
        grade = 1.0 - threshold / score if score > threshold else 0.0
        decay = 1.0 - self.cfg.time_decay
        count = count * decay + 1.0  # a decayed Welford update
        delta = score - mean
        mean += delta / count
        self.stats = [count, mean, m2 * decay + delta * (score - mean)]
        return grade

    def state(self) -> dict[str, Any]:
        version, internal, gauss = self.rng.getstate()
        return {
            "seen": self.seen,
            "shingle": self.shingle,
            "stats": self.stats,
            "rng": [version, list(internal), gauss],
            "reservoirs": [[[-p, seq, list(pt)] for p, seq, pt in s] for s in self.reservoirs],
        }

    def load(self, state: Mapping[str, Any]) -> None:
        self.seen = int(state["seen"])
        self.shingle = [list(r) for r in state["shingle"]]
        self.stats = [float(v) for v in state["stats"]]
        version, internal, gauss = state["rng"]
        self.rng.setstate((version, tuple(internal), gauss))
        self.reservoirs = [[(-p, seq, tuple(pt)) for p, seq, pt in s] for s in state["reservoirs"]]
        for sample in self.reservoirs:
            heapq.heapify(sample)
        self.trees = [grow([pt for _, _, pt in s], self.cfg.seed + i) for i, s in enumerate(self.reservoirs)]


def _strptime_format(java: str) -> str:
    """Joda / Java date patterns as strptime directives (the tokens ML Commons' examples use)."""
    out = java
    for token, directive in (
        ("yyyy", "%Y"),
        ("MM", "%m"),
        ("dd", "%d"),
        ("HH", "%H"),
        ("mm", "%M"),
        ("ss", "%S"),
        ("SSS", "%f"),
    ):
        out = out.replace(token, directive)
    return out
