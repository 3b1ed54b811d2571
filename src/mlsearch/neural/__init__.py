"""Neural search's query side: rewriting `neural` and `neural_sparse` queries with their models' outputs."""

from mlsearch.neural.rewrite import mentions_models, rewrite

__all__ = ["mentions_models", "rewrite"]
