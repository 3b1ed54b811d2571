"""Compile parsed queries into tantivy queries for one index.

Scores follow Lucene: BM25 for terms and phrases (k1 1.2, b 0.75; divided by 1 + k1 for OpenSearch 3.x's
BM25Similarity, unscaled for LegacyBM25 — tantivy's own formula keeps the (k1 + 1) factor), constant scores for
term-level queries on non-text fields, ranges, exists, ids and multi-term patterns, sums for bool."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import tantivy

from mlsearch.engine import dates
from mlsearch.engine.analysis import Analyzers
from mlsearch.engine.date_math import resolve_now
from mlsearch.engine.lexical import FIELD_NAMES, ID_FIELD, Column
from mlsearch.engine.mapping import Field, Mappings
from mlsearch.engine.query import dsl
from mlsearch.errors import IllegalArgumentError, ParsingError, SearchPhaseExecutionError

Occur = tantivy.Occur
K1 = 1.2
_NOTHING_FIELD = ID_FIELD


@dataclass(frozen=True, slots=True)
class Context:
    """What compiling needs to know about the index being searched."""

    schema: tantivy.Schema
    mappings: Mappings
    columns: dict[str, Column]
    analyzers: Analyzers
    legacy_bm25: bool
    vectors: Any = None  # the index's VectorIndex (engine/vectors), for the knn query
    sparse: Any = None  # the index's SparseIndex (engine/sparse), for neural_sparse and rank_feature

    @property
    def bm25_scale(self) -> float:
        return 1.0 if self.legacy_bm25 else 1.0 / (1.0 + K1)


Compiler = Callable[[Any, Context], tantivy.Query]
COMPILERS: dict[type, Compiler] = {}


def compiles(kind: type) -> Callable[[Compiler], Compiler]:
    def register(fn: Compiler) -> Compiler:
        COMPILERS[kind] = fn
        return fn

    return register


def compile_query(query: dsl.Query, ctx: Context) -> tantivy.Query:
    compiler = COMPILERS.get(type(query))
    if compiler is None:
        raise ParsingError(f"query [{type(query).__name__}] cannot run here yet")
    return compiler(query, ctx)


# ---- building blocks ---------------------------------------------------------------------------------------


def nothing() -> tantivy.Query:
    return tantivy.Query.empty_query()


def boosted(query: tantivy.Query, boost: float) -> tantivy.Query:
    return query if boost == 1.0 else tantivy.Query.boost_query(query, boost)


def constant(query: tantivy.Query, score: float) -> tantivy.Query:
    return tantivy.Query.const_score_query(query, score)


def as_filter(query: tantivy.Query) -> tantivy.Query:
    """Match without adding to the score (a bool `filter` clause)."""
    return tantivy.Query.const_score_query(query, 0.0)


def bm25(query: tantivy.Query, ctx: Context, boost: float = 1.0) -> tantivy.Query:
    return boosted(query, boost * ctx.bm25_scale)


def _column(ctx: Context, name: str) -> Column | None:
    return ctx.columns.get(name)


def _analyze(ctx: Context, col: Column, text: str, analyzer: str | None) -> list[tuple[str, int]]:
    name = analyzer or col.field.search_analyzer
    if col.kind == "keyword":
        return [(text, 0)]
    tokens = ctx.analyzers.get(name).pre_tokenize(text).tokens
    return [(t.text, t.position) for t in tokens]


def _fuzziness(value: str | None, term: str) -> int:
    if value is None:
        return 0
    text = value.upper()
    if text.startswith("AUTO"):
        low, high = 3, 6
        if ":" in text:
            low, high = (int(x) for x in text.split(":", 1)[1].split(","))
        return 0 if len(term) < low else 1 if len(term) < high else 2
    try:
        return min(2, int(float(text)))
    except ValueError:
        raise ParsingError(f"failed to parse [fuzziness] value [{value}]") from None


def _typed_value(col: Column, value: Any) -> Any:
    """A query value converted to what the column holds; raises the error a bad value gets."""
    leaf: Field = col.field
    try:
        if col.kind == "integer":
            if leaf.base_type == "date":
                return dates.parse(value, leaf.date_format)
            if isinstance(value, bool):
                raise ValueError(value)
            number = float(value)
            return int(number) if number.is_integer() else number
        if col.kind == "float":
            if isinstance(value, bool):
                raise ValueError(value)
            return float(value)
        if col.kind == "boolean":
            if isinstance(value, bool):
                return value
            if str(value) in ("true", "false"):
                return str(value) == "true"
            raise ValueError(value)
    except (TypeError, ValueError):
        raise IllegalArgumentError(_bad_value(col, value)) from None
    return value if isinstance(value, str) else _as_text(value)


def _bad_value(col: Column, value: Any) -> str:
    if col.field.base_type == "date":
        return f"failed to parse date field [{value}] with format [{col.field.date_format or dates.DEFAULT_FORMAT}]"
    if col.kind == "boolean":
        return f"Can't parse boolean value [{value}], expected [true] or [false]"
    return f'For input string: "{value}"'


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _term(ctx: Context, col: Column, value: Any, boost: float = 1.0) -> tantivy.Query:
    typed = _typed_value(col, value)
    if col.kind in ("integer", "float") and isinstance(typed, float) and col.kind == "integer":
        return nothing()  # 1.5 can never equal a whole-number field
    query = tantivy.Query.term_query(ctx.schema, col.name, typed)
    if col.kind in ("text", "keyword"):
        return bm25(query, ctx, boost)
    return constant(query, boost)


# ---- compilers ---------------------------------------------------------------------------------------------


@compiles(dsl.MatchAll)
def _match_all(q: dsl.MatchAll, ctx: Context) -> tantivy.Query:
    return constant(tantivy.Query.all_query(), q.boost)


@compiles(dsl.MatchNone)
def _match_none(q: dsl.MatchNone, ctx: Context) -> tantivy.Query:
    return nothing()


def match_field(
    ctx: Context,
    col: Column,
    text: Any,
    *,
    operator: str = "or",
    msm: str | None = None,
    fuzziness: str | None = None,
    prefix_length: int = 0,
    analyzer: str | None = None,
    zero_terms: str = "none",
    boost: float = 1.0,
) -> tantivy.Query:
    """The query `match` builds on one field: analyzed terms combined by operator / minimum_should_match."""
    if col.kind not in ("text", "keyword"):
        return _term(ctx, col, text, boost)
    tokens = _analyze(ctx, col, _as_text(text), analyzer)
    if not tokens:
        return constant(tantivy.Query.all_query(), boost) if zero_terms == "all" else nothing()
    clauses = []
    for term, _ in tokens:
        distance = _fuzziness(fuzziness, term)
        if distance:
            leaf = tantivy.Query.fuzzy_term_query(ctx.schema, col.name, term, distance, True, prefix_length > 0)
        else:
            leaf = tantivy.Query.term_query(ctx.schema, col.name, term)
        clauses.append(bm25(leaf, ctx))
    if len(clauses) == 1:
        return boosted(clauses[0], boost)
    if operator == "and":
        return boosted(tantivy.Query.boolean_query([(Occur.Must, c) for c in clauses]), boost)
    required = minimum_should_match(msm, len(clauses))
    return boosted(
        tantivy.Query.boolean_query([(Occur.Should, c) for c in clauses], required if required > 1 else None), boost
    )


def minimum_should_match(spec: str | None, optional: int) -> int:
    """Lucene's minimum_should_match: 2, -1, 75%, -25%, and `3<90%` combinations."""
    if spec is None or optional == 0:
        return 0
    text = str(spec).strip()
    if "<" in text:
        result = optional
        for part in text.split():
            bound, _, rule = part.partition("<")
            if optional > int(bound):
                result = minimum_should_match(rule, optional)
        return result
    try:
        if text.endswith("%"):
            pct = float(text[:-1])
            count = int(optional * abs(pct) / 100)
            required = optional - count if pct < 0 else count
        else:
            value = int(text)
            required = optional + value if value < 0 else value
    except ValueError:
        raise ParsingError(f"failed to parse [minimum_should_match] value [{spec}]") from None
    return max(0, min(optional, required))


