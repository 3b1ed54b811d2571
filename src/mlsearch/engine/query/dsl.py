"""Parse OpenSearch query JSON into frozen dataclasses, with OpenSearch's parsing_exception messages.

New query types register a parser in QUERY_PARSERS (name -> function), as the k-NN and neural features will."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mlsearch.errors import IllegalArgumentError, ParsingError


class Query:
    """Base of every parsed query."""

    boost: float = 1.0


@dataclass(frozen=True, slots=True)
class MatchAll(Query):
    boost: float = 1.0


@dataclass(frozen=True, slots=True)
class MatchNone(Query):
    boost: float = 1.0


@dataclass(frozen=True, slots=True)
class Match(Query):
    field: str
    query: Any
    operator: str = "or"
    minimum_should_match: str | None = None
    fuzziness: str | None = None
    prefix_length: int = 0
    analyzer: str | None = None
    zero_terms_query: str = "none"
    boost: float = 1.0


@dataclass(frozen=True, slots=True)
class MatchPhrase(Query):
    field: str
    query: Any
    slop: int = 0
    analyzer: str | None = None
    prefix: bool = False  # match_phrase_prefix
    boost: float = 1.0


@dataclass(frozen=True, slots=True)
class MultiMatch(Query):
    query: Any
    fields: tuple[tuple[str, float], ...]
    type: str = "best_fields"
    operator: str = "or"
    minimum_should_match: str | None = None
    tie_breaker: float | None = None
    fuzziness: str | None = None
    analyzer: str | None = None
    slop: int = 0
    boost: float = 1.0


@dataclass(frozen=True, slots=True)
class Term(Query):
    field: str
    value: Any
    case_insensitive: bool = False
    boost: float = 1.0


@dataclass(frozen=True, slots=True)
class Terms(Query):
    field: str
    values: tuple[Any, ...]
    boost: float = 1.0


@dataclass(frozen=True, slots=True)
class Range(Query):
    field: str
    gt: Any = None
    gte: Any = None
    lt: Any = None
    lte: Any = None
    format: str | None = None
    boost: float = 1.0


@dataclass(frozen=True, slots=True)
class Exists(Query):
    field: str
    boost: float = 1.0


@dataclass(frozen=True, slots=True)
class Ids(Query):
    values: tuple[str, ...]
    boost: float = 1.0


@dataclass(frozen=True, slots=True)
class Pattern(Query):
    """prefix, wildcard and regexp: a multi-term query over a field's indexed terms."""

    kind: str  # prefix | wildcard | regexp
    field: str
    value: str
    case_insensitive: bool = False
    boost: float = 1.0


@dataclass(frozen=True, slots=True)
class Fuzzy(Query):
    field: str
    value: str
    fuzziness: str = "AUTO"
    prefix_length: int = 0
    transpositions: bool = True
    boost: float = 1.0


@dataclass(frozen=True, slots=True)
class Bool(Query):
    must: tuple[Query, ...] = ()
    should: tuple[Query, ...] = ()
    filter: tuple[Query, ...] = ()
    must_not: tuple[Query, ...] = ()
    minimum_should_match: str | None = None
    boost: float = 1.0


@dataclass(frozen=True, slots=True)
class ConstantScore(Query):
    filter: Query
    boost: float = 1.0


@dataclass(frozen=True, slots=True)
class DisMax(Query):
    queries: tuple[Query, ...]
    tie_breaker: float = 0.0
    boost: float = 1.0


@dataclass(frozen=True, slots=True)
class Function:
    """One function of function_score: weight and/or field_value_factor, with an optional filter."""

    filter: Query | None = None
    weight: float | None = None
    field_value_factor: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class FunctionScore(Query):
    query: Query
    functions: tuple[Function, ...] = ()
    score_mode: str = "multiply"
    boost_mode: str = "multiply"
    max_boost: float | None = None
    min_score: float | None = None
    boost: float = 1.0


