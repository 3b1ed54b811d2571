"""Date printing and request parsing of `fields` / `docvalue_fields` / `stored_fields`."""

from __future__ import annotations

import pytest

from mlsearch.engine.hit_fields import FieldAndFormat, format_date, parse_fetch_fields
from mlsearch.errors import ParsingError

MILLIS = 1704164645123  # 2024-01-02T03:04:05.123Z


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        (None, "2024-01-02T03:04:05.123Z"),
        ("strict_date_optional_time||epoch_millis", "2024-01-02T03:04:05.123Z"),
        ("epoch_millis", "1704164645123"),
        ("epoch_second", "1704164645.123"),
        ("strict_date", "2024-01-02"),
        ("basic_date", "20240102"),
        ("yyyy/MM/dd HH:mm:ss.SSS", "2024/01/02 03:04:05.123"),
        ("yyyy-MM-dd'T'HH:mm||epoch_millis", "2024-01-02T03:04"),
    ],
)
def test_format_date(fmt: str | None, expected: str) -> None:
    assert format_date(MILLIS, fmt) == expected


def test_parse_forms() -> None:
    fetch = parse_fetch_fields(
        {"fields": ["a", {"field": "d", "format": "epoch_millis"}], "stored_fields": "_none_"},
        {"docvalue_fields": "x,y"},
    )
    assert fetch.fields == (FieldAndFormat("a"), FieldAndFormat("d", "epoch_millis"))
    assert fetch.docvalue_fields == (FieldAndFormat("x"), FieldAndFormat("y"))
    assert fetch.stored_none and fetch.reads_source
    assert not parse_fetch_fields({}, {}).reads_source


@pytest.mark.parametrize(
    "body",
    [{"fields": {"a": 1}}, {"docvalue_fields": "a"}, {"fields": [{"format": "x"}]}, {"stored_fields": ["_none_", "a"]}],
)
def test_malformed(body: dict[str, object]) -> None:
    with pytest.raises(ParsingError):
        parse_fetch_fields(body, {})