@compiles(dsl.Match)
def _match(q: dsl.Match, ctx: Context) -> tantivy.Query:
    col = _column(ctx, q.field)
    if col is None:
        return nothing()
    return match_field(
        ctx,
        col,
        q.query,
        operator=q.operator,
        msm=q.minimum_should_match,
        fuzziness=q.fuzziness,
        prefix_length=q.prefix_length,
        analyzer=q.analyzer,
        zero_terms=q.zero_terms_query,
        boost=q.boost,
    )


def phrase_field(
    ctx: Context,
    col: Column,
    text: Any,
    *,
    slop: int = 0,
    analyzer: str | None = None,
    prefix: bool = False,
    boost: float = 1.0,
) -> tantivy.Query:
    if col.kind != "text":
        return match_field(ctx, col, text, boost=boost)
    tokens = _analyze(ctx, col, _as_text(text), analyzer)
    if not tokens:
        return nothing()
    if prefix:
        words = [term for term, _ in tokens]
        return (
            bm25(tantivy.Query.phrase_prefix_query(ctx.schema, col.name, words), ctx, boost)
            if len(words) > 1
            else constant(tantivy.Query.regex_query(ctx.schema, col.name, re.escape(words[0]) + ".*"), boost)
        )
    if len(tokens) == 1:
        return bm25(tantivy.Query.term_query(ctx.schema, col.name, tokens[0][0]), ctx, boost)
    first = tokens[0][1]
    words = [(position - first, term) for term, position in tokens]
    return bm25(tantivy.Query.phrase_query(ctx.schema, col.name, words, slop), ctx, boost)