@dataclass(frozen=True, slots=True)
class QueryString(Query):
    query: str
    fields: tuple[tuple[str, float], ...] = ()
    default_operator: str = "or"
    simple: bool = False
    analyzer: str | None = None
    minimum_should_match: str | None = None
    boost: float = 1.0
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, eq=False)
class Nested(Query):
    """A query on the elements of a nested path; parents score by `score_mode` over their matching elements."""

    path: str
    query: Query
    score_mode: str = "avg"
    ignore_unmapped: bool = False
    inner_hits: dict[str, Any] | None = None  # validated by the nested module when the query runs
    boost: float = 1.0


Parser = Callable[[Any], Query]
QUERY_PARSERS: dict[str, Parser] = {}


def query_parser(name: str) -> Callable[[Parser], Parser]:
    def register(fn: Parser) -> Parser:
        QUERY_PARSERS[name] = fn
        return fn

    return register


def parse_query(body: Any) -> Query:
    """One query object: exactly one key naming its type."""
    if not isinstance(body, dict):
        raise ParsingError("query malformed, must start with start_object")
    if len(body) != 1:
        if not body:
            raise ParsingError("query malformed, empty clause found")
        names = list(body)
        raise ParsingError(f"[{names[0]}] malformed query, expected [END_OBJECT] but found [FIELD_NAME]")
    name, inner = next(iter(body.items()))
    parser = QUERY_PARSERS.get(name)
    if parser is None:
        raise ParsingError(
            f"unknown query [{name}]",
            caused_by={
                "type": "named_object_not_found_exception",
                "reason": f"[1:1] unknown field [{name}]",
            },
        )
    return parser(inner)


# ---- helpers -------------------------------------------------------------------------------------------


def _object(name: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ParsingError(f"[{name}] query malformed, no start_object after query name")
    return value


def _single_field(name: str, body: Any) -> tuple[str, Any]:
    body = _object(name, body)
    fields = [k for k in body if k not in ("boost", "_name")]
    if len(fields) != 1:
        if not fields:
            raise ParsingError(f"[{name}] query malformed, no field specified")
        raise ParsingError(f"[{name}] query doesn't support multiple fields, found [{fields[0]}] and [{fields[1]}]")
    return fields[0], body[fields[0]]


def _check_keys(name: str, body: dict[str, Any], allowed: set[str]) -> None:
    for key in body:
        if key not in allowed and key != "_name":
            raise ParsingError(f"[{name}] query does not support [{key}]")


def _boost(name: str, body: dict[str, Any]) -> float:
    value = body.get("boost", 1.0)
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ParsingError(f"[{name}] failed to parse field [boost]") from None


def _number(kind: str, body: dict[str, Any], key: str, default: Any, cast: type = float) -> Any:
    """A numeric option; anything that is not a number gets the parsing_exception OpenSearch gives."""
    value = body.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool | dict | list):
        raise ParsingError(f"[{kind}] failed to parse field [{key}]")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ParsingError(f"[{kind}] failed to parse field [{key}]") from None
    if cast is int:
        if number != number or number in (float("inf"), float("-inf")):
            raise ParsingError(f"[{kind}] failed to parse field [{key}]")
        return int(number)
    return number


def _msm(value: Any) -> str | None:
    return None if value is None else str(value)


def _clauses(name: str, value: Any) -> tuple[Query, ...]:
    if value is None:
        return ()
    items = value if isinstance(value, list) else [value]
    return tuple(parse_query(item) for item in items)


def parse_fields(value: Any) -> tuple[tuple[str, float], ...]:
    """`["title^2", "body"]` -> (("title", 2.0), ("body", 1.0))."""
    if value is not None and not isinstance(value, str | list):
        raise ParsingError("[fields] failed to parse field [fields]: expected a string or an array of strings")
    items = [value] if isinstance(value, str) else list(value or [])
    out = []
    for item in items:
        name, _, boost = str(item).partition("^")
        try:
            out.append((name, float(boost) if boost else 1.0))
        except ValueError:
            raise ParsingError(f"failed to parse field boost [{item}]") from None
    return tuple(out)


# ---- parsers -------------------------------------------------------------------------------------------


@query_parser("match_all")
def _match_all(body: Any) -> Query:
    body = _object("match_all", body)
    _check_keys("match_all", body, {"boost"})
    return MatchAll(boost=_boost("match_all", body))


@query_parser("match_none")
def _match_none(body: Any) -> Query:
    return MatchNone()


