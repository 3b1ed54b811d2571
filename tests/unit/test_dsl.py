"""The query DSL parser: OpenSearch's parsing errors, and (hypothesis) it never fails with anything but them."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlsearch.engine.query import dsl
from mlsearch.engine.query.compile import minimum_should_match
from mlsearch.engine.search import parse_request
from mlsearch.errors import MLSearchError, ParsingError


def test_parses_common_queries() -> None:
    q = dsl.parse_query(
        {
            "bool": {
                "must": {"match": {"t": {"query": "a b", "operator": "AND"}}},
                "filter": [{"term": {"k": "x"}}],
                "minimum_should_match": 1,
            }
        }
    )
    assert isinstance(q, dsl.Bool) and q.must[0] == dsl.Match("t", "a b", "and")
    assert q.filter == (dsl.Term("k", "x"),) and q.minimum_should_match == "1"
    assert dsl.parse_query({"range": {"n": {"from": 1, "to": 5, "include_upper": False}}}) == dsl.Range(
        "n", gte=1, lt=5
    )
    mm = dsl.parse_query({"multi_match": {"query": "x", "fields": ["a^2", "b"], "tie_breaker": 0.3}})
    assert isinstance(mm, dsl.MultiMatch) and mm.fields == (("a", 2.0), ("b", 1.0)) and mm.tie_breaker == 0.3
    fs = dsl.parse_query({"function_score": {"field_value_factor": {"field": "n", "factor": 2}, "boost_mode": "sum"}})
    assert isinstance(fs, dsl.FunctionScore) and fs.functions[0].field_value_factor == {"field": "n", "factor": 2}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"foo": {}}, "unknown query [foo]"),
        ({}, "query malformed, empty clause found"),
        ([], "query malformed, must start with start_object"),
        ({"match": {"a": 1, "b": 2}}, "[match] query doesn't support multiple fields, found [a] and [b]"),
        ({"term": {"a": [1, 2]}}, "[term] query does not support array of values"),
        ({"bool": {"shoud": []}}, "[bool] query does not support [shoud]"),
        (
            {"match_all": {}, "term": {"a": 1}},
            "[match_all] malformed query, expected [END_OBJECT] but found [FIELD_NAME]",
        ),
        ({"multi_match": {"query": "x", "type": "nope"}}, "failed to parse [multi_match] query type [nope]"),
    ],
)
def test_parsing_errors(body: Any, reason: str) -> None:
    with pytest.raises(ParsingError) as info:
        dsl.parse_query(body)
    assert reason in info.value.reason


@pytest.mark.parametrize(
    ("spec", "optional", "expected"),
    [
        (None, 3, 0),
        ("2", 3, 2),
        ("-1", 3, 2),
        ("75%", 4, 3),
        ("-25%", 4, 3),
        ("67%", 3, 2),
        ("5", 3, 3),
        ("2<75%", 2, 2),
        ("2<75%", 4, 3),
        ("3<-1 5<50%", 8, 4),
    ],
)
def test_minimum_should_match(spec: str | None, optional: int, expected: int) -> None:
    assert minimum_should_match(spec, optional) == expected


json_leaf = st.none() | st.booleans() | st.integers(-5, 5) | st.floats(allow_nan=False, width=32) | st.text(max_size=5)
json_value = st.recursive(
    json_leaf,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "match",
                    "term",
                    "bool",
                    "must",
                    "query",
                    "field",
                    "value",
                    "gte",
                    "boost",
                    "fields",
                    "filter",
                    "should",
                    "t",
                    "n",
                    "range",
                    "exists",
                    "ids",
                    "values",
                    "slop",
                    "operator",
                ]
            ),
            inner,
            max_size=3,
        )
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted(dsl.QUERY_PARSERS)), json_value, min_size=1, max_size=2))
def test_parser_fails_only_with_opensearch_errors(body: dict[str, Any]) -> None:
    try:
        dsl.parse_query(body)
    except MLSearchError as exc:
        assert exc.status == 400


@settings(max_examples=150, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "from",
                "size",
                "sort",
                "_source",
                "track_total_hits",
                "min_score",
                "search_after",
                "query",
                "explain",
                "version",
            ]
        ),
        json_value,
        max_size=3,
    )
)
def test_search_body_fails_only_with_opensearch_errors(body: dict[str, Any]) -> None:
    try:
        parse_request(body)
    except MLSearchError as exc:
        assert exc.status == 400


_KEYS = [
    "query",
    "operator",
    "minimum_should_match",
    "fuzziness",
    "prefix_length",
    "analyzer",
    "slop",
    "boost",
    "value",
    "values",
    "fields",
    "type",
    "tie_breaker",
    "gte",
    "lt",
    "from",
    "to",
    "include_lower",
    "format",
    "field",
    "must",
    "should",
    "filter",
    "must_not",
    "queries",
    "functions",
    "weight",
    "field_value_factor",
    "score_mode",
    "max_boost",
    "min_score",
    "case_insensitive",
    "transpositions",
    "default_operator",
]
options = st.dictionaries(st.sampled_from(_KEYS), json_value, max_size=4)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(sorted(dsl.QUERY_PARSERS)), options, st.booleans())
def test_parser_options_fail_only_with_opensearch_errors(kind: str, opts: dict[str, Any], per_field: bool) -> None:
    try:
        dsl.parse_query({kind: {"f": opts} if per_field else opts})
    except MLSearchError as exc:
        assert exc.status == 400
