"""A hit's `fields`: the search body's `fields` (mapped leaves from `_source`, formatted by the mapping),
`docvalue_fields` (sorted doc values) and `stored_fields` (`_none_` drops `_id` and `_source`), on the general path,
the knn fast path and a hybrid query."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opensearchpy import OpenSearch

from tests.conftest import RawHttp, assert_error

INDEX = "fields-docs"
MAPPINGS = {
    "properties": {
        "title": {"type": "text", "fields": {"raw": {"type": "keyword", "ignore_above": 12}}},
        "text": {"type": "text"},
        "text_extra": {"type": "keyword"},
        "tags": {"type": "keyword", "null_value": "none"},
        "n": {"type": "integer"},
        "ratio": {"type": "float"},
        "ok": {"type": "boolean"},
        "day": {"type": "date"},
        "when": {"type": "date", "format": "yyyy/MM/dd||epoch_millis"},
        "obj": {"properties": {"a": {"type": "keyword"}, "b": {"type": "integer"}}},
        "vec": {"type": "knn_vector", "dimension": 3, "space_type": "l2"},
        "blob": {"type": "object", "enabled": False},
    }
}
DOCS: dict[str, dict[str, Any]] = {
    "1": {
        "title": "short title",
        "text": "alpha beta",
        "text_extra": "x",
        "tags": ["b", "a", "b"],
        "n": "7",
        "ratio": 1.1,
        "ok": "true",
        "day": "2024-03-05",
        "when": "2024/01/02",
        "obj": [{"a": "k1", "b": 2}, {"a": "k2", "b": 1}],
        "vec": [1.0, 2.0, 3.0],
        "blob": {"inner": "hidden"},
    },
    "2": {
        "title": "a much longer title here",
        "text": "alpha gamma",
        "tags": None,
        "n": 3,
        "day": 86400000,
        "vec": [0.0, 0.0, 1.0],
    },
}


@pytest.fixture(scope="module")
def docs(client: OpenSearch) -> Iterator[str]:
    client.indices.delete(index=INDEX, ignore_unavailable=True)
    client.indices.create(index=INDEX, body={"settings": {"index.knn": True}, "mappings": MAPPINGS})
    for doc_id, doc in DOCS.items():
        client.index(index=INDEX, id=doc_id, body=doc)
    client.indices.refresh(index=INDEX)
    yield INDEX
    client.indices.delete(index=INDEX, ignore_unavailable=True)


def _hits(client: OpenSearch, body: dict[str, Any], **params: Any) -> dict[str, dict[str, Any]]:
    """Hits by `_id` of a search that matches by ids (so every hit has `_id`)."""
    found = client.search(index=INDEX, body=body, params=params or None)["hits"]["hits"]
    return {h["_id"]: h for h in found}


def _fields(client: OpenSearch, spec: list[Any], doc_id: str = "1", **extra: Any) -> dict[str, Any]:
    body = {"query": {"ids": {"values": [doc_id]}}, "_source": False, "fields": spec, **extra}
    [hit] = _hits(client, body).values()
    assert "_source" not in hit
    return hit.get("fields", {})


# ---- fields ------------------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("docs")
def test_fields_with_source_off_as_the_rerank_tutorials_ask(client: OpenSearch) -> None:
    got = _fields(client, ["title", "text"])
    assert got == {"title": ["short title"], "text": ["alpha beta"]}


@pytest.mark.usefixtures("docs")
def test_values_are_parsed_by_the_mapping_and_always_arrays(client: OpenSearch) -> None:
    got = _fields(client, ["n", "ok", "ratio", "tags"])
    # "7" is an integer field's 7, "true" a boolean's true, a float 1.1 stays 1.1; arrays keep order and repeats
    assert got == {"n": [7], "ok": [True], "ratio": [1.1], "tags": ["b", "a", "b"]}


@pytest.mark.usefixtures("docs")
def test_dates_in_the_mapping_format_or_the_requested_one(client: OpenSearch) -> None:
    assert _fields(client, ["day", "when"]) == {"day": ["2024-03-05T00:00:00.000Z"], "when": ["2024/01/02"]}
    asked = [{"field": "day", "format": "epoch_millis"}, {"field": "when", "format": "strict_date"}]
    assert _fields(client, asked) == {"day": ["1709596800000"], "when": ["2024-01-02"]}
    assert _fields(client, ["day"], doc_id="2") == {"day": ["1970-01-02T00:00:00.000Z"]}  # a number: epoch millis


@pytest.mark.usefixtures("docs")
def test_wildcards_match_mapped_leaves_and_multi_fields(client: OpenSearch) -> None:
    assert _fields(client, ["text*"]) == {"text": ["alpha beta"], "text_extra": ["x"]}
    assert _fields(client, ["obj.*"]) == {"obj.a": ["k1", "k2"], "obj.b": [2, 1]}
    assert _fields(client, ["title*"]) == {"title": ["short title"], "title.raw": ["short title"]}
    # ignore_above: the multi-field keeps no value for a long title, the text field does
    assert _fields(client, ["title*"], doc_id="2") == {"title": ["a much longer title here"]}


@pytest.mark.usefixtures("docs")
def test_knn_vector_comes_back_as_the_vector(client: OpenSearch) -> None:
    assert _fields(client, ["vec"]) == {"vec": [1.0, 2.0, 3.0]}


@pytest.mark.usefixtures("docs")
def test_null_value_stands_for_null_and_missing_fields_are_left_out(client: OpenSearch) -> None:
    got = _fields(client, ["tags", "text_extra", "ok", "nope", "obj"], doc_id="2")
    assert got == {"tags": ["none"]}  # `obj` names an object, not a leaf: OpenSearch returns nothing for it


@pytest.mark.usefixtures("docs")
def test_unmapped_only_with_include_unmapped(client: OpenSearch) -> None:
    assert _fields(client, ["blob.*"]) == {}
    assert _fields(client, [{"field": "blob.*", "include_unmapped": True}]) == {"blob.inner": ["hidden"]}


@pytest.mark.usefixtures("docs")
def test_fields_are_independent_of_source_filtering(client: OpenSearch) -> None:
    body = {"query": {"ids": {"values": ["1"]}}, "_source": {"includes": ["n"]}, "fields": ["text"]}
    hit = _hits(client, body)["1"]
    assert hit["_source"] == {"n": "7"}
    assert hit["fields"] == {"text": ["alpha beta"]}
    # without `fields`, no `fields` key at all
    assert "fields" not in _hits(client, {"query": {"ids": {"values": ["1"]}}})["1"]


@pytest.mark.usefixtures("docs")
def test_malformed_fields_are_parsing_errors(http: RawHttp) -> None:
    status, body = http.request("POST", f"/{INDEX}/_search", {"fields": "title"})
    assert status == 400
    assert_error(body, 400, "parsing_exception", "Unknown key for a VALUE_STRING in [fields].")
    status, body = http.request("POST", f"/{INDEX}/_search", {"fields": [{"field": "title", "nope": 1}]})
    assert_error(body, 400, "parsing_exception", "[docvalues_field] unknown field [nope]")


# ---- docvalue_fields ---------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("docs")
def test_docvalue_fields_are_sorted_doc_values(client: OpenSearch) -> None:
    body = {
        "query": {"ids": {"values": ["1"]}},
        "docvalue_fields": ["tags", "obj.b", "ratio", "ok", "day", {"field": "when", "format": "epoch_millis"}],
    }
    hit = _hits(client, body)["1"]
    assert hit["_source"] == DOCS["1"]  # docvalue_fields leave `_source` as it was
    assert hit["fields"] == {
        "tags": ["a", "b"],  # a keyword's doc values are a sorted set
        "obj.b": [1, 2],
        "ratio": [pytest.approx(1.100000023841858, abs=0)],  # a float column widens to double
        "ok": [True],
        "day": ["2024-03-05T00:00:00.000Z"],
        "when": ["1704153600000"],
    }


@pytest.mark.usefixtures("docs")
def test_docvalue_fields_and_fields_merge(client: OpenSearch) -> None:
    body = {"query": {"ids": {"values": ["1"]}}, "_source": False, "fields": ["text"], "docvalue_fields": ["n"]}
    assert _hits(client, body)["1"]["fields"] == {"text": ["alpha beta"], "n": [7]}


@pytest.mark.usefixtures("docs")
def test_docvalue_fields_on_a_text_field_is_refused(http: RawHttp) -> None:
    status, body = http.request("POST", f"/{INDEX}/_search", {"docvalue_fields": ["text"]})
    assert status == 400
    assert_error(body, 400, "illegal_argument_exception", "set fielddata=true on [text]")


@pytest.mark.usefixtures("docs")
def test_docvalue_fields_as_url_parameter(client: OpenSearch) -> None:
    hits = _hits(client, {"query": {"ids": {"values": ["1"]}}}, docvalue_fields="n,tags")
    assert hits["1"]["fields"] == {"n": [7], "tags": ["a", "b"]}


# ---- stored_fields -----------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("docs")
def test_stored_fields_none_drops_id_and_source(client: OpenSearch) -> None:
    body = {"query": {"ids": {"values": ["1", "2"]}}, "stored_fields": "_none_"}
    hits = client.search(index=INDEX, body=body)["hits"]["hits"]
    assert len(hits) == 2
    for hit in hits:
        assert set(hit) == {"_index", "_score"}, hit


@pytest.mark.usefixtures("docs")
def test_stored_fields_none_refuses_source_and_fields(http: RawHttp) -> None:
    status, body = http.request("POST", f"/{INDEX}/_search", {"stored_fields": "_none_", "_source": True})
    assert_error(body, 400, "action_request_validation_exception", "[stored_fields] cannot be disabled if [_source]")
    status, body = http.request("POST", f"/{INDEX}/_search", {"stored_fields": ["_none_"], "fields": ["n"]})
    assert status == 400
    assert_error(body, 400, "action_request_validation_exception", "when using the [fields] option")


@pytest.mark.usefixtures("docs")
def test_stored_fields_list_turns_source_off_unless_named(client: OpenSearch) -> None:
    hit = _hits(client, {"query": {"ids": {"values": ["1"]}}, "stored_fields": []})["1"]
    assert set(hit) == {"_index", "_id", "_score"}
    hit = _hits(client, {"query": {"ids": {"values": ["1"]}}, "stored_fields": ["_source"]})["1"]
    assert hit["_source"] == DOCS["1"]


# ---- other search paths ------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("docs")
def test_knn_fast_path_hits_carry_fields(client: OpenSearch) -> None:
    body = {
        "size": 2,
        "query": {"knn": {"vec": {"vector": [1.0, 2.0, 3.0], "k": 2}}},
        "_source": False,
        "fields": ["text", "vec"],
    }
    hits = client.search(index=INDEX, body=body)["hits"]["hits"]
    assert [h["_id"] for h in hits] == ["1", "2"]
    assert hits[0]["fields"] == {"text": ["alpha beta"], "vec": [1.0, 2.0, 3.0]}
    assert hits[1]["fields"] == {"text": ["alpha gamma"], "vec": [0.0, 0.0, 1.0]}
    assert all("_source" not in h for h in hits)
    # and `_none_` there too
    body = {"size": 2, "query": body["query"], "stored_fields": "_none_"}
    hits = client.search(index=INDEX, body=body)["hits"]["hits"]
    assert [set(h) for h in hits] == [{"_index", "_score"}] * 2


@pytest.mark.usefixtures("docs")
def test_hybrid_hits_carry_fields(client: OpenSearch) -> None:
    body = {
        "query": {
            "hybrid": {
                "queries": [
                    {"match": {"text": "gamma"}},
                    {"knn": {"vec": {"vector": [1.0, 2.0, 3.0], "k": 2}}},
                ]
            }
        },
        "_source": False,
        "fields": ["text"],
        "docvalue_fields": ["n"],
        "search_pipeline": {
            "phase_results_processors": [{"normalization-processor": {"normalization": {"technique": "min_max"}}}]
        },
    }
    hits = client.search(index=INDEX, body=body)["hits"]["hits"]
    assert {h["_id"]: h["fields"] for h in hits} == {
        "1": {"text": ["alpha beta"], "n": [7]},
        "2": {"text": ["alpha gamma"], "n": [3]},
    }
    assert all("_source" not in h for h in hits)
