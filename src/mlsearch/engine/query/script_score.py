"""The `script_score` query: the inner query selects candidates (and gives `_score`), a script rescores them.

Two script languages: the k-NN plugin's `{"lang": "knn", "source": "knn_score"}` (exact k-NN, spec §5.5) and the
Painless expressions its documentation composes from the vector functions (engine/scripting/painless.py). The
script runs once over numpy arrays holding every candidate's vector (read from the index's vector segments by
`_key`); like `knn`, the result compiles to constant-score `_key` terms, so it composes with bool, paging and
aggregations.

Cap: at most MAX_SCORED_DOCS documents come out (the best scoring ones). Every candidate is still scored; only
documents below the cap's last score are dropped, so hits (max_result_window is 10,000) are exact and only
`hits.total` of a larger match set is capped."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import tantivy

from mlsearch.engine.lexical import KEY_FIELD
from mlsearch.engine.query import dsl
from mlsearch.engine.query.compile import Context, compile_query, compiles, count_matches, nothing
from mlsearch.engine.query.knn import scored_keys
from mlsearch.engine.scripting import DocValues, ScriptError, compile_painless, knn_score
from mlsearch.engine.scripting.painless import Script
from mlsearch.engine.scripting.vector_functions import SCRIPT_SPACES, check_dimension
from mlsearch.errors import IllegalArgumentError, MLSearchError, ParsingError

MAX_SCORED_DOCS = 100_000
_KEYS = {"query", "script", "min_score", "boost", "_name"}


@dataclass(frozen=True, slots=True, eq=False)
class ScriptScore(dsl.Query):
    query: dsl.Query
    lang: str
    source: str
    params: dict[str, Any]
    min_score: float | None = None
    boost: float = 1.0
    painless: Script | None = None


# ---- parsing -----------------------------------------------------------------------------------------------


@dsl.query_parser("script_score")
def parse_script_score(body: Any) -> dsl.Query:
    if not isinstance(body, dict):
        raise ParsingError("[script_score] query malformed, no start_object after query name")
    for key in body:
        if key not in _KEYS:
            raise ParsingError(f"[script_score] query does not support [{key}]")
    if "query" not in body:
        raise ParsingError("[script_score] requires 'query' field")
    if "script" not in body:
        raise ParsingError("[script_score] requires 'script' field")
    lang, source, params = _script(body["script"])
    painless = None
    if lang == "knn":
        if source != "knn_score":
            raise IllegalArgumentError(f"Unknown script name {source}")
    elif lang == "painless":
        painless = compile_painless(source)
    else:
        raise IllegalArgumentError(f"script_lang not supported [{lang}]")
    return ScriptScore(
        dsl.parse_query(body["query"]),
        lang,
        source,
        params,
        None if body.get("min_score") is None else _float("min_score", body["min_score"]),
        _float("boost", body.get("boost", 1.0)),
        painless,
    )


def _script(spec: Any) -> tuple[str, str, dict[str, Any]]:
    if isinstance(spec, str):
        return "painless", spec, {}
    if not isinstance(spec, dict):
        raise ParsingError("[script] must be an object or a string")
    if "id" in spec:
        raise IllegalArgumentError("stored scripts are not supported; give the script's [source]")
    source = spec.get("source", spec.get("inline"))
    if not isinstance(source, str):
        raise ParsingError("must specify either [source] for an inline script or [id] for a stored script")
    params = spec.get("params") or {}
    if not isinstance(params, dict):
        raise ParsingError("[params] must be an object")
    return str(spec.get("lang", "painless")), source, params


def _float(name: str, value: Any) -> float:
    if isinstance(value, bool):
        raise ParsingError(f"[script_score] failed to parse field [{name}]")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ParsingError(f"[script_score] failed to parse field [{name}]") from None


# ---- compiling ---------------------------------------------------------------------------------------------


@compiles(ScriptScore)
def compile_script_score(q: ScriptScore, ctx: Context) -> tantivy.Query:
    stats = getattr(ctx.vectors, "stats", None)
    if stats is not None:
        stats.bump("script_query_requests")
        if q.painless is not None:
            stats.bump("script_compilations")
    try:
        # knn_score validates before looking at candidates, so an empty index still reports a bad request.
        scorer = _knn_check(q, ctx) if q.lang == "knn" else None
        keys, scores = _candidates(q, ctx)
        if scorer is not None:
            values = scorer(keys)
        else:
            values = q.painless.run(len(keys), q.params, lambda f: _doc_values(ctx, f, keys), scores)
    except MLSearchError:
        if stats is not None:
            stats.bump("script_query_errors")
        raise
    return _finish(q, ctx, keys, values)


def _candidates(q: ScriptScore, ctx: Context) -> tuple[np.ndarray, np.ndarray]:
    inner = compile_query(q.query, ctx)
    searcher = ctx.vectors.searcher()
    count = count_matches(searcher, inner)
    if count == 0:
        return np.empty(0, dtype=np.int64), np.empty(0)
    hits = searcher.search(inner, limit=count, count=False).hits
    keys = np.asarray(searcher.fast_field_values(KEY_FIELD, [a for _, a in hits]), dtype=np.int64)
    scores = np.fromiter((s for s, _ in hits), dtype=np.float32, count=len(hits)).astype(np.float64)
    return keys, scores


def _finish(q: ScriptScore, ctx: Context, keys: np.ndarray, values: np.ndarray) -> tantivy.Query:
    if len(keys) == 0:
        return nothing()
    bad = ~np.isfinite(values) | (values < 0)
    if bad.any():
        value = float(values[bad][0])
        raise IllegalArgumentError(
            f"script_score script returned an invalid score [{_java(value)}] for doc [{int(keys[bad][0])}]. Must be "
            f"a non-negative score!"
        )
    values = values.astype(np.float32).astype(np.float64)  # Lucene scores are floats
    if q.min_score is not None:
        keep = values >= np.float32(q.min_score)
        keys, values = keys[keep], values[keep]
    if len(keys) > MAX_SCORED_DOCS:
        top = np.argpartition(-values, MAX_SCORED_DOCS - 1)[:MAX_SCORED_DOCS]
        keys, values = keys[top], values[top]
    return scored_keys(ctx, keys, values * q.boost)


def _java(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return repr(value)


def _doc_values(ctx: Context, name: str, keys: np.ndarray) -> DocValues:
    leaf = ctx.mappings.field(name)
    if leaf is None:
        raise IllegalArgumentError(f"No field found for [{name}] in mapping")
    vectors = None if ctx.vectors is None else ctx.vectors.field(name)
    if leaf.type != "knn_vector" or vectors is None:
        raise IllegalArgumentError(f"unsupported construct [doc['{name}']]: only knn_vector fields can be read")
    data, present = vectors.vectors_of(keys)
    binary = vectors.spec.data_type == "binary"
    return DocValues(name, data if binary else data.astype(np.float64), present, binary)


def _knn_check(q: ScriptScore, ctx: Context) -> Callable[[np.ndarray], np.ndarray]:
    """Validate the knn_score parameters (the plugin's order and words); returns the scorer of candidates."""
    params = q.params
    if params.get("field") is None:
        raise IllegalArgumentError("Missing parameter [field]")
    if params.get("space_type") is None:
        raise IllegalArgumentError("Missing parameter [space_type]")
    if params.get("query_value") is None:
        raise IllegalArgumentError("Missing parameter [query_value]")
    field, space = str(params["field"]), str(params["space_type"])
    if space not in SCRIPT_SPACES:
        raise IllegalArgumentError(f"Unable to find space: {space}")
    leaf = ctx.mappings.field(field)
    if leaf is None or leaf.type != "knn_vector":
        if space == "hammingbit":
            raise IllegalArgumentError(
                "Incompatible field_type for hammingbit space. The field type must be an integral numeric type."
            )
        raise IllegalArgumentError(f"Incompatible field_type for {space} space. The field type must be knn_vector.")
    vectors = ctx.vectors.field(field)
    if vectors is None:
        raise IllegalArgumentError(f"Incompatible field_type for {space} space. The field type must be knn_vector.")
    binary = vectors.spec.data_type == "binary"
    if binary != (space in ("hamming", "hammingbit")):
        raise IllegalArgumentError(
            f"Incompatible field_type for {space} space. The data type should be "
            f"{'float or byte' if binary else 'binary'} but got {vectors.spec.data_type}"
        )
    query = _query_vector(params["query_value"])
    check_dimension(query, vectors.spec.width)
    if space == "cosinesimil" and not np.any(query):
        raise IllegalArgumentError(f"zero vector is not supported when space type is [{space}]")

    def score(keys: np.ndarray) -> np.ndarray:
        data, present = vectors.vectors_of(keys)
        out = knn_score(space, data if binary else data.astype(np.float64), query)
        return np.where(present, out, 0.0)  # no vector: the plugin's script scores 0

    return score


def _query_vector(value: Any) -> np.ndarray:
    if not isinstance(value, list) or not value:
        raise IllegalArgumentError(
            "Incompatible query_value for this space type. query_value must be a list of numbers"
        )
    if any(isinstance(x, bool) or not isinstance(x, int | float) for x in value):
        raise IllegalArgumentError(
            "Incompatible query_value for this space type. query_value must be a list of numbers"
        )
    return np.asarray(value, dtype=np.float64)


__all__ = ["MAX_SCORED_DOCS", "ScriptError", "ScriptScore", "parse_script_score"]
