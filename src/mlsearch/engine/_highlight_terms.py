"""What a query asks the highlighter to mark: matchers extracted from the query tree, each tied to field patterns.

A matcher keeps the query's raw text; it is analyzed for the field being highlighted (its search analyzer, or the
query's own `analyzer`), so `require_field_match: false` can apply a query on one field to another. Vector queries
(`knn`, `neural`, `neural_sparse`) and scoring-only parts (`must_not`, scripts) mark nothing, as in OpenSearch."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from mlsearch.engine.query import dsl

# The token syntax of `query_string` (engine/query/query_string.py): [+-] [field:] ("phrase" | word).
_QS_TOKEN = re.compile(r'\s*([+-]?)(?:([\w.*]+):)?("([^"]*)"|[^\s()"]+)')
_QS_OPERATORS = frozenset({"AND", "OR", "NOT", "&&", "||", "!"})


@dataclass(frozen=True, slots=True)
class Matcher:
    """One thing to mark in a field: analyzed terms, a phrase, a pattern or a fuzzy term."""

    fields: tuple[str, ...]  # field names or `*` patterns the query targets
    kind: str  # terms | phrase | exact | pattern | fuzzy
    text: str  # query text (terms, phrase), the exact value, a regular expression or the fuzzy term
    analyzer: str | None = None
    slop: int = 0
    prefix: bool = False  # phrase prefix: the last term matches as a prefix
    distance: int = 0  # fuzzy edits; also the fuzziness of a fuzzy `match`
    case_insensitive: bool = False

    def targets(self, field: str) -> bool:
        return any(p == field or ("*" in p and fnmatch.fnmatchcase(field, p)) for p in self.fields)


def matchers(query: dsl.Query | None) -> list[Matcher]:
    """The matchers of a query tree (empty for none or a vector query)."""
    return [] if query is None else list(_walk(query))


def _walk(query: Any) -> Iterator[Matcher]:
    if isinstance(query, dsl.Match):
        yield Matcher((query.field,), "terms", _text(query.query), query.analyzer, distance=_edits(query.fuzziness))
    elif isinstance(query, dsl.MatchPhrase):
        yield Matcher((query.field,), "phrase", _text(query.query), query.analyzer, query.slop, query.prefix)
    elif isinstance(query, dsl.MultiMatch):
        yield _multi_match(query)
    elif isinstance(query, dsl.Term):
        yield Matcher((query.field,), "exact", _text(query.value), case_insensitive=query.case_insensitive)
    elif isinstance(query, dsl.Terms):
        for value in query.values:
            yield Matcher((query.field,), "exact", _text(value))
    elif isinstance(query, dsl.Pattern):
        yield Matcher((query.field,), "pattern", _regex(query), case_insensitive=query.case_insensitive)
    elif isinstance(query, dsl.Fuzzy):
        yield Matcher((query.field,), "fuzzy", query.value, distance=_edits(query.fuzziness, query.value))
    elif isinstance(query, dsl.QueryString):
        yield from _query_string(query)
    else:
        yield from _children(query)


def _children(query: Any) -> Iterator[Matcher]:
    """Compound queries: every clause that can match (not `must_not`), whatever its type."""
    if isinstance(query, dsl.Bool):
        for clause in (*query.must, *query.should, *query.filter):
            yield from _walk(clause)
    elif isinstance(query, dsl.ConstantScore):
        yield from _walk(query.filter)
    elif isinstance(getattr(query, "queries", None), tuple):  # dis_max, and hybrid: its lexical sub-queries
        for clause in query.queries:
            yield from _walk(clause)
    elif isinstance(getattr(query, "query", None), dsl.Query):  # function_score, script_score, nested
        yield from _walk(query.query)


def _multi_match(q: dsl.MultiMatch) -> Matcher:
    fields = tuple(name for name, _ in q.fields) or ("*",)
    if q.type in ("phrase", "phrase_prefix"):
        return Matcher(fields, "phrase", _text(q.query), q.analyzer, q.slop, q.type == "phrase_prefix")
    return Matcher(fields, "terms", _text(q.query), q.analyzer, distance=_edits(q.fuzziness))


def _query_string(q: dsl.QueryString) -> Iterator[Matcher]:
    default_fields = tuple(name for name, _ in q.fields) or ("*",)
    negate = False
    for match in _QS_TOKEN.finditer(q.query):
        sign, field, raw, phrase = match.group(1), match.group(2), match.group(3), match.group(4)
        if phrase is None and raw in _QS_OPERATORS:
            negate = raw in ("NOT", "!")
            continue
        excluded, negate = sign == "-" or negate, False
        if excluded:
            continue
        fields = (field,) if field else default_fields
        if phrase is not None:
            yield Matcher(fields, "phrase", phrase, q.analyzer)
        elif raw.endswith("*"):
            yield Matcher(fields, "pattern", re.escape(raw.rstrip("*").lower()) + ".*", case_insensitive=True)
        else:
            yield Matcher(fields, "terms", raw, q.analyzer)


def _regex(q: dsl.Pattern) -> str:
    if q.kind == "prefix":
        return re.escape(q.value) + ".*"
    if q.kind == "wildcard":
        return "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in q.value)
    return q.value


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _edits(fuzziness: str | None, term: str = "") -> int:
    """Edit distance of a fuzziness setting; AUTO resolves per term at match time (-1 here) unless a term is given."""
    if fuzziness is None:
        return 0
    text = str(fuzziness).upper()
    if text.startswith("AUTO"):
        return auto_edits(term) if term else -1
    try:
        return min(2, int(float(text)))
    except ValueError:
        return 0


def auto_edits(term: str) -> int:
    return 0 if len(term) < 3 else 1 if len(term) < 6 else 2
