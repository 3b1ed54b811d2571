"""The `nested` query around a `knn` (or `neural`, rewritten to knn) query: k-NN over the elements of a nested path,
the way OpenSearch searches chunked documents, and the `inner_hits` telling which elements matched.

The vector projection holds one row per element, keyed by the parent document, and answers with k distinct parents
at their nearest element. Each parent then scores by `score_mode` over its matching elements: the nearest one, or
every element with `expand_nested_docs: true`, or those within reach of a radial search. Lexical queries on nested
elements need nested documents in the lexical index, which it does not have yet: they are refused, never faked."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import orjson
import tantivy

from mlsearch.engine.query import dsl
from mlsearch.engine.query.compile import Context, compiles, nothing
from mlsearch.engine.query.knn import Knn, _radius, field_vectors, knn_matches, scored_keys, search_knn
from mlsearch.engine.source_filter import SourceFilter
from mlsearch.engine.vectors import FieldVectors
from mlsearch.engine.vectors.projection import objects_at, value_at
from mlsearch.errors import ParsingError, QueryShardError

_INNER_HITS_KEYS = {
    "name",
    "from",
    "size",
    "_source",
    "fields",
    "version",
    "seq_no_primary_term",
    "explain",
    "track_scores",
    "ignore_unmapped",
}
DEFAULT_INNER_HITS_SIZE = 3


@compiles(dsl.Nested)
def compile_nested(q: dsl.Nested, ctx: Context) -> tantivy.Query:
    if q.inner_hits is not None:
        InnerHits.parse(q.inner_hits, q.path)  # a malformed inner_hits fails before anything runs
    found = nested_matches(q, ctx)
    return nothing() if found is None else scored_keys(ctx, *found)


def nested_matches(q: dsl.Nested, ctx: Context, *, count: bool = True) -> tuple[np.ndarray, np.ndarray] | None:
    """The parents `q` matches: keys and scores (both boosts applied), best first; None when none."""
    knn = _inner_knn(q, ctx)
    if knn is None:
        return None
    found = knn_matches(knn, ctx, in_nested=True) if count else search_knn(knn, ctx, in_nested=True)
    if found is None:
        return None
    keys, scores = found
    if _scores_every_element(q, knn):
        vectors = field_vectors(knn, ctx)
        assert vectors is not None  # for mypy: knn_matches found documents in it
        scores = np.array([_combine(q.score_mode, matched_elements(knn, vectors, k)[1]) for k in keys.tolist()])
    elif q.score_mode == "none":
        scores = np.zeros(len(keys))
    if not len(keys):
        return None
    order = np.lexsort((keys, -scores))
    return keys[order], scores[order] * q.boost


def _scores_every_element(q: dsl.Nested, knn: Knn) -> bool:
    """Whether a parent's score needs all its matching elements (more than the nearest one)."""
    if q.score_mode in ("max", "none"):
        return False
    return knn.expand_nested_docs or knn.k is None


def _combine(mode: str, scores: np.ndarray) -> float:
    if len(scores) == 0 or mode == "none":
        return 0.0
    return float({"avg": np.mean, "max": np.max, "min": np.min, "sum": np.sum}[mode](scores))


def _inner_knn(q: dsl.Nested, ctx: Context) -> Knn | None:
    """The knn query inside `q`, after checking the path; None when nothing can match."""
    kind = ctx.mappings.object_kind(q.path)
    if kind is None:
        if q.ignore_unmapped:
            return None
        raise QueryShardError(f"[nested] failed to find nested object under path [{q.path}]")
    if kind != "nested":
        raise QueryShardError(f"[nested] nested object under path [{q.path}] is not of nested type")
    if not isinstance(q.query, Knn):
        raise QueryShardError(
            f"[nested] query on path [{q.path}]: only a [knn] or [neural] query is supported inside a nested "
            f"query for now; nested lexical queries are not supported yet"
        )
    # A field outside the path: the nested elements don't have it, so nothing matches (as in OpenSearch).
    return q.query if q.query.field.startswith(q.path + ".") else None


def matched_elements(knn: Knn, vectors: FieldVectors, key: int) -> tuple[np.ndarray, np.ndarray]:
    """The elements of parent `key` that match `knn` and their scores (knn boost applied), best first: the nearest
    one, every element (`expand_nested_docs`), or those within a radial search's reach."""
    offsets, data = vectors.elements_of(key)
    if len(offsets) == 0:
        return offsets, np.empty(0)
    spec = vectors.spec
    dists = spec.space.distances(data, vectors.query_row(knn.vector)).astype(np.float32)
    scores = spec.space.scores(dists) * knn.boost
    keep = np.ones(len(offsets), dtype=bool)
    if knn.k is None and not knn.expand_nested_docs:
        keep = dists <= _radius(knn, vectors)
        if knn.min_score is not None:
            keep &= spec.space.scores(dists) >= knn.min_score
    order = np.lexsort((offsets, -scores))
    order = order[keep[order]]
    if knn.k is not None and not knn.expand_nested_docs:
        order = order[:1]
    return offsets[order], scores[order]


