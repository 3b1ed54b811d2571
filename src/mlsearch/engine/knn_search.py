"""Execute a search whose query is a top-level `knn`, straight from the vector segments to the hits.

The general path compiles the k-NN results into a tantivy query (one constant-score `_key` term per found
document), runs it and reads the keys back; for a top-level knn that round trip only reproduces what the vector
search already knows: which documents matched and their scores. Here the found keys and their scores become the
hits directly. Scores go through float32 as tantivy's would, and hits are ordered, paged, filtered by `min_score`
and rendered as the general path renders them, so responses are identical (a test compares both).

The usual request (one index, a handful of hits showing `_index`, `_id` and `_score`) skips even that: the ids come
from beside the vectors (see `vectors.ids`), the hits stay plain lists, and the response is built in one loop."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from mlsearch.engine.index import Index
from mlsearch.engine.query.knn import Knn, KnnFound, find_knn, knn_matches
from mlsearch.engine.search import Hit, SearchRequest, _check_window, _hits_body, _order, context_for, total_body

# Up to this many matches are ordered as Python lists; numpy's fixed cost per call only pays past it.
_SMALL = 64
_Found = tuple[np.ndarray, np.ndarray] | None  # what `knn_matches` found in one index: keys and scores


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
    if len(indices) == 1 and _ids_only(req) and query.filter is None:
        ctx = context_for(indices[0])
        if ctx.vectors is not None:
            ctx.vectors.stats.bump("knn_query_requests")  # as `knn_matches` counts it
        found = find_knn(query, ctx)
        lean = _lean_hits(indices[0], query, found, req, window, settled[0])
        if lean is not None:
            return _response(started, 1, lean)
        matches: list[_Found] = [None if found is None else (found.keys, found.scores)]
    else:
        matches = [knn_matches(query, context_for(index)) for index in indices]
    total = 0
    hits: list[Hit] = []
    for index, found in zip(indices, matches, strict=True):
        count, ranked = _index_hits(index, found, req.min_score, window)
        total += count
        hits.extend(ranked)
    if len(indices) > 1:
        hits = _order(hits, req)
    hits = hits[req.from_ : window]
    ids = None
    if _ids_only(req) and all(i.store.max_seq_no <= c for i, c in zip(indices, settled, strict=True)):
        ids = _ids(hits, query.field)
    return _response(started, len(indices), _hits_body(hits, total, req, {}, ids=ids))


def _response(started: float, shards: int, hits: dict[str, Any]) -> dict[str, Any]:
    return {
        "took": int((time.perf_counter() - started) * 1000),
        "timed_out": False,
        "_shards": {"total": shards, "successful": shards, "skipped": 0, "failed": 0},
        "hits": hits,
    }


def _ids_only(req: SearchRequest) -> bool:
    """Whether hits show only `_index`, `_id` and `_score` (no `_source`, versions or sequence numbers)."""
    return not (req.source.enabled or req.version or req.seq_no_primary_term or req.fetch.reads_source)


def _lean_hits(
    index: Index, query: Knn, found: KnnFound | None, req: SearchRequest, window: int, settled: int
) -> dict[str, Any] | None:
    """The `hits` object of a one-index, ids-only request, as `_hits_body` renders it; None when a hit's `_id` is
    not at hand (or writes came after the searched snapshot): the general rendering reads the store then."""
    if found is None:
        return total_body(0, req) | {"max_score": None, "hits": []}
    keys = found.keys
    if len(keys) > _SMALL:
        return None
    # tantivy holds scores as float32; the general path's hits carry those values, ordered by score, ties by key.
    scores32 = found.scores.astype(np.float32)
    ranked = _ranked(scores32, keys, req.min_score)
    body = total_body(len(ranked), req)
    page = ranked[req.from_ : window]
    if index.store.max_seq_no > settled:
        return None
    if not page:
        return body | {"max_score": None, "hits": []}
    name = index.name
    values = list(scores32)  # numpy float32 scalars, as `_hits_body` renders `_score`
    if req.fetch.stored_none:
        hits = [{"_index": name, "_score": values[i]} for i in page]
    else:
        ids = _page_ids(index, query, found, page)
        if ids is None:
            return None
        hits = [{"_index": name, "_id": doc_id, "_score": values[i]} for i, doc_id in zip(page, ids, strict=True)]
    body["max_score"] = hits[0]["_score"]
    body["hits"] = hits
    return body


def _ranked(scores32: np.ndarray, keys: np.ndarray, min_score: float | None) -> list[int]:
    """Positions of the matches at or above `min_score`, by score, ties by key (`_order` within one index)."""
    negated = (-scores32).tolist()
    if negated == sorted(set(negated)):  # no ties and in order, as the field search mostly answers
        ranked = list(range(len(negated)))
    else:
        ranked = [i for _, _, i in sorted(zip(negated, keys.tolist(), range(len(negated)), strict=True))]
    if min_score is not None:
        floor = -float(np.float32(min_score))
        ranked = [i for i in ranked if negated[i] <= floor]
    return ranked


def _page_ids(index: Index, query: Knn, found: KnnFound, page: list[int]) -> list[str] | None:
    """The `_id`s of the found documents at positions `page`: by row from the segment's id table when the search
    says where it found them, else by key from the field's segments; None when some are not known there."""
    if found.where is not None and found.where[0].ids is not None:
        segment, rows = found.where
        return segment.ids.at(rows[page])
    vectors = index.vectors.field(query.field)
    by_key = {} if vectors is None else vectors.ids_of(found.keys)  # at most _SMALL: all of them, in one go
    if len(by_key) < len(found.keys):
        return None
    keys = found.keys.tolist()
    return [by_key[keys[i]] for i in page]


def _ids(hits: list[Hit], field: str) -> dict[str, dict[int, str]]:
    """The hits' `_id`s, by index name and key: from beside the vectors, else from the store's id cache."""
    by_index: dict[int, tuple[Index, list[int]]] = {}  # by id(): Index.name is a property, read once per index
    for hit in hits:
        entry = by_index.get(id(hit.index))
        if entry is None:
            entry = by_index[id(hit.index)] = (hit.index, [])
        entry[1].append(hit.key)
    return {index.name: _index_ids(index, keys, field) for index, keys in by_index.values()}


def _index_ids(index: Index, keys: list[int], field: str) -> dict[int, str]:
    vectors = index.vectors.field(field)
    found = {} if vectors is None else vectors.ids_of(np.asarray(keys, dtype=np.int64))
    missing = [k for k in keys if k not in found]
    if missing:
        found.update(index.store.ids_of(missing))
    return found


def _index_hits(index: Index, found: _Found, min_score: float | None, window: int) -> tuple[int, list[Hit]]:
    """How many documents of `index` match, and the best `window` of them as `_order` ranks them."""
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