@compiles(dsl.MatchPhrase)
def _match_phrase(q: dsl.MatchPhrase, ctx: Context) -> tantivy.Query:
    col = _column(ctx, q.field)
    if col is None:
        return nothing()
    return phrase_field(ctx, col, q.query, slop=q.slop, analyzer=q.analyzer, prefix=q.prefix, boost=q.boost)


def expand_fields(ctx: Context, fields: tuple[tuple[str, float], ...]) -> list[tuple[Column, float]]:
    """Field patterns with boosts -> searchable columns; no fields means index.query.default_field (`*`)."""
    if not fields:
        fields = (("*", 1.0),)
    out: list[tuple[Column, float]] = []
    for pattern, boost in fields:
        for leaf in ctx.mappings.fields_matching(pattern):
            col = ctx.columns.get(leaf.path)
            if col is None or (pattern == "*" and col.kind not in ("text", "keyword")):
                continue
            out.append((col, boost))
    return out


@compiles(dsl.MultiMatch)
def _multi_match(q: dsl.MultiMatch, ctx: Context) -> tantivy.Query:
    targets = expand_fields(ctx, q.fields)
    if not targets:
        return nothing()
    per_field = []
    for col, boost in targets:
        if q.type in ("phrase", "phrase_prefix"):
            per_field.append(
                phrase_field(
                    ctx, col, q.query, slop=q.slop, analyzer=q.analyzer, prefix=q.type == "phrase_prefix", boost=boost
                )
            )
        else:
            lenient_value = col.kind in ("text", "keyword") or _parses(col, q.query)
            if not lenient_value:
                continue
            per_field.append(
                match_field(
                    ctx,
                    col,
                    q.query,
                    operator=q.operator,
                    msm=q.minimum_should_match,
                    fuzziness=q.fuzziness,
                    analyzer=q.analyzer,
                    boost=boost,
                )
            )
    if not per_field:
        return nothing()
    if q.type in ("most_fields", "cross_fields", "bool_prefix"):
        combined = tantivy.Query.boolean_query([(Occur.Should, c) for c in per_field])
    else:
        tie = q.tie_breaker if q.tie_breaker is not None else 0.0
        combined = per_field[0] if len(per_field) == 1 else tantivy.Query.disjunction_max_query(per_field, tie)
    return boosted(combined, q.boost)


def _parses(col: Column, value: Any) -> bool:
    try:
        _typed_value(col, value)
    except IllegalArgumentError:
        return False
    return True


@compiles(dsl.Term)
def _term_query(q: dsl.Term, ctx: Context) -> tantivy.Query:
    if q.field in ("_id",):
        return constant(tantivy.Query.term_query(ctx.schema, ID_FIELD, str(q.value)), q.boost)
    col = _column(ctx, q.field)
    if col is None:
        return nothing()
    if q.case_insensitive and col.kind in ("text", "keyword"):
        pattern = "(?i)" + re.escape(_as_text(q.value))
        return constant(tantivy.Query.regex_query(ctx.schema, col.name, pattern), q.boost)
    return _term(ctx, col, q.value, q.boost)