_MATCH_KEYS = {
    "query",
    "operator",
    "minimum_should_match",
    "fuzziness",
    "prefix_length",
    "max_expansions",
    "analyzer",
    "zero_terms_query",
    "boost",
    "lenient",
    "fuzzy_transpositions",
    "auto_generate_synonyms_phrase_query",
    "cutoff_frequency",
    "fuzzy_rewrite",
}


@query_parser("match")
def _match(body: Any) -> Query:
    name, spec = _single_field("match", body)
    if not isinstance(spec, dict):
        return Match(name, spec)
    _check_keys("match", spec, _MATCH_KEYS)
    if "query" not in spec:
        raise ParsingError("[match] requires query value")
    operator = str(spec.get("operator", "or")).lower()
    if operator not in ("or", "and"):
        raise ParsingError(f"[match] query does not support [operator] value [{spec['operator']}]")
    return Match(
        name,
        spec["query"],
        operator,
        _msm(spec.get("minimum_should_match")),
        None if spec.get("fuzziness") is None else str(spec["fuzziness"]),
        _number("match", spec, "prefix_length", 0, int),
        spec.get("analyzer"),
        str(spec.get("zero_terms_query", "none")).lower(),
        _boost("match", spec),
    )


def _phrase(kind: str, prefix: bool) -> Parser:
    def parse(body: Any) -> Query:
        name, spec = _single_field(kind, body)
        if not isinstance(spec, dict):
            return MatchPhrase(name, spec, prefix=prefix)
        _check_keys(kind, spec, {"query", "slop", "analyzer", "boost", "max_expansions", "zero_terms_query"})
        if "query" not in spec:
            raise ParsingError(f"[{kind}] requires query value")
        return MatchPhrase(
            name, spec["query"], _number(kind, spec, "slop", 0, int), spec.get("analyzer"), prefix, _boost(kind, spec)
        )

    return parse


QUERY_PARSERS["match_phrase"] = _phrase("match_phrase", False)
QUERY_PARSERS["match_phrase_prefix"] = _phrase("match_phrase_prefix", True)

_MULTI_TYPES = {"best_fields", "most_fields", "cross_fields", "phrase", "phrase_prefix", "bool_prefix"}


@query_parser("multi_match")
def _multi_match(body: Any) -> Query:
    body = _object("multi_match", body)
    _check_keys("multi_match", body, _MATCH_KEYS | {"fields", "type", "tie_breaker", "slop"})
    if "query" not in body:
        raise ParsingError("[multi_match] requires query value")
    kind = str(body.get("type", "best_fields")).lower()
    if kind not in _MULTI_TYPES:
        raise ParsingError(f"failed to parse [multi_match] query type [{kind}]. unknown type.")
    return MultiMatch(
        body["query"],
        parse_fields(body.get("fields")),
        kind,
        str(body.get("operator", "or")).lower(),
        _msm(body.get("minimum_should_match")),
        _number("multi_match", body, "tie_breaker", None),
        None if body.get("fuzziness") is None else str(body["fuzziness"]),
        body.get("analyzer"),
        _number("multi_match", body, "slop", 0, int),
        _boost("multi_match", body),
    )


@query_parser("term")
def _term(body: Any) -> Query:
    name, spec = _single_field("term", body)
    if isinstance(spec, dict):
        _check_keys("term", spec, {"value", "boost", "case_insensitive"})
        if "value" not in spec:
            raise ParsingError("[term] query requires a value")
        return Term(name, spec["value"], bool(spec.get("case_insensitive", False)), _boost("term", spec))
    if isinstance(spec, list):
        raise ParsingError("[term] query does not support array of values")
    return Term(name, spec)


@query_parser("terms")
def _terms(body: Any) -> Query:
    body = _object("terms", body)
    fields = [k for k in body if k not in ("boost", "_name")]
    if len(fields) != 1:
        raise ParsingError(
            "[terms] query requires exactly one field"
            if not fields
            else f"[terms] query does not support multiple fields, found [{fields[0]}] and [{fields[1]}]"
        )
    values = body[fields[0]]
    if not isinstance(values, list):
        raise ParsingError(f"[terms] query does not support [{fields[0]}]")
    return Terms(fields[0], tuple(values), _boost("terms", body))


