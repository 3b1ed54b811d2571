"""Scoring scripts: the k-NN plugin's `knn_score` and a small, safe subset of Painless, both evaluated over
numpy arrays for every candidate document at once."""

from mlsearch.engine.scripting.painless import DocValues, ScriptError, compile_painless
from mlsearch.engine.scripting.vector_functions import knn_score

__all__ = ["DocValues", "ScriptError", "compile_painless", "knn_score"]
