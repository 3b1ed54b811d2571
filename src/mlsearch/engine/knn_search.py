"""Execute a search whose query is a top-level `knn`, straight from the vector segments to the hits.

The general path compiles the k-NN results into a tantivy query (one constant-score `_key` term per found
document), runs it and reads the keys back; for a top-level knn that round trip only reproduces what the vector
search already knows: which documents matched and their scores. Here the found keys and their scores become the
hits directly. Scores go through float32 as tantivy's would, and hits are ordered, paged, filtered by `min_score`
and rendered by the same code as the general path, so responses are identical (a test compares both)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from mlsearch.engine.index import Index
from mlsearch.engine.query.knn import Knn, knn_matches
from mlsearch.engine.search import Hit, SearchRequest, _check_window, _hits_body, _order, context_for


def is_plain_knn(req: SearchRequest) -> bool:
    """Whether the request is a top-level knn query that needs nothing tantivy alone provides: no sort, no
    search_after, no aggregations, no post_filter, no explanation, no highlighting."""
    return (
        type(req.query) is Knn
        and not req.sort
        and req.search_after is None
        and not req.aggs
        and req.post_filter is None
        and not req.explain
        and req.raw.get("highlight") is None  # highlight_query may mark what the vectors found: general path
    )


def execute_knn(indices: Sequence[Index], req: SearchRequest) -> dict[str, Any]:
    """The search response of a plain knn request (see `is_plain_knn`), as `search.execute` shapes it."""
    started = time.perf_counter()
    window = req.from_ + req.size
    _check_window(indices, window)
    query: Knn = req.query  # type: ignore[assignment]  # is_plain_knn checked it
    # Read before searching: when the store has had no write since, every hit is live and unchanged.
    settled = [index.vectors.checkpoint for index in indices]
    total = 0
    hits: list[Hit] = []
    for index in indices:
        count, found = _index_hits(index, query, req.min_score, window)
        total += count
        hits.extend(found)
    if len(indices) > 1:
        hits = _order(hits, req)
    hits = hits[req.from_ : window]
    ids = None
    if _ids_only(req) and all(i.store.max_seq_no <= c for i, c in zip(indices, settled, strict=True)):
        ids = _ids(hits)
    return {
        "took": int((time.perf_counter() - started) * 1000),
        "timed_out": False,
        "_shards": {"total": len(indices), "successful": len(indices), "skipped": 0, "failed": 0},
        "hits": _hits_body(hits, total, req, {}, ids=ids),
    }


def _ids_only(req: SearchRequest) -> bool:
    """Whether hits show only `_index`, `_id` and `_score` (no `_source`, versions or sequence numbers)."""
    return not (req.source.enabled or req.version or req.seq_no_primary_term or req.fetch.reads_source)


def _ids(hits: list[Hit]) -> dict[str, dict[int, str]]:
    """The hits' `_id`s from the store's id cache (no document read), by index name and key."""
    by_index: dict[int, tuple[Index, list[int]]] = {}  # by id(): Index.name is a property, read once per index
    for hit in hits:
        entry = by_index.get(id(hit.index))
        if entry is None:
            entry = by_index[id(hit.index)] = (hit.index, [])
        entry[1].append(hit.key)
    return {index.name: index.store.ids_of(keys) for index, keys in by_index.values()}


def _index_hits(index: Index, query: Knn, min_score: float | None, window: int) -> tuple[int, list[Hit]]:
    """How many documents of `index` match, and the best `window` of them as `_order` ranks them."""
    found = knn_matches(query, context_for(index))
    if found is None:
        return 0, []
    keys, scores = found
    # tantivy holds scores as float32; the general path's hits carry those values.
    scores32 = np.asarray(scores, dtype=np.float32)
    if min_score is not None:
        keep = scores32 >= np.float32(min_score)
        keys, scores32 = keys[keep], scores32[keep]
    # By score, ties by key: the order `_order` gives within one index. Hit objects only for the window.
    top = np.lexsort((keys, -scores32))[:window]
    return len(keys), [Hit(index, k, s) for k, s in zip(keys[top].tolist(), scores32[top].tolist(), strict=True)]