@query_parser("range")
def _range(body: Any) -> Query:
    name, spec = _single_field("range", body)
    if not isinstance(spec, dict):
        raise ParsingError(f"[range] query does not support [{name}]")
    _check_keys(
        "range",
        spec,
        {
            "gt",
            "gte",
            "lt",
            "lte",
            "from",
            "to",
            "include_lower",
            "include_upper",
            "format",
            "boost",
            "time_zone",
            "relation",
        },
    )
    gte, lte = spec.get("gte"), spec.get("lte")
    gt, lt = spec.get("gt"), spec.get("lt")
    if "from" in spec:
        if spec.get("include_lower", True):
            gte = spec["from"]
        else:
            gt = spec["from"]
    if "to" in spec:
        if spec.get("include_upper", True):
            lte = spec["to"]
        else:
            lt = spec["to"]
    return Range(name, gt, gte, lt, lte, spec.get("format"), _boost("range", spec))


@query_parser("exists")
def _exists(body: Any) -> Query:
    body = _object("exists", body)
    _check_keys("exists", body, {"field", "boost"})
    if "field" not in body:
        raise ParsingError("[exists] must be provided with a [field]")
    return Exists(str(body["field"]), _boost("exists", body))


@query_parser("ids")
def _ids(body: Any) -> Query:
    body = _object("ids", body)
    _check_keys("ids", body, {"values", "boost", "type"})
    values = body.get("values", [])
    if not isinstance(values, list):
        raise ParsingError("[ids] failed to parse field [values]")
    return Ids(tuple(str(v) for v in values), _boost("ids", body))


def _pattern(kind: str) -> Parser:
    def parse(body: Any) -> Query:
        name, spec = _single_field(kind, body)
        if isinstance(spec, dict):
            _check_keys(
                kind,
                spec,
                {"value", "boost", "case_insensitive", "rewrite", "flags", "max_determinized_states", "wildcard"},
            )
            value = spec.get("value", spec.get("wildcard"))
            if value is None:
                raise ParsingError(f"[{kind}] query requires a value")
            return Pattern(kind, name, str(value), bool(spec.get("case_insensitive", False)), _boost(kind, spec))
        return Pattern(kind, name, str(spec))

    return parse


for _kind in ("prefix", "wildcard", "regexp"):
    QUERY_PARSERS[_kind] = _pattern(_kind)


@query_parser("fuzzy")
def _fuzzy(body: Any) -> Query:
    name, spec = _single_field("fuzzy", body)
    if not isinstance(spec, dict):
        return Fuzzy(name, str(spec))
    _check_keys(
        "fuzzy", spec, {"value", "fuzziness", "prefix_length", "max_expansions", "transpositions", "boost", "rewrite"}
    )
    return Fuzzy(
        name,
        str(spec.get("value", "")),
        str(spec.get("fuzziness", "AUTO")),
        _number("fuzzy", spec, "prefix_length", 0, int),
        bool(spec.get("transpositions", True)),
        _boost("fuzzy", spec),
    )


@query_parser("bool")
def _bool(body: Any) -> Query:
    body = _object("bool", body)
    _check_keys(
        "bool", body, {"must", "should", "filter", "must_not", "minimum_should_match", "boost", "adjust_pure_negative"}
    )
    return Bool(
        _clauses("must", body.get("must")),
        _clauses("should", body.get("should")),
        _clauses("filter", body.get("filter")),
        _clauses("must_not", body.get("must_not")),
        _msm(body.get("minimum_should_match")),
        _boost("bool", body),
    )


@query_parser("constant_score")
def _constant_score(body: Any) -> Query:
    body = _object("constant_score", body)
    _check_keys("constant_score", body, {"filter", "boost"})
    if "filter" not in body:
        raise ParsingError("[constant_score] requires a 'filter' element")
    return ConstantScore(parse_query(body["filter"]), _boost("constant_score", body))


