"""The `rescore` search option: Lucene's QueryRescorer on each index's top `window_size` hits.

A document of the window that the rescore query matches gets `query_weight·score ⊕ rescore_query_weight·rescore`
(⊕ per `score_mode`); one it does not match gets `query_weight·score`. The window is re-sorted by the new scores and
the hits past it keep their order below it, as OpenSearch does per shard; several rescorers apply in order."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import tantivy

from mlsearch.engine.index import Index
from mlsearch.engine.lexical import KEY_FIELD
from mlsearch.engine.query import dsl
from mlsearch.engine.query.compile import as_filter, compile_query
from mlsearch.engine.search import Hit, SearchRequest, context_for
from mlsearch.errors import IllegalArgumentError, ParsingError, SearchPhaseExecutionError

DEFAULT_WINDOW = 10
_QUERY_KEYS = {"rescore_query", "query_weight", "rescore_query_weight", "score_mode"}
_f32 = np.float32
_MODES: dict[str, Callable[[np.float32, np.float32], np.float32]] = {
    "total": lambda p, s: _f32(p + s),
    "multiply": lambda p, s: _f32(p * s),
    "avg": lambda p, s: _f32((p + s) / _f32(2)),
    "max": lambda p, s: max(p, s),
    "min": lambda p, s: min(p, s),
}


@dataclass(frozen=True, slots=True)
class QueryRescore:
    window_size: int
    query: dsl.Query
    query_weight: float = 1.0
    rescore_query_weight: float = 1.0
    score_mode: str = "total"


def parse_rescore(spec: Any) -> tuple[QueryRescore, ...]:
    """One rescorer or a list of them, applied in order."""
    if spec is None:
        return ()
    items = spec if isinstance(spec, list) else [spec]
    return tuple(_parse_one(item) for item in items)


def _parse_one(item: Any) -> QueryRescore:
    if not isinstance(item, dict):
        raise ParsingError("rescore must be an object or an array of objects")
    for key in item:
        if key not in ("window_size", "query"):
            raise ParsingError(f"rescore doesn't support rescorer with name [{key}]")
    window = item.get("window_size", DEFAULT_WINDOW)
    if isinstance(window, bool) or not isinstance(window, int):
        raise ParsingError("[window_size] must be an integer")
    if window < 0:
        raise IllegalArgumentError("rescore window_size must be >= 0")
    spec = item.get("query")
    if not isinstance(spec, dict):
        raise ParsingError("missing rescore type")
    for key in spec:
        if key not in _QUERY_KEYS:
            raise ParsingError(f"[query] unknown field [{key}]")
    if spec.get("rescore_query") is None:
        raise ParsingError("[query] rescore_query cannot be null")
    mode = str(spec.get("score_mode", "total")).lower()
    if mode not in _MODES:
        raise IllegalArgumentError(f"illegal score_mode [{mode}]")
    return QueryRescore(
        window,
        dsl.parse_query(spec["rescore_query"]),
        _weight(spec, "query_weight"),
        _weight(spec, "rescore_query_weight"),
        mode,
    )


def _weight(spec: dict[str, Any], name: str) -> float:
    value = spec.get(name, 1.0)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ParsingError(f"[query] failed to parse field [{name}]")
    return float(value)


def check(indices: Sequence[Index], req: SearchRequest, rescorers: Sequence[QueryRescore]) -> None:
    """OpenSearch's checks: no sort but `_score` (descending), and windows within index.max_rescore_window."""
    if any(key.field != "_score" or not key.descending for key in req.sort):
        raise _failure("Cannot use [sort] option in conjunction with [rescore].")
    for index in indices:
        limit = int(index.setting("index.max_rescore_window", index.setting("index.max_result_window", 10000)))
        for rescorer in rescorers:
            if rescorer.window_size > limit:
                raise _failure(
                    f"Rescore window [{rescorer.window_size}] is too large. It must be less than [{limit}]. This "
                    f"prevents allocating massive heaps for storing the results to be rescored. This limit can be "
                    f"set by changing the [index.max_rescore_window] index level setting."
                )


def _failure(reason: str) -> SearchPhaseExecutionError:
    return SearchPhaseExecutionError(
        "all shards failed", caused_by={"type": "illegal_argument_exception", "reason": reason}
    )


def rescore(index: Index, searcher: tantivy.Searcher, hits: list[Hit], rescorers: Sequence[QueryRescore]) -> list[Hit]:
    """One index's hits (best first) after every rescorer."""
    for rescorer in rescorers:
        window, rest = hits[: rescorer.window_size], hits[rescorer.window_size :]
        second = _second_pass(index, searcher, window, rescorer.query)
        for hit in window:
            hit.score = float(_combine(rescorer, hit.score, second.get(hit.key)))
        # ties in index order, as Lucene's QueryRescorer breaks them by doc id (keys grow with insertion)
        hits = sorted(window, key=lambda h: (-h.score, h.key)) + rest
    return hits


def _second_pass(index: Index, searcher: tantivy.Searcher, window: list[Hit], query: dsl.Query) -> dict[int, float]:
    """The rescore query's score of each window hit it matches, by key."""
    if not window:
        return {}
    from mlsearch.engine.collapse import exactly  # the query matching just these keys

    compiled = compile_query(query, context_for(index))
    only = as_filter(exactly(index, [h.key for h in window]))
    restricted = tantivy.Query.boolean_query([(tantivy.Occur.Must, compiled), (tantivy.Occur.Must, only)])
    result = searcher.search(restricted, limit=len(window), count=False)
    addrs = [a for _, a in result.hits]
    keys = searcher.fast_field_values(KEY_FIELD, addrs) if addrs else []
    return {k: s for (s, _), k in zip(result.hits, keys, strict=True)}


def _combine(rescorer: QueryRescore, first: float, second: float | None) -> np.float32:
    primary = _f32(first) * _f32(rescorer.query_weight)
    if second is None:
        return _f32(primary)
    return _MODES[rescorer.score_mode](_f32(primary), _f32(_f32(second) * _f32(rescorer.rescore_query_weight)))
