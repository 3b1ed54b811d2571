"""ML Commons' classic algorithms (k-means, regressions, RCF, ...): a registry by function name, data frames, and
one module per algorithm with the fit / predict / state contract or an execute. Built-ins are imported here."""

from mlsearch.ml.algorithms import (
    anomaly_localization,
    kmeans,
    linear_regression,
    local_sample_calculator,
    logistic_regression,
    metrics_correlation,
    rcf,
    rcf_summarize,
)
from mlsearch.ml.algorithms.registry import EXECUTE, PREDICT, TRAIN, TRAIN_PREDICT, AlgorithmSpec, algorithms

__all__ = [
    "EXECUTE",
    "PREDICT",
    "TRAIN",
    "TRAIN_PREDICT",
    "AlgorithmSpec",
    "algorithms",
    "anomaly_localization",
    "kmeans",
    "linear_regression",
    "local_sample_calculator",
    "logistic_regression",
    "metrics_correlation",
    "rcf",
    "rcf_summarize",
]
