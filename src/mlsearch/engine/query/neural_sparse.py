"""The `neural_sparse` query (neural-search) and the `rank_feature` query, on rank_features / rank_feature fields.

Both are scored on the index's feature postings (engine/sparse) with numpy, then compiled into a tantivy boolean of
constant-score `_key` terms (the technique of knn.py), so they compose with bool, paging and aggregations.
`neural_sparse` with `query_text` needs a model: the API layer rewrites it into `query_tokens` before parsing."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import tantivy

from mlsearch.engine.query import dsl
from mlsearch.engine.query.compile import Context, compiles, nothing
from mlsearch.engine.query.knn import scored_keys
from mlsearch.engine.sparse import SINGLE, FieldPostings, top
from mlsearch.errors import IllegalArgumentError, ParsingError

# At most this many documents per index take part (best first), as knn's radial searches do.
MAX_MATCHES = 10000
# Set by the neural_sparse_two_phase_processor on the queries it accelerates (not a user-facing parameter).
TWO_PHASE_KEY = "_two_phase"
PRUNE_TYPES = ("none", "top_k", "max_ratio", "alpha_mass", "abs_value")
_SPARSE_KEYS = {
    "query_text",
    "query_tokens",
    "model_id",
    "analyzer",
    "max_token_score",
    "boost",
    "_name",
    "method_parameters",
    TWO_PHASE_KEY,
}
_FUNCTIONS = ("saturation", "log", "sigmoid", "linear")


@dataclass(frozen=True, slots=True)
class TwoPhase:
    """Score with the high-weight tokens, then add the low-weight tokens' scores to the best `window` documents."""

    low: Mapping[str, float]
    window: int


@dataclass(frozen=True, slots=True, eq=False)
class NeuralSparse(dsl.Query):
    field: str
    tokens: Mapping[str, float]  # with two_phase: the high-weight tokens only
    boost: float = 1.0
    two_phase: TwoPhase | None = None


@dataclass(frozen=True, slots=True, eq=False)
class RankFeature(dsl.Query):
    field: str
    function: str = "saturation"
    pivot: float | None = None
    scaling_factor: float | None = None
    exponent: float | None = None
    boost: float = 1.0


# ---- neural_sparse -------------------------------------------------------------------------------------------


@dsl.query_parser("neural_sparse")
def parse_neural_sparse(body: Any) -> dsl.Query:
    name, spec = _single_field("neural_sparse", body)
    for key in spec:
        if key not in _SPARSE_KEYS:
            raise ParsingError(f"[neural_sparse] query does not support [{key}]")
    for key in ("query_text", "model_id", "analyzer"):
        if key in spec and (not isinstance(spec[key], str) or not spec[key].strip()):
            raise IllegalArgumentError(f"{key} field can not be empty")
    if "model_id" in spec and "analyzer" in spec:
        raise IllegalArgumentError("[neural_sparse] model_id and analyzer can not be set at the same time")
    tokens = spec.get("query_tokens")
    if tokens is None:
        if "query_text" not in spec:
            raise IllegalArgumentError(
                "either query_text field or query_tokens field must be provided for [neural_sparse] query"
            )
        raise IllegalArgumentError(
            "[neural_sparse] query_text must be turned into query_tokens by a model or analyzer before the query "
            "runs on an index"
        )
    boost = _number("neural_sparse", "boost", spec.get("boost", 1.0))
    parsed = _query_tokens(tokens)
    if TWO_PHASE_KEY not in spec:
        return NeuralSparse(name, parsed, boost)
    high, two_phase = _two_phase(parsed, spec[TWO_PHASE_KEY])
    return NeuralSparse(name, high, boost, two_phase)


def _two_phase(tokens: dict[str, float], spec: Any) -> tuple[dict[str, float], TwoPhase]:
    if not isinstance(spec, dict):
        raise ParsingError(f"[neural_sparse] [{TWO_PHASE_KEY}] must be an object")
    high = split_tokens(tokens, str(spec.get("prune_type", "max_ratio")), float(spec.get("prune_ratio", 0.4)))
    low = {t: w for t, w in tokens.items() if t not in high}
    return high, TwoPhase(low, int(spec.get("window_size", 50)))