@compiles(dsl.Terms)
def _terms_query(q: dsl.Terms, ctx: Context) -> tantivy.Query:
    if q.field == "_id":
        return constant(tantivy.Query.term_set_query(ctx.schema, ID_FIELD, [str(v) for v in q.values]), q.boost)
    col = _column(ctx, q.field)
    if col is None or not q.values:
        return nothing()
    values = [_typed_value(col, v) for v in q.values]
    if col.kind == "integer":
        values = [v for v in values if not isinstance(v, float)]
    return constant(tantivy.Query.term_set_query(ctx.schema, col.name, values), q.boost)


_FIELD_TYPES = {"integer": tantivy.FieldType.Integer, "float": tantivy.FieldType.Float}


@compiles(dsl.Range)
def _range(q: dsl.Range, ctx: Context) -> tantivy.Query:
    col = _column(ctx, q.field)
    if col is None:
        return nothing()
    if col.kind not in _FIELD_TYPES:
        raise IllegalArgumentError(f"range queries on [{col.field.type}] fields are not supported yet")
    convert = _range_converter(col, q.format)
    lower, include_lower = (q.gte, True) if q.gte is not None else (q.gt, False)
    upper, include_upper = (q.lte, True) if q.lte is not None else (q.lt, False)
    low = None if lower is None else convert(lower, not include_lower)
    high = None if upper is None else convert(upper, include_upper)
    if low is None and high is None:
        return constant(tantivy.Query.exists_query(col.name), q.boost)
    if col.kind == "integer":
        # whole-number columns: exclusive or fractional bounds become inclusive whole numbers
        if low is not None:
            low = math.ceil(low) if include_lower else math.floor(low) + 1
            include_lower = True
        if high is not None:
            high = math.floor(high) if include_upper else math.ceil(high) - 1
            include_upper = True
    # tantivy wants an unbounded side marked inclusive
    query = tantivy.Query.range_query(
        ctx.schema,
        col.name,
        _FIELD_TYPES[col.kind],
        low,
        high,
        include_lower or low is None,
        include_upper or high is None,
    )
    return constant(query, q.boost)


def _range_converter(col: Column, fmt: str | None) -> Callable[[Any, bool], Any]:
    if col.field.base_type == "date":
        return lambda v, up: _date_bound(v, fmt or col.field.date_format, up)
    return lambda v, up: _typed_value(col, v)


_ROUNDING = re.compile(r"/([yMwdhHms])$")


def _date_bound(value: Any, fmt: str | None, round_up: bool) -> int:
    """A date bound with date math (`now-1d/d`, `2020-01-01||+1M`); `gt` and `lte` round up, as in OpenSearch."""
    if not isinstance(value, str) or not (value.startswith("now") or "||" in value):
        try:
            return dates.parse(value, fmt)
        except ValueError as exc:
            raise IllegalArgumentError(str(exc)) from None
    if value.startswith("now"):
        anchor, math_part = int(time.time() * 1000), value[3:]
    else:
        text, _, math_part = value.partition("||")
        try:
            anchor = dates.parse(text, fmt)
        except ValueError as exc:
            raise IllegalArgumentError(str(exc)) from None
    rounding = _ROUNDING.search(math_part)
    if round_up and rounding:
        return resolve_now(f"now{math_part}+1{rounding.group(1)}", anchor) - 1
    return resolve_now("now" + math_part, anchor)


@compiles(dsl.Exists)
def _exists(q: dsl.Exists, ctx: Context) -> tantivy.Query:
    paths = [q.field] if q.field in ctx.columns else [p for p in ctx.columns if p.startswith(q.field + ".")]
    if q.field == "_id":
        return constant(tantivy.Query.all_query(), q.boost)
    if not paths:
        return nothing()
    clauses = [(Occur.Should, tantivy.Query.term_query(ctx.schema, FIELD_NAMES, p)) for p in paths]
    return constant(tantivy.Query.boolean_query(clauses), q.boost)


@compiles(dsl.Ids)
def _ids(q: dsl.Ids, ctx: Context) -> tantivy.Query:
    if not q.values:
        return nothing()
    return constant(tantivy.Query.term_set_query(ctx.schema, ID_FIELD, list(q.values)), q.boost)


def _wildcard_regex(value: str) -> str:
    out = []
    for ch in value:
        out.append(".*" if ch == "*" else "." if ch == "?" else re.escape(ch))
    return "".join(out)


