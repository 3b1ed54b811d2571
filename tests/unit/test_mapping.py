"""Mappings: parsing errors, merges, dynamic fields and document values."""

from __future__ import annotations

import pytest

from mlsearch.engine.mapping import Mappings, parse_document
from mlsearch.errors import IllegalArgumentError, MapperParsingError


def test_parse_and_lookup() -> None:
    m = Mappings.parse({"properties": {"t": {"type": "text"}, "o": {"properties": {"k": {"type": "keyword"}}}}})
    assert m.type_of("t") == "text" and m.type_of("o.k") == "keyword"
    assert [f.path for f in m.fields_matching("o.*")] == ["o.k"]
    assert m.to_json()["properties"]["o"]["properties"]["k"] == {"type": "keyword"}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"properties": {"f": {"type": "nope"}}}, "No handler for type [nope] declared on field [f]"),
        ({"properties": {"f": {"type": "keyword", "bogus": 1}}}, "unknown parameter [bogus]"),
    ],
)
def test_mapping_errors(body: dict, reason: str) -> None:
    with pytest.raises(MapperParsingError) as info:
        Mappings.parse(body)
    assert reason in info.value.reason


def test_merge_is_additive_and_refuses_type_changes() -> None:
    m = Mappings.parse({"properties": {"n": {"type": "long"}}})
    merged = m.merge(Mappings.parse({"properties": {"k": {"type": "keyword"}}}))
    assert merged.type_of("n") == "long" and merged.type_of("k") == "keyword"
    with pytest.raises(IllegalArgumentError) as info:
        m.merge(Mappings.parse({"properties": {"n": {"type": "text"}}}))
    assert "mapper [n] cannot be changed from type [long] to [text]" in info.value.reason


def test_dynamic_fields_and_values() -> None:
    parsed = parse_document(Mappings.parse({}), {"s": "hello", "i": 3, "f": 1.5, "b": True, "o": {"x": "y"}}, "1")
    assert parsed.mappings is not None
    assert parsed.mappings.type_of("i") == "long" and parsed.mappings.type_of("f") == "float"
    assert parsed.mappings.type_of("b") == "boolean" and parsed.mappings.type_of("o.x") == "text"
    assert parsed.values["i"] == [3]
    with pytest.raises(MapperParsingError):
        parse_document(Mappings.parse({"properties": {"n": {"type": "long"}}}), {"n": "abc"}, "1")