def split_tokens(tokens: Mapping[str, float], prune_type: str, ratio: float) -> dict[str, float]:
    """The tokens neural-search's PruneUtils keeps (the first phase); the others make the second phase."""
    if any(w <= 0 for w in tokens.values()):
        raise IllegalArgumentError("Pruned values must be positive")
    ranked = sorted(tokens.items(), key=lambda kv: -kv[1])
    if prune_type == "top_k":
        return dict(ranked[: int(ratio)])
    if prune_type == "max_ratio":
        top_weight = ranked[0][1] if ranked else 0.0
        return {t: w for t, w in ranked if w >= ratio * top_weight}
    if prune_type == "abs_value":
        return {t: w for t, w in ranked if w >= ratio}
    if prune_type == "alpha_mass":
        total, running, kept = sum(tokens.values()), 0.0, {}
        for token, weight in ranked:
            running += weight
            if running <= ratio * total:
                kept[token] = weight
        return kept
    return dict(tokens)


def _query_tokens(value: Any) -> dict[str, float]:
    if not isinstance(value, dict) or not value:
        raise IllegalArgumentError("query_tokens field can not be empty")
    tokens = {}
    for token, weight in value.items():
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not math.isfinite(weight):
            raise ParsingError(f"[neural_sparse] query_tokens weight of [{token}] must be a finite number")
        tokens[str(token)] = float(weight)
    return tokens


@compiles(NeuralSparse)
def compile_neural_sparse(q: NeuralSparse, ctx: Context) -> tantivy.Query:
    leaf = ctx.mappings.field(q.field)
    if leaf is None:
        return nothing()
    if leaf.type != "rank_features":
        raise IllegalArgumentError("[neural_sparse] query only works on [rank_features] fields")
    postings = _postings(ctx, q.field)
    if postings is None:
        return nothing()
    keys, scores = top(*postings.dot(q.tokens), MAX_MATCHES)
    if q.two_phase is not None:
        scores = _second_phase(postings, q.two_phase, keys, scores)
    return scored_keys(ctx, keys, scores * np.float32(q.boost))


