"""The `knn` query of OpenSearch's k-NN plugin: parsed here, searched on the index's vector segments, and
compiled into a tantivy query that gives each found document its exact k-NN score.

The vectors are searched first (with the filter turned into document keys: faiss pre-filtering, exact search when
the filtered set is small); the top documents then become `Should` clauses of constant-score `_key` terms. So
`knn` composes with `bool` (Lucene-like score sums), paging, `_source` and aggregations like any other query.
A top-level knn skips that step: `engine.knn_search` turns `knn_matches` straight into hits."""

from __future__ import annotations

import array
import math
import struct
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import tantivy

from mlsearch.engine.lexical import KEY_FIELD
from mlsearch.engine.query import dsl
from mlsearch.engine.query.compile import Context, compile_query, compiles, nothing
from mlsearch.engine.vectors import FieldVectors, SearchOptions, Segment
from mlsearch.errors import IllegalArgumentError, ParsingError

MAX_K = 10000
_NUMBER_TYPES = frozenset((int, float))
_ONE, _ZERO = struct.pack("f", 1.0), struct.pack("f", 0.0)  # how a boolean packs (native order, as `_packer`)
# Radial searches return at most this many documents per index, like the k-NN plugin's default.
MAX_RADIAL_RESULTS = 10000
_KEYS = {
    "vector",
    "k",
    "filter",
    "min_score",
    "max_distance",
    "method_parameters",
    "rescore",
    "expand_nested_docs",
    "boost",
    "_name",
    "ignore_unmapped",
}


@dataclass(frozen=True, slots=True, eq=False)
class Knn(dsl.Query):
    field: str
    vector: np.ndarray
    k: int | None = None
    max_distance: float | None = None
    min_score: float | None = None
    filter: dsl.Query | None = None
    ef_search: int | None = None
    nprobes: int | None = None
    ignore_unmapped: bool = False
    boost: float = 1.0
    rescore: float | bool | None = None  # oversample_factor, true (the field's default), false, or not given
    expand_nested_docs: bool = False  # in a nested query: score every element of the parents found, not the best


# ---- parsing -----------------------------------------------------------------------------------------------


@dsl.query_parser("knn")
def parse_knn(body: Any) -> dsl.Query:
    if not isinstance(body, dict):
        raise ParsingError("[knn] query malformed, no start_object after query name")
    if len(body) != 1:
        names = list(body)
        if not names:
            raise ParsingError("[knn] query malformed, no field specified")
        raise ParsingError(f"[knn] query doesn't support multiple fields, found [{names[0]}] and [{names[1]}]")
    name, spec = next(iter(body.items()))
    if not isinstance(spec, dict):
        raise ParsingError(f"[knn] query malformed, expected an object for field [{name}]")
    for key in spec:
        if key not in _KEYS:
            raise ParsingError(f"[knn] unknown token [{key}] after [{name}]")
    k, max_distance, min_score = spec.get("k"), spec.get("max_distance"), spec.get("min_score")
    if (k is not None) + (max_distance is not None) + (min_score is not None) != 1:
        raise IllegalArgumentError("[knn] requires exactly one of k, distance or score to be set")
    ef_search, nprobes = _method_parameters(spec.get("method_parameters"))
    rescore = _rescore(spec.get("rescore"), radial=k is None)
    return Knn(
        field=name,
        vector=_vector(spec.get("vector")),
        k=None if k is None else _k(k),
        max_distance=None if max_distance is None else _number("max_distance", max_distance),
        min_score=None if min_score is None else _number("min_score", min_score),
        filter=None if spec.get("filter") is None else dsl.parse_query(spec["filter"]),
        ef_search=ef_search,
        nprobes=nprobes,
        ignore_unmapped=spec.get("ignore_unmapped") in (True, "true"),
        boost=_number("boost", spec["boost"]) if "boost" in spec else 1.0,
        rescore=rescore,
        expand_nested_docs=spec.get("expand_nested_docs") in (True, "true"),
    )


def _vector(value: Any) -> np.ndarray:
    if not isinstance(value, list) or not value:
        raise IllegalArgumentError("[knn] field 'vector' requires to be non-null and non-empty")
    # A struct of n floats packs the list in C (~3 us for 384 values, against ~10 for array.array and ~8 for
    # np.array); it takes numbers and booleans and refuses the rest, so any refusal goes to the careful path, whose
    # error is OpenSearch's.
    try:
        packed = _packer(len(value)).pack(*value)
    except (struct.error, TypeError, OverflowError):
        packed = _careful_pack(value)
    vector = np.frombuffer(packed, dtype=np.float32)
    # Booleans pack as 1.0 and 0.0: only a vector whose bytes show one of them has its types checked (a byte search
    # runs at memory speed; a match across two values only costs the check).
    if ((_ONE in packed or _ZERO in packed) and not _NUMBER_TYPES.issuperset(map(type, value))) or not np.isfinite(
        vector
    ).all():
        raise IllegalArgumentError("[knn] field 'vector' requires to be an array of finite numbers")
    return vector