@compiles(dsl.Pattern)
def _pattern(q: dsl.Pattern, ctx: Context) -> tantivy.Query:
    if q.field == "_id":
        name = ID_FIELD
    else:
        col = _column(ctx, q.field)
        if col is None or col.kind not in ("text", "keyword"):
            return nothing()
        name = col.name
    if q.kind == "prefix":
        pattern = re.escape(q.value) + ".*"
    elif q.kind == "wildcard":
        pattern = _wildcard_regex(q.value)
    else:
        pattern = q.value
    if q.case_insensitive:
        pattern = "(?i)" + pattern
    try:
        return constant(tantivy.Query.regex_query(ctx.schema, name, pattern), q.boost)
    except ValueError as exc:
        raise IllegalArgumentError(f"invalid regular expression [{q.value}]: {exc}") from None


@compiles(dsl.Fuzzy)
def _fuzzy(q: dsl.Fuzzy, ctx: Context) -> tantivy.Query:
    col = _column(ctx, q.field)
    if col is None or col.kind not in ("text", "keyword"):
        return nothing()
    distance = _fuzziness(q.fuzziness, q.value)
    query = tantivy.Query.fuzzy_term_query(ctx.schema, col.name, q.value, distance, q.transpositions, False)
    return bm25(query, ctx, q.boost)


@compiles(dsl.Bool)
def _bool(q: dsl.Bool, ctx: Context) -> tantivy.Query:
    clauses: list[tuple[tantivy.Occur, tantivy.Query]] = []
    clauses += [(Occur.Must, compile_query(c, ctx)) for c in q.must]
    clauses += [(Occur.Must, as_filter(compile_query(c, ctx))) for c in q.filter]
    clauses += [(Occur.MustNot, compile_query(c, ctx)) for c in q.must_not]
    should = [(Occur.Should, compile_query(c, ctx)) for c in q.should]
    required = minimum_should_match(q.minimum_should_match, len(should))
    if should and not q.must and not q.filter and q.minimum_should_match is None:
        required = 1
    if not clauses and not should:
        return constant(tantivy.Query.all_query(), q.boost)
    if should and required == 0 and not any(o == Occur.Must for o, _ in clauses):
        # only must_not besides optional should clauses: every document may match
        clauses.append((Occur.Must, as_filter(tantivy.Query.all_query())))
    if not should and all(o == Occur.MustNot for o, _ in clauses):
        clauses.append((Occur.Must, as_filter(tantivy.Query.all_query())))
    if should and required > 0:
        if required > len(should):
            return nothing()
        if required == len(should) or len(should) == 1:
            clauses += [(Occur.Must, c) for _, c in should]
        else:
            clauses.append((Occur.Must, tantivy.Query.boolean_query(should, required)))
    else:
        clauses += should
    return boosted(tantivy.Query.boolean_query(clauses), q.boost)


@compiles(dsl.ConstantScore)
def _constant_score(q: dsl.ConstantScore, ctx: Context) -> tantivy.Query:
    return constant(compile_query(q.filter, ctx), q.boost)


@compiles(dsl.DisMax)
def _dis_max(q: dsl.DisMax, ctx: Context) -> tantivy.Query:
    subs = [compile_query(c, ctx) for c in q.queries]
    return boosted(tantivy.Query.disjunction_max_query(subs, q.tie_breaker), q.boost)


@compiles(dsl.FunctionScore)
def _function_score(q: dsl.FunctionScore, ctx: Context) -> tantivy.Query:
    # Only weight functions with multiplying modes compile to a boost; field_value_factor needs the
    # rescoring pass in search.py, which handles a top-level function_score.
    if any(f.field_value_factor is not None or f.filter is not None for f in q.functions):
        raise SearchPhaseExecutionError(
            "function_score with field_value_factor or filtered functions is supported only as the top-level query"
        )
    weight = 1.0
    for f in q.functions:
        weight *= f.weight if f.weight is not None else 1.0
    inner = compile_query(q.query, ctx)
    if q.boost_mode == "replace":
        return constant(inner, weight * q.boost)
    return boosted(inner, weight * q.boost)


@compiles(dsl.QueryString)
def _query_string(q: dsl.QueryString, ctx: Context) -> tantivy.Query:
    from mlsearch.engine.query.query_string import compile_query_string

    return compile_query_string(q, ctx)


def count_matches(searcher: tantivy.Searcher, query: tantivy.Query) -> int:
    """How many documents match (tantivy's top-docs collector panics on a limit of 0, so ask for one)."""
    return int(searcher.search(query, limit=1, count=True).count)