def _second_phase(postings: FieldPostings, two_phase: TwoPhase, keys: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Add the low-weight tokens' scores to the first phase's best `window` documents (as neural-search's rescore:
    those documents then score as with every token; the others keep their first-phase scores)."""
    head = min(two_phase.window, len(keys))
    if head == 0 or not two_phase.low:
        return scores
    low_keys, low_scores = postings.dot(two_phase.low)
    if len(low_keys) == 0:
        return scores
    order = np.argsort(low_keys)
    low_keys, low_scores = low_keys[order], low_scores[order]
    where = np.searchsorted(low_keys, keys[:head]).clip(max=len(low_keys) - 1)
    found = low_keys[where] == keys[:head]
    out = scores.astype(np.float64)
    out[:head] += np.where(found, low_scores[where].astype(np.float64), 0.0)
    return out.astype(np.float32)


# ---- rank_feature ----------------------------------------------------------------------------------------------


@dsl.query_parser("rank_feature")
def parse_rank_feature(body: Any) -> dsl.Query:
    if not isinstance(body, dict):
        raise ParsingError("[rank_feature] query malformed, no start_object after query name")
    allowed = {"field", "boost", "_name", *_FUNCTIONS}
    for key in body:
        if key not in allowed:
            raise ParsingError(f"[rank_feature] query does not support [{key}]")
    field = body.get("field")
    if not isinstance(field, str) or not field:
        raise ParsingError("[rank_feature] requires a [field]")
    chosen = [f for f in _FUNCTIONS if f in body]
    if len(chosen) > 1:
        raise ParsingError("Can only specify one of [log], [saturation], [sigmoid] and [linear]")
    function = chosen[0] if chosen else "saturation"
    params = body.get(function) or {}
    if not isinstance(params, dict):
        raise ParsingError(f"[{function}] must be an object")
    return RankFeature(
        field,
        function,
        *_function_params(function, params),
        boost=_number("rank_feature", "boost", body.get("boost", 1.0)),
    )


def _function_params(function: str, params: Mapping[str, Any]) -> tuple[float | None, float | None, float | None]:
    wanted = {"saturation": ("pivot",), "log": ("scaling_factor",), "sigmoid": ("pivot", "exponent"), "linear": ()}
    for key in params:
        if key not in wanted[function]:
            raise ParsingError(f"[{function}] query does not support [{key}]")
    values = {k: _number(function, k, params[k]) for k in wanted[function] if params.get(k) is not None}
    for key in wanted[function]:
        if key not in values and not (function == "saturation" and key == "pivot"):
            raise ParsingError(f"[{function}] requires [{key}]")
        if key in values and values[key] <= 0:
            raise IllegalArgumentError(f"[{key}] must be greater than 0, got [{values[key]}]")
    return values.get("pivot"), values.get("scaling_factor"), values.get("exponent")


@compiles(RankFeature)
def compile_rank_feature(q: RankFeature, ctx: Context) -> tantivy.Query:
    path, token = _feature_of(q.field, ctx)
    if path is None:
        return nothing()
    postings = _postings(ctx, path)
    if postings is None:
        return nothing()
    if q.function == "log" and postings.inverse:
        raise IllegalArgumentError(
            "Cannot use the [log] function with a field that has a negative score impact as it would trigger "
            "negative scores"
        )
    keys, values = postings.values(token)
    if len(keys) == 0:
        return nothing()
    scores = _apply(q, values.astype(np.float64)) * q.boost
    keys, found = top(keys, scores.astype(np.float32), MAX_MATCHES)
    return scored_keys(ctx, keys, found)


def _feature_of(name: str, ctx: Context) -> tuple[str | None, str]:
    """The postings field and token a rank_feature query names: `pagerank` or `topics.sports`."""
    leaf = ctx.mappings.field(name)
    if leaf is not None:
        if leaf.type != "rank_feature":
            raise IllegalArgumentError(
                f"[rank_feature] query only works on [rank_feature] fields and features of [rank_features] fields, "
                f"not [{leaf.type}]"
            )
        return name, SINGLE
    parent, _, feature = name.rpartition(".")
    owner = ctx.mappings.field(parent) if parent else None
    if owner is not None and owner.type == "rank_features":
        return parent, feature
    return None, ""


def _apply(q: RankFeature, f: np.ndarray) -> np.ndarray:
    if q.function == "linear":
        return f
    if q.function == "log":
        return np.log(float(q.scaling_factor or 1.0) + f)
    pivot = q.pivot if q.pivot is not None else _default_pivot(f)
    if q.function == "sigmoid":
        a = float(q.exponent or 1.0)
        return 1.0 - 1.0 / (1.0 + np.power(f / pivot, a))
    return 1.0 - pivot / (f + pivot)


def _default_pivot(f: np.ndarray) -> float:
    """Lucene's approximation of the geometric mean: the mean of the encoded feature values, decoded."""
    bits = f.astype(np.float32).view(np.uint32) >> np.uint32(15)
    mean = int(bits.astype(np.float64).mean()) if len(bits) else 0
    return float(np.uint32(mean << 15).view(np.float32)) or 1.0


# ---- shared ----------------------------------------------------------------------------------------------------


def _single_field(kind: str, body: Any) -> tuple[str, dict[str, Any]]:
    if not isinstance(body, dict):
        raise ParsingError(f"[{kind}] query malformed, no start_object after query name")
    if len(body) != 1:
        names = list(body)
        if not names:
            raise ParsingError(f"[{kind}] query malformed, no field specified")
        raise ParsingError(f"[{kind}] query doesn't support multiple fields, found [{names[0]}] and [{names[1]}]")
    name, spec = next(iter(body.items()))
    if not isinstance(spec, dict):
        raise ParsingError(f"[{kind}] query malformed, expected an object for field [{name}]")
    return name, spec


def _number(kind: str, name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ParsingError(f"[{kind}] failed to parse field [{name}]")
    try:
        return float(value)
    except ValueError:
        raise ParsingError(f"[{kind}] failed to parse field [{name}]") from None


def _postings(ctx: Context, path: str) -> FieldPostings | None:
    sparse = getattr(ctx, "sparse", None)
    return None if sparse is None else sparse.field(path)
