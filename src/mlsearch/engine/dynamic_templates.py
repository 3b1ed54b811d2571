"""`dynamic_templates`: rules that choose the mapping of a field met for the first time in a document.

Each template is `{name: {conditions..., "mapping": {...}}}`; templates are tried in order and the first whose
conditions all hold gives the new field's mapping, with `{name}` and `{dynamic_type}` replaced in its strings.
Conditions: `match_mapping_type` (the JSON type as dynamic mapping detects it: string, long, double, boolean,
date, object, or `*`), `match` / `unmatch` on the field's own name and `path_match` / `path_unmatch` on its
dotted path (`*` wildcards, or Java-style regular expressions with `match_pattern: regex`). Clients rely on this:
Haystack's document store maps every string to `keyword` with one template."""

from __future__ import annotations

import copy
import fnmatch
import re
from collections.abc import Mapping, Sequence
from typing import Any

from mlsearch.errors import MapperParsingError

_CONDITIONS = ("match_mapping_type", "match", "unmatch", "path_match", "path_unmatch")
_PARAMETERS = {*_CONDITIONS, "match_pattern", "mapping"}
_MAPPING_TYPES = {"string", "long", "double", "boolean", "date", "object", "binary", "*"}
# What `{dynamic_type}` stands for, and the type of a template mapping that names none: the field type dynamic
# mapping would have chosen for that JSON type.
_DEFAULT_TYPES = {"string": "text", "long": "long", "double": "float", "boolean": "boolean", "date": "date"}


def validate(templates: Any) -> None:
    """Refuse a malformed `dynamic_templates` list with OpenSearch's mapper_parsing_exception."""
    if not isinstance(templates, list):
        raise MapperParsingError("Dynamic template syntax error. An array of named objects is expected.")
    for entry in templates:
        if not isinstance(entry, dict) or len(entry) != 1:
            raise MapperParsingError("Dynamic template syntax error. An array of named objects is expected.")
        ((name, body),) = entry.items()
        if not isinstance(body, dict):
            raise MapperParsingError(f"Dynamic template syntax error for [{name}]: expected an object")
        for key in body:
            if key not in _PARAMETERS:
                raise MapperParsingError(f"Illegal dynamic template parameter: [{key}]")
        if not isinstance(body.get("mapping"), dict):
            raise MapperParsingError(f"template [{name}] must have a [mapping] object")
        if body.get("match_pattern", "simple") not in ("simple", "regex"):
            raise MapperParsingError(f"No matching pattern matched on [{body['match_pattern']}]")
        for wanted in _as_list(body.get("match_mapping_type", [])):
            if wanted not in _MAPPING_TYPES:
                raise MapperParsingError(
                    f"No field type matched on [{wanted}], possible values are {sorted(_MAPPING_TYPES)}"
                )


def merge(old: Sequence[Mapping[str, Any]], new: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Put mapping's rule: a template replaces the one of the same name in place; new names are appended."""
    merged = [dict(t) for t in old]
    positions = {next(iter(t)): i for i, t in enumerate(merged)}
    for template in new:
        name = next(iter(template))
        if name in positions:
            merged[positions[name]] = copy.deepcopy(dict(template))
        else:
            positions[name] = len(merged)
            merged.append(copy.deepcopy(dict(template)))
    return merged


def detected_type(sample: Any, is_date: bool) -> str:
    """The `match_mapping_type` name of a JSON value."""
    if isinstance(sample, bool):
        return "boolean"
    if isinstance(sample, int):
        return "long"
    if isinstance(sample, float):
        return "double"
    if isinstance(sample, dict):
        return "object"
    return "date" if is_date else "string"


def mapping_for(templates: Sequence[Mapping[str, Any]], path: str, mapping_type: str) -> dict[str, Any] | None:
    """The mapping the first matching template gives the new field at `path`, or None when none matches."""
    name = path.rsplit(".", 1)[-1]
    for template in templates:
        body = next(iter(template.values()))
        if _matches(body, name, path, mapping_type):
            return _render(body["mapping"], name, mapping_type)
    return None


def _matches(body: Mapping[str, Any], name: str, path: str, mapping_type: str) -> bool:
    wanted = _as_list(body.get("match_mapping_type", []))
    if wanted and "*" not in wanted and mapping_type not in wanted:
        return False
    regex = body.get("match_pattern") == "regex"
    checks = (
        ("match", name, True),
        ("unmatch", name, False),
        ("path_match", path, True),
        ("path_unmatch", path, False),
    )
    for key, subject, expected in checks:
        patterns = _as_list(body.get(key, []))
        if patterns and any(_pattern_matches(p, subject, regex) for p in patterns) != expected:
            return False
    return True


def _pattern_matches(pattern: str, subject: str, regex: bool) -> bool:
    return re.fullmatch(pattern, subject) is not None if regex else fnmatch.fnmatchcase(subject, pattern)


def _render(mapping: Mapping[str, Any], name: str, mapping_type: str) -> dict[str, Any]:
    default_type = _DEFAULT_TYPES.get(mapping_type, mapping_type)

    def fill(value: Any) -> Any:
        if isinstance(value, str):
            return value.replace("{name}", name).replace("{dynamic_type}", default_type)
        if isinstance(value, dict):
            return {fill(k): fill(v) for k, v in value.items()}
        if isinstance(value, list):
            return [fill(v) for v in value]
        return value

    spec = fill(copy.deepcopy(dict(mapping)))
    if "type" not in spec and mapping_type != "object":
        spec["type"] = default_type
    if spec.get("type", "object") in ("object", "nested"):
        spec.setdefault("properties", {})
    return spec


def _as_list(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)
