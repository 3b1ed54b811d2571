"""Mustache field references in processor values: `{{field}}`, `{{{field}}}`, `{{_ingest.timestamp}}`."""

from __future__ import annotations

import re
from typing import Any

import orjson

from mlsearch.pipelines.document import IngestDocument

_REF = re.compile(r"\{\{\{?\s*([^{}]+?)\s*\}?\}\}")


def has_template(value: Any) -> bool:
    return isinstance(value, str) and _REF.search(value) is not None


def render(value: Any, doc: IngestDocument) -> Any:
    """`value` with every reference replaced by the field's value (missing fields render as the empty string)."""
    if isinstance(value, dict):
        return {render(k, doc): render(v, doc) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v, doc) for v in value]
    if not has_template(value):
        return value
    return _REF.sub(lambda m: _text(doc.get(m.group(1), None)), value)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return orjson.dumps(value).decode()
