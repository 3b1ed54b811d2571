"""A top-level `function_score` as a rescoring pass: the inner query finds and scores the matches, then each
function's value (weight, field_value_factor read from the field's fast-field column) is combined with
OpenSearch's score_mode / max_boost / boost_mode / min_score formula."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import tantivy

from mlsearch.engine.query import dsl
from mlsearch.engine.query.compile import Context, as_filter, compile_query, count_matches
from mlsearch.errors import IllegalArgumentError, ParsingError

_MODIFIERS: dict[str, Callable[[float], float]] = {
    "none": lambda v: v,
    "log": lambda v: math.log10(v) if v > 0 else math.nan,
    "log1p": lambda v: math.log10(v + 1) if v > -1 else math.nan,
    "log2p": lambda v: math.log10(v + 2) if v > -2 else math.nan,
    "ln": lambda v: math.log(v) if v > 0 else math.nan,
    "ln1p": lambda v: math.log1p(v) if v > -1 else math.nan,
    "ln2p": lambda v: math.log(v + 2) if v > -2 else math.nan,
    "square": lambda v: v * v,
    "sqrt": lambda v: math.sqrt(v) if v >= 0 else math.nan,
    "reciprocal": lambda v: 1.0 / v if v else math.inf,
}
_SCORE_MODES = {"multiply", "sum", "avg", "first", "max", "min"}
_BOOST_MODES = {"multiply", "replace", "sum", "avg", "max", "min"}


class FunctionScoreRescorer:
    """Rescores the matches of a function_score's inner query for one index."""

    def __init__(self, query: dsl.FunctionScore, ctx: Context) -> None:
        if query.score_mode not in _SCORE_MODES:
            raise ParsingError(f"failed to parse [function_score] query: illegal score_mode [{query.score_mode}]")
        if query.boost_mode not in _BOOST_MODES:
            raise ParsingError(f"failed to parse [function_score] query: illegal boost_mode [{query.boost_mode}]")
        self.spec = query
        self.ctx = ctx
        self.inner = compile_query(query.query, ctx)
        self.filters = [None if f.filter is None else compile_query(f.filter, ctx) for f in query.functions]

    def rescore(
        self, searcher: tantivy.Searcher, addrs: list[Any], scores: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """New scores for the matches, and the mask of those that reach min_score."""
        n = len(addrs)
        applies = [
            np.ones(n, dtype=bool) if flt is None else self._matching(searcher, flt, addrs) for flt in self.filters
        ]
        values = [self._values(searcher, f, addrs) for f in self.spec.functions]
        factor = _combine(self.spec.score_mode, self.spec.functions, values, applies, n)
        if self.spec.max_boost is not None:
            factor = np.minimum(factor, self.spec.max_boost)
        final = _boost_mode(self.spec.boost_mode, scores, factor) * self.spec.boost
        keep = np.ones(n, dtype=bool) if self.spec.min_score is None else final >= self.spec.min_score
        return final.astype(np.float32).astype(np.float64), keep

    def _matching(self, searcher: tantivy.Searcher, flt: tantivy.Query, addrs: list[Any]) -> np.ndarray:
        query = tantivy.Query.boolean_query(
            [(tantivy.Occur.Must, as_filter(self.inner)), (tantivy.Occur.Must, as_filter(flt))]
        )
        count = count_matches(searcher, query)
        found = {(a.segment_ord, a.doc) for _, a in searcher.search(query, limit=max(count, 1), count=False).hits}
        return np.fromiter(((a.segment_ord, a.doc) in found for a in addrs), dtype=bool, count=len(addrs))

    def _values(self, searcher: tantivy.Searcher, function: dsl.Function, addrs: list[Any]) -> np.ndarray:
        weight = 1.0 if function.weight is None else function.weight
        if function.field_value_factor is None:
            return np.full(len(addrs), weight)
        return _field_value_factor(self.ctx, searcher, function.field_value_factor, addrs) * weight


def _field_value_factor(
    ctx: Context, searcher: tantivy.Searcher, spec: dict[str, Any], addrs: Sequence[Any]
) -> np.ndarray:
    name = str(spec["field"])
    factor = float(spec.get("factor", 1.0))
    modifier = _MODIFIERS.get(str(spec.get("modifier", "none")).lower())
    if modifier is None:
        raise ParsingError(f"Illegal modifier: {spec.get('modifier')}")
    missing = spec.get("missing")
    col = ctx.columns.get(name)
    if col is not None and col.kind not in ("integer", "float", "boolean"):
        raise IllegalArgumentError(
            f"field [{name}] of type [{col.field.type}] is not supported for "
            f"[field_value_factor]; expected a numeric field"
        )
    raw = searcher.fast_field_values(col.name, list(addrs)) if col is not None and addrs else [None] * len(addrs)
    out = np.empty(len(addrs), dtype=np.float64)
    for i, value in enumerate(raw):
        if value is None:
            if missing is None:
                raise IllegalArgumentError(f"Missing value for field [{name}]")
            value = missing
        result = modifier(factor * float(value))
        if math.isnan(result) or math.isinf(result) or result < 0:
            raise IllegalArgumentError(
                f"field value function must not produce negative scores, but got: [{result}] for field value: [{value}]"
            )
        out[i] = result
    return out


def _combine(
    mode: str, functions: Sequence[dsl.Function], values: list[np.ndarray], applies: list[np.ndarray], n: int
) -> np.ndarray:
    """score_mode over the functions that apply to each document; 1 where none applies."""
    if not values:
        return np.ones(n)
    vals = np.vstack(values)
    mask = np.vstack(applies)
    any_applies = mask.any(axis=0)
    if mode == "multiply":
        factor = np.where(mask, vals, 1.0).prod(axis=0)
    elif mode == "sum":
        factor = np.where(mask, vals, 0.0).sum(axis=0)
    elif mode == "avg":
        weights = np.array([1.0 if f.weight is None else f.weight for f in functions])[:, None]
        total = np.where(mask, weights, 0.0).sum(axis=0)
        factor = np.where(mask, vals, 0.0).sum(axis=0) / np.where(total == 0, 1.0, total)
    elif mode == "max":
        factor = np.where(mask, vals, -np.inf).max(axis=0)
    elif mode == "min":
        factor = np.where(mask, vals, np.inf).min(axis=0)
    else:  # first
        first = mask.argmax(axis=0)
        factor = vals[first, np.arange(n)]
    return np.where(any_applies, factor, 1.0)


def _boost_mode(mode: str, scores: np.ndarray, factor: np.ndarray) -> np.ndarray:
    if mode == "replace":
        return factor
    if mode == "sum":
        return scores + factor
    if mode == "avg":
        return (scores + factor) / 2
    if mode == "max":
        return np.maximum(scores, factor)
    if mode == "min":
        return np.minimum(scores, factor)
    return scores * factor
