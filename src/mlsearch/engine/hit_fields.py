"""A hit's `fields`: the search body's `fields`, `docvalue_fields` and `stored_fields`, read from `_source` through
the index mapping, as OpenSearch's fetch phase returns them (every value in an array, dates formatted)."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from mlsearch.engine import dates
from mlsearch.engine.mapping import Field, Mappings, convert
from mlsearch.errors import IllegalArgumentError, MapperParsingError, ParsingError

NONE = "_none_"
# Types whose doc values OpenSearch can return: keywords, numbers, dates, booleans and ips.
_DOCVALUE_TYPES = {"keyword", "integer", "float", "boolean", "date", "ip"}
_FLOAT32 = {"float", "half_float"}
_NAMED_FORMATS = {
    "strict_date_optional_time": "%Y-%m-%dT%H:%M:%S.{ms}Z",
    "date_optional_time": "%Y-%m-%dT%H:%M:%S.{ms}Z",
    "strict_date_time": "%Y-%m-%dT%H:%M:%S.{ms}Z",
    "date_time": "%Y-%m-%dT%H:%M:%S.{ms}Z",
    "strict_date": "%Y-%m-%d",
    "date": "%Y-%m-%d",
    "strict_year_month_day": "%Y-%m-%d",
    "year_month_day": "%Y-%m-%d",
    "basic_date": "%Y%m%d",
    "strict_date_hour_minute_second": "%Y-%m-%dT%H:%M:%S",
    "date_hour_minute_second": "%Y-%m-%dT%H:%M:%S",
    "year": "%Y",
    "strict_year": "%Y",
}
_JAVA_TOKENS = [
    ("yyyy", "%Y"),
    ("uuuu", "%Y"),
    ("MM", "%m"),
    ("dd", "%d"),
    ("HH", "%H"),
    ("mm", "%M"),
    ("ss", "%S"),
    ("SSS", "{ms}"),
    ("XXX", "+00:00"),
    ("Z", "+0000"),
    ("'T'", "T"),
]


@dataclass(frozen=True, slots=True)
class FieldAndFormat:
    """One entry of `fields` / `docvalue_fields`: a name or wildcard pattern, and an optional output format."""

    field: str
    format: str | None = None
    include_unmapped: bool = False


@dataclass(frozen=True, slots=True)
class FetchFields:
    """What a search asks its hits to carry besides `_source`."""

    fields: tuple[FieldAndFormat, ...] | None = None
    docvalue_fields: tuple[FieldAndFormat, ...] = ()
    stored_fields: tuple[str, ...] | None = None

    @property
    def stored_none(self) -> bool:
        """`stored_fields: "_none_"`: no stored field at all, not even `_id`."""
        return self.stored_fields == (NONE,)

    @property
    def reads_source(self) -> bool:
        """Whether the hits' values come from their `_source` (so it must be loaded even when not returned)."""
        return bool(self.fields or self.docvalue_fields or self._stored_names)

    @property
    def _stored_names(self) -> tuple[str, ...]:
        return tuple(n for n in self.stored_fields or () if n not in (NONE, "_source", "_id", "*"))

    def reader(self, mappings: Mappings) -> FieldReader:
        """The fields of one index these requests resolve to (wildcards matched against its mapping)."""
        return FieldReader(
            _resolve(mappings, self.fields or (), source_based=True)
            + _resolve(mappings, self.docvalue_fields, source_based=False)
            + _stored(mappings, self._stored_names),
            tuple(f for f in self.fields or () if f.include_unmapped),
            mappings,
        )


def parse_fetch_fields(body: Mapping[str, Any], params: Mapping[str, str]) -> FetchFields:
    """`fields`, `docvalue_fields` and `stored_fields` of a search body (the last two also as URL parameters)."""
    fields = _field_list(body["fields"], "fields") if body.get("fields") is not None else None
    docvalue = _field_list(body.get("docvalue_fields"), "docvalue_fields")
    if "docvalue_fields" in params:
        docvalue += tuple(FieldAndFormat(name) for name in _split(params["docvalue_fields"]))
    stored = _stored_list(params["stored_fields"] if "stored_fields" in params else body.get("stored_fields"))
    return FetchFields(fields, docvalue, stored)


def _split(value: str) -> list[str]:
    return [part for part in value.split(",") if part]


def _field_list(spec: Any, key: str) -> tuple[FieldAndFormat, ...]:
    if spec is None:
        return ()
    if not isinstance(spec, list):
        raise ParsingError(f"Unknown key for a {_token(spec)} in [{key}].")
    return tuple(_field_and_format(item) for item in spec)


