"""`dynamic_templates`: the mapping a field gets the first time a document brings it."""

from __future__ import annotations

from typing import Any

import pytest
from opensearchpy import OpenSearch, RequestError

TEMPLATES = [
    {"ids": {"match": "*_id", "match_mapping_type": "string", "mapping": {"type": "keyword"}}},
    {"counts": {"match_pattern": "regex", "match": "^n_\\w+$", "mapping": {"type": "integer"}}},
    {"meta": {"path_match": "meta.*", "unmatch": "note", "mapping": {"type": "keyword", "meta": {"src": "{name}"}}}},
    {"floats": {"match_mapping_type": "double", "mapping": {"type": "{dynamic_type}", "doc_values": True}}},
]


def _props(client: OpenSearch, index: str) -> dict[str, Any]:
    return client.indices.get_mapping(index=index)[index]["mappings"]["properties"]


def test_first_matching_template_maps_new_fields(client: OpenSearch, index_name: str) -> None:
    client.indices.create(index=index_name, body={"mappings": {"dynamic_templates": TEMPLATES}})
    doc = {"user_id": "U-1", "n_items": 3, "meta": {"lang": "en", "note": "free text"}, "ratio": 0.5, "title": "Hi"}
    client.index(index=index_name, id="1", body=doc, refresh=True)
    props = _props(client, index_name)
    assert props["user_id"] == {"type": "keyword"}
    assert props["n_items"] == {"type": "integer"}
    assert props["meta"]["properties"]["lang"] == {"type": "keyword", "meta": {"src": "lang"}}
    assert props["meta"]["properties"]["note"]["type"] == "text"  # unmatched: plain dynamic mapping
    assert props["ratio"] == {"type": "float", "doc_values": True}
    assert props["title"]["type"] == "text"
    # The mapping is used for searching: a keyword matches whole values only, the integer ranges.
    assert client.count(index=index_name, body={"query": {"term": {"user_id": "U-1"}}})["count"] == 1
    assert client.count(index=index_name, body={"query": {"range": {"n_items": {"gte": 3}}}})["count"] == 1
    # A value the template's type cannot take is a mapper_parsing_exception, as for any mapped field.
    with pytest.raises(RequestError) as err:
        client.index(index=index_name, id="2", body={"n_other": "three"})
    assert err.value.error == "mapper_parsing_exception"


def test_put_mapping_replaces_templates_by_name_and_appends_new_ones(client: OpenSearch, index_name: str) -> None:
    client.indices.create(index=index_name, body={"mappings": {"dynamic_templates": TEMPLATES[:2]}})
    replaced = {"ids": {"match": "*_id", "mapping": {"type": "long"}}}
    added = {"strings": {"match_mapping_type": "string", "mapping": {"type": "keyword"}}}
    client.indices.put_mapping(index=index_name, body={"dynamic_templates": [replaced, added]})
    got = client.indices.get_mapping(index=index_name)[index_name]["mappings"]["dynamic_templates"]
    assert [next(iter(t)) for t in got] == ["ids", "counts", "strings"]
    assert got[0] == replaced
    client.index(index=index_name, id="1", body={"shop_id": 7, "city": "Oslo"}, refresh=True)
    props = _props(client, index_name)
    assert props["shop_id"] == {"type": "long"}
    assert props["city"] == {"type": "keyword"}


@pytest.mark.parametrize(
    ("templates", "reason"),
    [
        ({"ids": {}}, "An array of named objects is expected"),
        ([{"a": {"match": "x", "mapping": {}}, "b": {"mapping": {}}}], "An array of named objects is expected"),
        ([{"a": {"match": "x", "colour": "red", "mapping": {}}}], "Illegal dynamic template parameter: [colour]"),
        ([{"a": {"match": "x"}}], "must have a [mapping] object"),
        ([{"a": {"match_mapping_type": "text", "mapping": {}}}], "No field type matched on [text]"),
    ],
)
def test_malformed_templates_are_refused(client: OpenSearch, index_name: str, templates: Any, reason: str) -> None:
    with pytest.raises(RequestError) as err:
        client.indices.create(index=index_name, body={"mappings": {"dynamic_templates": templates}})
    assert err.value.error == "mapper_parsing_exception"
    assert reason in err.value.info["error"]["reason"]
    assert not client.indices.exists(index=index_name)