@lru_cache(maxsize=64)
def _packer(n: int) -> struct.Struct:
    return struct.Struct(f"{n}f")


def _careful_pack(value: list[Any]) -> bytes:
    """array.array refuses strings, nulls, arrays and objects with a TypeError (an out-of-range integer: Overflow)."""
    try:
        return array.array("f", value).tobytes()
    except (TypeError, OverflowError):
        raise IllegalArgumentError("[knn] field 'vector' requires to be an array of finite numbers") from None


def _k(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ParsingError(f"[knn] failed to parse field [k]: [{value}] is not an integer")
    if value <= 0:
        raise IllegalArgumentError("[knn] requires k > 0")
    if value > MAX_K:
        raise IllegalArgumentError(f"[knn] requires k <= {MAX_K}")
    return value


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ParsingError(f"[knn] failed to parse field [{name}]")
    try:
        return float(value)
    except ValueError:
        raise ParsingError(f"[knn] failed to parse field [{name}]") from None


def _method_parameters(value: Any) -> tuple[int | None, int | None]:
    if value is None:
        return None, None
    if not isinstance(value, dict):
        raise ParsingError("[knn] method_parameters must be an object")
    found: dict[str, int] = {}
    for key, raw in value.items():
        if key not in ("ef_search", "nprobes"):
            raise IllegalArgumentError(f"[knn] unknown method parameter found [{key}]")
        if isinstance(raw, bool) or not isinstance(raw, int) or raw < 1:
            raise IllegalArgumentError(f"[knn] method parameter [{key}] must be a positive integer, got [{raw}]")
        found[key] = raw
    return found.get("ef_search"), found.get("nprobes")


def _rescore(value: Any, *, radial: bool) -> float | bool | None:
    if value is None or value is False:
        return value
    if radial:
        raise IllegalArgumentError("[knn] cannot set rescore with radial search (max_distance or min_score)")
    if isinstance(value, dict):
        factor = value.get("oversample_factor", 1.0)
        if isinstance(factor, bool) or not isinstance(factor, int | float) or not 1.0 <= factor <= 100.0:
            raise IllegalArgumentError(f"Oversample factor [{factor}] must be between 1.0 and 100.0")
        return float(factor)
    if value is not True:
        raise ParsingError("[knn] rescore must be an object or a boolean")
    return True


# ---- compiling ---------------------------------------------------------------------------------------------


@compiles(Knn)
def compile_knn(q: Knn, ctx: Context) -> tantivy.Query:
    found = knn_matches(q, ctx)
    return nothing() if found is None else scored_keys(ctx, *found)


def knn_matches(q: Knn, ctx: Context, *, in_nested: bool = False) -> tuple[np.ndarray, np.ndarray] | None:
    """The documents `q` finds: keys and scores (boost applied), best first; None when it matches nothing.

    For a field inside objects the documents are the parents, each scored by its nearest element. A field under a
    `nested` path matches only inside a `nested` query (`in_nested`): OpenSearch hides nested documents from
    top-level queries."""
    if ctx.vectors is not None:
        ctx.vectors.stats.bump("knn_query_requests")
    return search_knn(q, ctx, in_nested=in_nested)


def search_knn(q: Knn, ctx: Context, *, in_nested: bool = False) -> tuple[np.ndarray, np.ndarray] | None:
    """`knn_matches` without counting a query in the k-NN stats (a second look at the same query)."""
    found = find_knn(q, ctx, in_nested=in_nested)
    return None if found is None else (found.keys, found.scores)


@dataclass(frozen=True, slots=True)
class KnnFound:
    """What a knn query found in one index: keys and scores, best first, and, when they all come from one segment
    with one row per document, that segment and their rows (see `FieldVectors.search_found`)."""

    keys: np.ndarray
    scores: np.ndarray
    where: tuple[Segment, np.ndarray] | None = None


def find_knn(q: Knn, ctx: Context, *, in_nested: bool = False) -> KnnFound | None:
    """`search_knn`, with where the documents were found (the k-NN stats are the caller's)."""
    vectors = field_vectors(q, ctx)
    if vectors is None or (vectors.spec.nested and not in_nested):
        return None
    spec = vectors.spec
    _check_query(q, vectors)
    allowed = None
    if q.filter is not None:
        allowed = filter_keys(q.filter, ctx)
        if len(allowed) == 0:
            return None
    query = vectors.query_row(q.vector)
    where = None
    if q.k is not None:
        keys, dists, where = vectors.search_found(query, q.k, allowed, _options(q, vectors, ctx))
        scores = spec.space.scores(dists)
    else:
        keys, dists = vectors.within(query, _radius(q, vectors), allowed, MAX_RADIAL_RESULTS)
        scores = spec.space.scores(dists)
        if q.min_score is not None:
            keep = scores >= q.min_score
            keys, scores = keys[keep], scores[keep]
    return KnnFound(keys, scores * q.boost if q.boost != 1.0 else scores, where)


def field_vectors(q: Knn, ctx: Context) -> FieldVectors | None:
    """The vectors of the field `q` searches (None: unmapped and ignored, or no vectors yet)."""
    leaf = ctx.mappings.field(q.field)
    if leaf is None and q.ignore_unmapped:
        return None
    if leaf is None or leaf.type != "knn_vector":
        raise IllegalArgumentError(f"Field '{q.field}' is not knn_vector type.")
    return None if ctx.vectors is None else ctx.vectors.field(q.field)


def _check_query(q: Knn, vectors: FieldVectors) -> None:
    spec = vectors.spec
    given = len(q.vector) * (8 if spec.data_type == "binary" else 1)
    if given != spec.dimension:
        raise IllegalArgumentError(
            f"Query vector has invalid dimension: {len(q.vector)}. Dimension should be: {spec.width}"
        )
    if spec.data_type in ("byte", "binary") and not (
        np.all(q.vector == np.round(q.vector)) and np.all((q.vector >= -128) & (q.vector <= 127))
    ):
        raise IllegalArgumentError(
            f"[data_type] field was set as [{spec.data_type}] in index mapping. But, KNN vector values are not "
            f"within in the byte range [-128, 127]"
        )
    name = spec.space.name
    if spec.space.normalizes and not np.any(q.vector):
        raise IllegalArgumentError(f"zero vector is not supported when space type is [{name}]")
    if q.min_score is not None and name != "innerproduct" and not 0 < q.min_score <= 1:
        raise IllegalArgumentError(f"[knn] requires score to be in the range [0, 1] for space type: {name}")
    if q.max_distance is not None and name != "innerproduct" and q.max_distance < 0:
        raise IllegalArgumentError(f"[knn] requires distance to be non-negative for space type: {name}")


def _options(q: Knn, vectors: FieldVectors, ctx: Context) -> SearchOptions:
    settings = ctx.vectors.settings()
    ef = q.ef_search or vectors.spec.ef_search or int(settings.get("index.knn.algo_param.ef_search", 100))
    oversample = q.rescore if isinstance(q.rescore, float) else vectors.spec.graph.quant.oversample
    return _search_options(ef, q.nprobes or vectors.spec.nprobes, oversample, q.rescore is not False)


@lru_cache(maxsize=1024)
def _search_options(ef: int, nprobes: int, oversample: float, rescore: bool) -> SearchOptions:
    """SearchOptions are immutable: one per combination, not one per query."""
    return SearchOptions(ef_search=ef, nprobes=nprobes, oversample=oversample, rescore=rescore)


def _radius(q: Knn, vectors: FieldVectors) -> float:
    """The engine distance a radial search reaches: max_distance, or min_score inverted through §5.4."""
    if q.max_distance is not None:
        return q.max_distance
    s = float(q.min_score or 0.0)
    name = vectors.spec.space.name
    if name == "cosinesimil":
        return 2.0 - 2.0 * s
    if name == "innerproduct" and s > 1.0:
        return 1.0 - s
    return math.inf if s <= 0 else 1.0 / s - 1.0


def filter_keys(query: dsl.Query, ctx: Context) -> np.ndarray:
    """The `_key` of every document matching `query` in the current snapshot."""
    compiled = compile_query(query, ctx)
    searcher = ctx.vectors.searcher()
    count = searcher.search(compiled, limit=1, count=True).count
    if count == 0:
        return np.empty(0, dtype=np.int64)
    hits = searcher.search(compiled, limit=count, count=False).hits
    return np.asarray(searcher.fast_field_values(KEY_FIELD, [a for _, a in hits]), dtype=np.int64)


def scored_keys(ctx: Context, keys: np.ndarray, scores: np.ndarray) -> tantivy.Query:
    """A query matching exactly the documents `keys`, each scoring its given score."""
    if len(keys) == 0:
        return nothing()
    clauses = [
        (tantivy.Occur.Should, tantivy.Query.const_score_query(tantivy.Query.term_query(ctx.schema, KEY_FIELD, k), s))
        for k, s in zip(keys.tolist(), scores.tolist(), strict=True)
    ]
    return tantivy.Query.boolean_query(clauses)
