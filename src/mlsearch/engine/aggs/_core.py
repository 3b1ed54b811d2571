"""The execution core: one tantivy `aggregate` call per level for everything it can compute, and per-bucket
queries for the aggregations it cannot (filters, top hits, calendar buckets) under any parent bucket."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import tantivy

from mlsearch.engine.aggs.spec import MAX_BUCKETS, Node, Result, TooManyBucketsError
from mlsearch.engine.index import Index
from mlsearch.engine.lexical import FIELD_NAMES, Column
from mlsearch.engine.query.compile import Context, as_filter
from mlsearch.errors import IllegalArgumentError

Scope = Callable[[], tantivy.Query]  # the query of the enclosing bucket, built only when needed
Translator = Callable[["Env", Node], dict[str, Any] | None]
Renderer = Callable[["Env", Scope, Node, dict[str, Any] | None], Result]
TRANSLATORS: dict[str, Translator] = {}
RENDERERS: dict[str, Renderer] = {}


@dataclass(frozen=True, slots=True)
class Env:
    index: Index
    ctx: Context
    searcher: tantivy.Searcher


def aggregation(*kinds: str, translate: Translator | None = None) -> Callable[[Renderer], Renderer]:
    """Register the renderer (and the tantivy translation, when tantivy computes it) of aggregation kinds."""

    def register(fn: Renderer) -> Renderer:
        for kind in kinds:
            RENDERERS[kind] = fn
            if translate is not None:
                TRANSLATORS[kind] = translate
        return fn

    return register


def run_level(env: Env, query: tantivy.Query, nodes: tuple[Node, ...]) -> dict[str, Result]:
    """Sibling aggregations under one query: a single tantivy pass for the native ones, then the others."""
    requests = {}
    for node in nodes:
        body = translate(env, node)
        if body is not None:
            requests[node.name] = body
    raw = aggregate(env, query, requests) if requests else {}
    scope = _fixed(query)
    return {node.name: RENDERERS[node.kind](env, scope, node, raw.get(node.name)) for node in nodes}


def translate(env: Env, node: Node) -> dict[str, Any] | None:
    """Tantivy's request for a node and its native sub-aggregations, or None when tantivy can't compute it."""
    translator = TRANSLATORS.get(node.kind)
    body = translator(env, node) if translator is not None else None
    if body is None:
        return None
    subs = {sub.name: t for sub in node.subs if (t := translate(env, sub)) is not None}
    if subs:
        body["aggs"] = subs
    return body


def aggregate(env: Env, query: tantivy.Query, requests: dict[str, Any]) -> dict[str, Any]:
    try:
        return env.searcher.aggregate(query, requests)
    except ValueError as exc:
        if "bucket" in str(exc).lower() and "limit" in str(exc).lower():
            raise TooManyBucketsError(MAX_BUCKETS + 1) from None
        raise IllegalArgumentError(f"aggregation failed: {exc}") from None


def render_subs(env: Env, scope: Scope, node: Node, raw_bucket: dict[str, Any] | None) -> dict[str, Result]:
    """The sub-aggregations of one bucket: from tantivy's output, or run under the bucket's own query."""
    out: dict[str, Result] = {}
    scope = _cached(scope)
    for sub in node.subs:
        raw = raw_bucket.get(sub.name) if raw_bucket is not None else None
        if raw is not None:
            out[sub.name] = RENDERERS[sub.kind](env, scope, sub, raw)
        else:
            out[sub.name] = run_level(env, scope(), (sub,))[sub.name]
    return out


def empty_subs(env: Env, node: Node) -> dict[str, Result]:
    """Sub-aggregations of a bucket that matches nothing."""
    return run_level(env, tantivy.Query.empty_query(), node.subs) if node.subs else {}


def column(env: Env, node: Node) -> Column | None:
    """The column of the node's field; None when unmapped (an empty result, as in OpenSearch)."""
    field = node.field
    if field is None:
        raise IllegalArgumentError("Required one of fields [field, script], but none were specified. ")
    col = env.ctx.columns.get(field)
    if col is not None and col.kind == "text":
        raise IllegalArgumentError(
            f"Text fields are not optimised for operations that require per-document field data like "
            f"aggregations and sorting, so these operations are disabled by default. Please use a keyword "
            f"field instead. Alternatively, set fielddata=true on [{field}] in order to load field data by "
            f"uninverting the inverted index. Note that this can use significant memory."
        )
    return col


def numeric_column(env: Env, node: Node) -> Column | None:
    col = column(env, node)
    if col is not None and col.kind in ("keyword",):
        raise IllegalArgumentError(
            f"Field [{node.field}] of type [{col.field.type}] is not supported for aggregation [{node.kind}]"
        )
    return col


def is_date(col: Column | None) -> bool:
    return col is not None and col.field.base_type == "date"


def narrowed(query: tantivy.Query, extra: tantivy.Query) -> tantivy.Query:
    """`query` restricted to `extra`'s matches, scores unchanged (a bool filter clause)."""
    return tantivy.Query.boolean_query([(tantivy.Occur.Must, query), (tantivy.Occur.Must, as_filter(extra))])


def missing_query(env: Env, col: Column) -> tantivy.Query:
    """Documents without a value in the column."""
    return tantivy.Query.boolean_query(
        [
            (tantivy.Occur.Must, tantivy.Query.all_query()),
            (tantivy.Occur.MustNot, tantivy.Query.term_query(env.ctx.schema, FIELD_NAMES, col.field.path)),
        ]
    )


def count(env: Env, query: tantivy.Query) -> int:
    return env.searcher.search(query, limit=1, count=True).count


def _fixed(query: tantivy.Query) -> Scope:
    return lambda: query


def _cached(scope: Scope) -> Scope:
    built: list[tantivy.Query] = []

    def get() -> tantivy.Query:
        if not built:
            built.append(scope())
        return built[0]

    return get