def _field_and_format(item: Any) -> FieldAndFormat:
    if isinstance(item, str | int | float) and not isinstance(item, bool):
        return FieldAndFormat(str(item))
    if not isinstance(item, dict):
        raise ParsingError(f"Expected [VALUE_STRING] or [START_OBJECT] but found [{_token(item)}]")
    for key in item:
        # `include_unmapped` is Elasticsearch 7.11's; OpenSearch rejects it, we accept it (it breaks no client).
        if key not in ("field", "format", "include_unmapped"):
            raise ParsingError(f"[docvalues_field] unknown field [{key}]")
    if not isinstance(item.get("field"), str):
        raise ParsingError("Required [field]")
    fmt = item.get("format")
    return FieldAndFormat(item["field"], None if fmt is None else str(fmt), item.get("include_unmapped") is True)


def _stored_list(spec: Any) -> tuple[str, ...] | None:
    if spec is None:
        return None
    names = tuple(_split(spec)) if isinstance(spec, str) else spec
    if not isinstance(names, list | tuple) or not all(isinstance(n, str) for n in names):
        raise ParsingError("Expected [VALUE_STRING] or [START_ARRAY] in [stored_fields] but found [START_OBJECT]")
    if NONE in names and len(names) > 1:
        raise ParsingError("cannot combine _none_ with other fields")
    return tuple(names)


def _token(value: Any) -> str:
    if isinstance(value, dict):
        return "START_OBJECT"
    if isinstance(value, list):
        return "START_ARRAY"
    if isinstance(value, bool):
        return "VALUE_BOOLEAN"
    if isinstance(value, int | float):
        return "VALUE_NUMBER"
    return "VALUE_STRING"


# ---- resolution: request patterns -> mapped leaf fields of one index ----------------------------------------------


@dataclass(frozen=True, slots=True)
class _Wanted:
    leaf: Field
    format: str | None
    source_based: bool  # `fields` (source order, duplicates kept) or doc values (sorted, keywords deduplicated)


def _matching(mappings: Mappings, pattern: str) -> list[Field]:
    if "*" not in pattern:
        leaf = mappings.field(pattern)
        return [leaf] if leaf is not None else []
    return [leaf for path, leaf in mappings.fields.items() if fnmatch.fnmatchcase(path, pattern)]


def _resolve(mappings: Mappings, specs: Sequence[FieldAndFormat], *, source_based: bool) -> list[_Wanted]:
    out = []
    for spec in specs:
        if spec.format is not None:
            _check_format(spec.format)
        for leaf in _matching(mappings, spec.field):
            if not source_based:
                _check_doc_values(leaf)
                if leaf.base_type not in _DOCVALUE_TYPES:
                    continue
            out.append(_Wanted(leaf, spec.format, source_based))
    return out


def _stored(mappings: Mappings, names: Sequence[str]) -> list[_Wanted]:
    """Fields mapped with `store: true` (the others are ignored, as OpenSearch ignores them)."""
    return [
        _Wanted(leaf, None, True)
        for name in names
        for leaf in _matching(mappings, name)
        if leaf.params.get("store") in (True, "true")
    ]


def _check_doc_values(leaf: Field) -> None:
    if leaf.base_type == "text" and leaf.params.get("fielddata") not in (True, "true"):
        raise IllegalArgumentError(
            f"Text fields are not optimised for operations that require per-document field data like aggregations "
            f"and sorting, so these operations are disabled by default. Please use a keyword field instead. "
            f"Alternatively, set fielddata=true on [{leaf.path}] in order to load field data by uninverting the "
            f"inverted index. Note that this can use significant memory."
        )


def _check_format(fmt: str) -> None:
    try:
        dates.check_format(fmt, "")
    except MapperParsingError as exc:
        raise IllegalArgumentError(exc.reason) from None


# ---- reading one hit ---------------------------------------------------------------------------------------------


