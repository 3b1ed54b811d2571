"""Value processors: lowercase, uppercase, trim, split, join, convert, json, date."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from mlsearch.errors import IllegalArgumentError
from mlsearch.pipelines.base import Config, SimpleProcessor, registry
from mlsearch.pipelines.document import IngestDocument, java_type


@dataclass
class FieldTransform(SimpleProcessor):
    """Reads `field`, transforms it, writes `target_field` (default: the field itself)."""

    field: str
    target_field: str
    ignore_missing: bool
    fn: Callable[[Any], Any]
    type: str = "transform"

    def execute(self, doc: IngestDocument) -> IngestDocument:
        value = doc.get(self.field, None)
        if value is None:
            if self.ignore_missing:
                return doc
            if doc.has(self.field):
                raise IllegalArgumentError(f"field [{self.field}] is null, cannot {self.type} it.")
            raise IllegalArgumentError(f"field [{self.field}] not present as part of path [{self.field}]")
        doc.set(self.target_field, self.fn(value))
        return doc


def _strings(op: Callable[[str], str], field: str) -> Callable[[Any], Any]:
    def apply(value: Any) -> Any:
        if isinstance(value, list):
            return [apply(v) for v in value]
        if not isinstance(value, str):
            raise IllegalArgumentError(
                f"field [{field}] of type [{java_type(value)}] cannot be cast to [java.lang.String]"
            )
        return op(value)

    return apply


def _transform(config: Config, make: Callable[[str], Callable[[Any], Any]]) -> FieldTransform:
    field = config.string("field")
    target = config.string("target_field", field)
    return FieldTransform(field, target, config.boolean("ignore_missing", False), make(field), config.type)


for _name, _op in (("lowercase", str.lower), ("uppercase", str.upper), ("trim", str.strip)):
    registry.register(_name)(lambda config, op=_op: _transform(config, lambda f: _strings(op, f)))


@registry.register("split")
def _split(config: Config) -> FieldTransform:
    separator = re.compile(config.string("separator"))
    preserve = config.boolean("preserve_trailing", False)

    def make(field: str) -> Callable[[Any], Any]:
        def split(value: Any) -> list[str]:
            if not isinstance(value, str):
                raise IllegalArgumentError(
                    f"field [{field}] of type [{java_type(value)}] cannot be cast to [java.lang.String]"
                )
            parts = separator.split(value)
            while not preserve and parts and parts[-1] == "":
                parts.pop()  # Java's String.split drops trailing empty strings
            return parts

        return split

    return _transform(config, make)


@registry.register("join")
def _join(config: Config) -> FieldTransform:
    separator = config.string("separator")

    def make(field: str) -> Callable[[Any], Any]:
        def join(value: Any) -> str:
            if not isinstance(value, list):
                raise IllegalArgumentError(
                    f"field [{field}] of type [{java_type(value)}] cannot be cast to [java.util.List]"
                )
            return separator.join(v if isinstance(v, str) else orjson.dumps(v).decode() for v in value)

        return join

    return _transform(config, make)


def _to_int(value: Any) -> int:
    text = str(value).strip()
    return int(text, 16) if text.lower().startswith(("0x", "-0x")) else int(text)


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).lower()
    if text not in ("true", "false"):
        raise ValueError
    return text == "true"


def _auto(value: Any) -> Any:
    for fn in (_to_int, float, _to_bool):
        try:
            return fn(value)
        except ValueError:
            continue
    return value


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "integer": _to_int,
    "long": _to_int,
    "float": float,
    "double": float,
    "string": lambda v: v if isinstance(v, str) else ("true" if v is True else "false" if v is False else str(v)),
    "boolean": _to_bool,
    "auto": _auto,
    "ip": str,
}


@registry.register("convert")
def _convert(config: Config) -> FieldTransform:
    kind = config.string("type")
    if kind not in _CONVERTERS:
        raise config.error("type", f"type [{kind}] not supported, cannot convert field.")
    fn = _CONVERTERS[kind]

    def make(field: str) -> Callable[[Any], Any]:
        def convert(value: Any) -> Any:
            if isinstance(value, list):
                return [convert(v) for v in value]
            try:
                return fn(value)
            except (ValueError, TypeError):
                raise IllegalArgumentError(f"unable to convert [{value}] to {kind}") from None

        return convert

    return _transform(config, make)


@dataclass
class JsonProcessor(SimpleProcessor):
    field: str
    target_field: str
    add_to_root: bool
    type = "json"

    def execute(self, doc: IngestDocument) -> IngestDocument:
        raw = doc.get(self.field)
        try:
            value = orjson.loads(raw) if isinstance(raw, str) else raw
        except orjson.JSONDecodeError as exc:
            raise IllegalArgumentError(f"com.fasterxml.jackson.core.JsonParseException: {exc}") from None
        if not self.add_to_root:
            doc.set(self.target_field, value)
            return doc
        if not isinstance(value, dict):
            raise IllegalArgumentError("cannot add non-map fields to root of document")
        doc.source.update(value)
        return doc


@registry.register("json")
def _json(config: Config) -> JsonProcessor:
    field = config.string("field")
    target = config.string("target_field", None)
    add_to_root = config.boolean("add_to_root", False)
    if add_to_root and target is not None:
        raise config.error("target_field", "Cannot set a target field while also setting `add_to_root` to true")
    return JsonProcessor(field, target or field, add_to_root)


# Java date patterns the date processor commonly sees, as strptime directives (longest first).
_JAVA = [
    ("yyyy", "%Y"),
    ("MM", "%m"),
    ("dd", "%d"),
    ("HH", "%H"),
    ("mm", "%M"),
    ("ss", "%S"),
    ("SSS", "%f"),
    ("XXX", "%z"),
    ("Z", "%z"),
    ("'T'", "T"),
    ("yy", "%y"),
    ("MMM", "%b"),
]


def _strptime_pattern(java: str) -> str:
    out, i = "", 0
    while i < len(java):
        for token, directive in sorted(_JAVA, key=lambda t: -len(t[0])):
            if java.startswith(token, i):
                out += directive
                i += len(token)
                break
        else:
            out += java[i]
            i += 1
    return out


def _parse_date(text: Any, fmt: str, zone: dt.tzinfo) -> dt.datetime:
    if fmt == "UNIX":
        return dt.datetime.fromtimestamp(float(text), dt.UTC)
    if fmt == "UNIX_MS":
        return dt.datetime.fromtimestamp(int(text) / 1000, dt.UTC)
    if fmt in ("ISO8601", "strict_date_optional_time", "date_optional_time"):
        parsed = dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    else:
        parsed = dt.datetime.strptime(str(text), _strptime_pattern(fmt))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)


@dataclass
class DateProcessor(SimpleProcessor):
    field: str
    target_field: str
    formats: list[str]
    zone: dt.tzinfo
    type = "date"

    def execute(self, doc: IngestDocument) -> IngestDocument:
        value = doc.get(self.field)
        for fmt in self.formats:
            try:
                parsed = _parse_date(value, fmt, self.zone)
                break
            except (ValueError, TypeError, OverflowError):
                continue
        else:
            raise IllegalArgumentError(f"unable to parse date [{value}]")
        millis = parsed.astimezone(self.zone).isoformat(timespec="milliseconds")
        doc.set(self.target_field, millis.replace("+00:00", "Z"))
        return doc


@registry.register("date")
def _date(config: Config) -> DateProcessor:
    field = config.string("field")
    target = config.string("target_field", "@timestamp")
    formats = config.strings("formats")
    timezone = config.string("timezone", "UTC")
    config.string("locale", None)
    config.string("output_format", None)
    try:
        zone: dt.tzinfo = dt.UTC if timezone in ("UTC", "Z") else ZoneInfo(timezone)
    except Exception:
        raise config.error("timezone", f"unknown time zone [{timezone}]") from None
    return DateProcessor(field, target, formats, zone)