@query_parser("dis_max")
def _dis_max(body: Any) -> Query:
    body = _object("dis_max", body)
    _check_keys("dis_max", body, {"queries", "tie_breaker", "boost"})
    if not body.get("queries"):
        raise ParsingError("[dis_max] requires 'queries' field with at least one clause")
    return DisMax(
        _clauses("queries", body["queries"]), _number("dis_max", body, "tie_breaker", 0.0), _boost("dis_max", body)
    )


@query_parser("function_score")
def _function_score(body: Any) -> Query:
    body = _object("function_score", body)
    _check_keys(
        "function_score",
        body,
        {
            "query",
            "functions",
            "score_mode",
            "boost_mode",
            "max_boost",
            "min_score",
            "boost",
            "weight",
            "field_value_factor",
            "filter",
        },
    )
    query = parse_query(body["query"]) if "query" in body else MatchAll()
    functions: list[Function] = []
    if "weight" in body or "field_value_factor" in body:
        functions.append(_function(body, top_level=True))
    for spec in body.get("functions", []) or []:
        if not isinstance(spec, dict):
            raise ParsingError("failed to parse [functions] array: malformed query, expected a [START_OBJECT]")
        functions.append(_function(spec, top_level=False))
    return FunctionScore(
        query,
        tuple(functions),
        str(body.get("score_mode", "multiply")),
        str(body.get("boost_mode", "multiply")),
        _number("function_score", body, "max_boost", None),
        _number("function_score", body, "min_score", None),
        _boost("function_score", body),
    )


_FUNCTIONS_UNSUPPORTED = ("script_score", "random_score", "gauss", "linear", "exp")


def _function(spec: dict[str, Any], *, top_level: bool) -> Function:
    for name in _FUNCTIONS_UNSUPPORTED:
        if name in spec:
            raise ParsingError(f"function [{name}] of [function_score] is not supported yet")
    if not top_level:
        for key in spec:
            if key not in ("filter", "weight", "field_value_factor"):
                raise ParsingError(f"failed to parse [function_score] query: unknown function [{key}]")
    factor = spec.get("field_value_factor")
    if factor is not None and (not isinstance(factor, dict) or "field" not in factor):
        raise ParsingError("[field_value_factor] required field 'field' missing")
    return Function(
        parse_query(spec["filter"]) if spec.get("filter") is not None and not top_level else None,
        _number("function_score", spec, "weight", None),
        factor,
    )


@query_parser("query_string")
def _query_string(body: Any) -> Query:
    return _qs("query_string", body, simple=False)


@query_parser("simple_query_string")
def _simple_query_string(body: Any) -> Query:
    return _qs("simple_query_string", body, simple=True)


def _qs(kind: str, body: Any, *, simple: bool) -> Query:
    body = _object(kind, body)
    if "query" not in body:
        raise ParsingError(f"[{kind}] must be provided with a [query]")
    fields = parse_fields(body.get("fields") or body.get("default_field") or [])
    return QueryString(
        str(body["query"]),
        fields,
        str(body.get("default_operator", "or")).lower(),
        simple,
        body.get("analyzer"),
        _msm(body.get("minimum_should_match")),
        _boost(kind, body),
        {k: v for k, v in body.items() if k not in ("query", "fields", "default_field", "default_operator")},
    )


NESTED_SCORE_MODES = ("avg", "max", "min", "sum", "none")


@query_parser("nested")
def _nested(body: Any) -> Query:
    body = _object("nested", body)
    _check_keys("nested", body, {"path", "query", "score_mode", "ignore_unmapped", "inner_hits", "boost"})
    if "path" not in body:
        raise ParsingError("[nested] requires 'path' field")
    if "query" not in body:
        raise ParsingError("[nested] requires 'query' field")
    mode = str(body.get("score_mode", "avg")).lower()
    if mode not in NESTED_SCORE_MODES:
        raise IllegalArgumentError(f"No score mode for child query [{body['score_mode']}] found")
    inner_hits = body.get("inner_hits")
    if inner_hits is not None and not isinstance(inner_hits, dict):
        raise ParsingError("[nested] failed to parse field [inner_hits]")
    return Nested(
        str(body["path"]),
        parse_query(body["query"]),
        mode,
        body.get("ignore_unmapped") in (True, "true"),
        inner_hits,
        _boost("nested", body),
    )