class FieldReader:
    """Reads the resolved fields of one index from a document's `_source`."""

    __slots__ = ("_mappings", "_unmapped", "_wanted")

    def __init__(self, wanted: list[_Wanted], unmapped: tuple[FieldAndFormat, ...], mappings: Mappings) -> None:
        self._wanted = wanted
        self._unmapped = unmapped
        self._mappings = mappings

    def read(self, source: Mapping[str, Any] | None) -> dict[str, list[Any]]:
        """`{field path: [values]}` for the fields that have a value in this document."""
        out: dict[str, list[Any]] = {}
        if not isinstance(source, Mapping):
            return out
        for wanted in self._wanted:
            values = _values(wanted, source)
            if values and wanted.leaf.path not in out:
                out[wanted.leaf.path] = values
        if self._unmapped:
            self._read_unmapped(source, out)
        return out

    def _read_unmapped(self, source: Mapping[str, Any], out: dict[str, list[Any]]) -> None:
        for path, value in _leaves(source, ""):
            if path in out or self._mappings.field(path) is not None or path.startswith("_"):
                continue
            if any(fnmatch.fnmatchcase(path, spec.field) for spec in self._unmapped):
                out.setdefault(path, []).append(value)


def _values(wanted: _Wanted, source: Mapping[str, Any]) -> list[Any]:
    leaf = wanted.leaf
    raw = list(_at_path(source, leaf.source_path.split(".")))
    if leaf.type == "knn_vector":
        return [v for v in raw if v is not None]  # the vector's numbers, as k-NN's fetcher returns them
    null_value = leaf.params.get("null_value")
    values = []
    for value in raw:
        if value is None:
            if null_value is None:
                continue
            value = null_value
        parsed = _parse(leaf, value)
        if parsed is not None:
            values.append(parsed)
    if not wanted.source_based:
        return _as_doc_values(leaf, values, wanted.format)
    return [_display(leaf, v, wanted.format) for v in values]


def _at_path(node: Any, parts: list[str]) -> Iterator[Any]:
    """Values at a dotted path, through arrays of objects and dotted keys (`{"a.b": 1}` is `a.b`)."""
    if isinstance(node, list):
        for item in node:
            yield from _at_path(item, parts)
        return
    if not parts:
        yield node
        return
    if not isinstance(node, Mapping):
        return
    for i in range(1, len(parts) + 1):
        key = ".".join(parts[:i])
        if key in node:
            yield from _at_path(node[key], parts[i:])


def _leaves(node: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    if isinstance(node, Mapping):
        for key, value in node.items():
            yield from _leaves(value, f"{prefix}{key}" if not prefix else f"{prefix}.{key}")
    elif isinstance(node, list):
        for item in node:
            yield from _leaves(item, prefix)
    elif node is not None and prefix:
        yield prefix, node


def _parse(leaf: Field, value: Any) -> Any:
    """A source value as the mapping reads it; None for one the index would not keep (malformed, over ignore_above)."""
    if leaf.base_type in ("text", "keyword", "integer", "float", "boolean", "date", "ip"):
        try:
            parsed = convert(leaf, value, "")
        except MapperParsingError:
            return None  # ignore_malformed kept the document; the value has no field value
        return parsed if isinstance(parsed, str | int | float | bool) else None
    return value


def _display(leaf: Field, value: Any, fmt: str | None) -> Any:
    base = leaf.base_type
    if base == "date":
        return format_date(value, fmt or leaf.date_format)
    if base == "float" and leaf.type in _FLOAT32:
        return np.float32(value)  # a Java float: printed as its shortest representation
    return value


def _as_doc_values(leaf: Field, values: list[Any], fmt: str | None) -> list[Any]:
    """Doc values are sorted; a keyword's are a set; float columns widen to double (1.1 reads 1.100000023841858)."""
    base = leaf.base_type
    ordered = sorted(set(values)) if base in ("keyword", "ip") else sorted(values)
    if base == "date":
        return [format_date(v, fmt or leaf.date_format) for v in ordered]
    if base == "float":
        return [float(np.float32(v)) if leaf.type in _FLOAT32 else float(v) for v in ordered]
    return ordered


def format_date(millis: int, fmt: str | None) -> str:
    """Epoch milliseconds printed in a date format (the first of `a||b`), UTC."""
    first = (fmt or dates.DEFAULT_FORMAT).split("||")[0]
    if first == "epoch_millis":
        return str(millis)
    if first == "epoch_second":
        return str(millis // 1000) if millis % 1000 == 0 else str(millis / 1000)
    pattern = _NAMED_FORMATS.get(first)
    if pattern is None:
        pattern = first
        for token, directive in _JAVA_TOKENS:
            pattern = pattern.replace(token, directive)
    moment = datetime.fromtimestamp(millis / 1000, tz=UTC)
    return moment.strftime(pattern.replace("{ms}", f"{millis % 1000:03d}"))