# ---- inner_hits ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InnerHits:
    """What `inner_hits` asks for: a name, a page of elements, and their `_source` / `fields`."""

    name: str
    from_: int = 0
    size: int = DEFAULT_INNER_HITS_SIZE
    source: SourceFilter = field(default_factory=SourceFilter)
    fields: tuple[str, ...] = ()

    @classmethod
    def parse(cls, spec: dict[str, Any], path: str) -> InnerHits:
        for key in spec:
            if key not in _INNER_HITS_KEYS:
                raise ParsingError(f"[inner_hits] unknown field [{key}]")
        raw_fields = spec.get("fields") or []
        if not isinstance(raw_fields, list):
            raise ParsingError("[inner_hits] failed to parse field [fields]")
        names = [f["field"] if isinstance(f, dict) and "field" in f else f for f in raw_fields]
        return cls(
            name=str(spec.get("name", path)),
            from_=_count(spec, "from", 0),
            size=_count(spec, "size", DEFAULT_INNER_HITS_SIZE),
            source=SourceFilter.parse(spec.get("_source")),
            fields=tuple(str(n) for n in names),
        )


def _count(spec: dict[str, Any], key: str, default: int) -> int:
    value = spec.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ParsingError(f"[inner_hits] failed to parse field [{key}]")
    return value


Renderer = Callable[[Any, int, str], dict[str, Any]]


def inner_hits_renderer(query: dsl.Query, context: Callable[[Any], Context]) -> Renderer | None:
    """A function giving a hit's `inner_hits` object (from its index, key and `_id`), or None when the query asks
    for none. `context` builds an index's compile context."""
    sites = [(n, InnerHits.parse(n.inner_hits, n.path)) for n in _nested_queries(query) if n.inner_hits is not None]
    if not sites:
        return None
    found: dict[tuple[int, str], set[int]] = {}  # (site, index) -> the parents the site's query matched

    def render(index: Any, key: int, doc_id: str) -> dict[str, Any]:
        source: dict[str, Any] | None = None
        out: dict[str, Any] = {}
        for i, (nested, spec) in enumerate(sites):
            ctx = context(index)
            if (i, index.name) not in found:
                matches = nested_matches(nested, ctx, count=False)
                found[(i, index.name)] = set() if matches is None else set(matches[0].tolist())
            elements: tuple[np.ndarray, np.ndarray] = (np.empty(0, dtype=np.int32), np.empty(0))
            if key in found[(i, index.name)]:
                knn = nested.query
                assert isinstance(knn, Knn)  # nested_matches checked it
                vectors = field_vectors(knn, ctx)
                if vectors is not None:
                    elements = matched_elements(knn, vectors, key)
            if source is None and len(elements[0]) and (spec.source.enabled or spec.fields):
                doc = index.store.by_keys([key]).get(key)
                source = {} if doc is None or doc.source is None else orjson.loads(doc.source)
            out[spec.name] = _inner_hits_body(index.name, doc_id, nested, spec, elements, source or {})
        return out

    return render


def _inner_hits_body(
    index: str,
    doc_id: str,
    nested: dsl.Nested,
    spec: InnerHits,
    elements: tuple[np.ndarray, np.ndarray],
    source: dict[str, Any],
) -> dict[str, Any]:
    offsets, scores = elements
    items = _elements_at(source, nested.path) if len(offsets) else []
    hits = []
    for offset, score in list(zip(offsets.tolist(), scores.tolist(), strict=True))[spec.from_ : spec.from_ + spec.size]:
        hit: dict[str, Any] = {
            "_index": index,
            "_id": doc_id,
            "_nested": {"field": nested.path, "offset": offset},
            "_score": np.float32(score),
        }
        element = items[offset] if offset < len(items) else {}
        if spec.source.enabled:
            hit["_source"] = _element_source(element, nested.path, spec.source)
        values = _field_values(element, nested.path, spec.fields)
        if values:
            hit["fields"] = values
        hits.append(hit)
    return {
        "hits": {
            "total": {"value": len(offsets), "relation": "eq"},
            "max_score": np.float32(scores.max()) if len(scores) else None,
            "hits": hits,
        }
    }


def _elements_at(source: dict[str, Any], path: str) -> list[Any]:
    """The elements of the nested path in `_source` (the rows' offsets index this list)."""
    return objects_at(source, path)


def _element_source(element: Any, path: str, source: SourceFilter) -> Any:
    """An element's `_source`, filtered by full paths (`path.field`) as OpenSearch filters nested hits."""
    if source.is_identity or not isinstance(element, dict):
        return element
    wrapped = _wrap(path, element)
    filtered = source.apply(wrapped) or {}
    for part in path.split("."):
        filtered = filtered.get(part, {}) if isinstance(filtered, dict) else {}
    return filtered


def _wrap(path: str, element: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = element
    for part in reversed(path.split(".")):
        out = {part: out}
    return out


def _field_values(element: Any, path: str, names: tuple[str, ...]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    if not isinstance(element, dict):
        return out
    for name in names:
        if not name.startswith(path + "."):
            continue
        value = value_at(element, name[len(path) + 1 :])
        if value is not None:
            out[name] = value if isinstance(value, list) else [value]
    return out


def _nested_queries(query: dsl.Query) -> Iterator[dsl.Nested]:
    """Every nested query in a query tree (bool clauses, constant_score, dis_max, function_score, ...)."""
    if isinstance(query, dsl.Nested):
        yield query
        return
    for name in _field_names(type(query)):
        value = getattr(query, name)
        if isinstance(value, dsl.Query):
            yield from _nested_queries(value)
        elif isinstance(value, tuple):
            for item in value:
                if isinstance(item, dsl.Query):
                    yield from _nested_queries(item)


@functools.cache
def _field_names(cls: type) -> tuple[str, ...]:
    """A query class's dataclass field names: computed once per class, since every search walks its query."""
    return tuple(f.name for f in fields(cls)) if hasattr(cls, "__dataclass_fields__") else ()
