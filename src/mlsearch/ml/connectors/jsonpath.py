"""The JSONPath subset connectors use (`response_filter`, post-process defaults, `response_mapping`):
`$`, `.key`, `['key']`, `[n]`, `[*]`, `.*` and `..key`, with Jayway's rule that a path with a wildcard or deep scan
yields a list and a definite path yields the value itself."""

from __future__ import annotations

import re
from typing import Any

from mlsearch.errors import IllegalArgumentError

_TOKEN = re.compile(r"\.\.([A-Za-z0-9_\-]+)|\.([A-Za-z0-9_\-]+|\*)|\[\s*(\*|-?\d+|'[^']*'|\"[^\"]*\")\s*\]")


def compile_path(path: str) -> list[tuple[str, Any]]:
    """Steps of a path: ("key", name) | ("index", n) | ("all", None) | ("deep", name)."""
    text = path.strip()
    if not text.startswith("$"):
        raise IllegalArgumentError(f"Invalid JSONPath [{path}]: it must start with $")
    steps: list[tuple[str, Any]] = []
    pos = 1
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise IllegalArgumentError(f"Invalid JSONPath [{path}] at position {pos}")
        deep, dotted, bracket = match.groups()
        if deep is not None:
            steps.append(("deep", deep))
        elif dotted is not None:
            steps.append(("all", None) if dotted == "*" else ("key", dotted))
        elif bracket == "*":
            steps.append(("all", None))
        elif bracket[0] in "'\"":
            steps.append(("key", bracket[1:-1]))
        else:
            steps.append(("index", int(bracket)))
        pos = match.end()
    return steps


def read(value: Any, path: str) -> Any:
    """The value a path selects (a list for indefinite paths); None when a definite path finds nothing."""
    steps = compile_path(path)
    definite = all(kind in ("key", "index") for kind, _ in steps)
    current = [value]
    for kind, arg in steps:
        current = [child for item in current for child in _step(item, kind, arg)]
    if definite:
        return current[0] if current else None
    return current


def _step(item: Any, kind: str, arg: Any) -> list[Any]:
    if kind == "key":
        return [item[arg]] if isinstance(item, dict) and arg in item else []
    if kind == "index":
        if isinstance(item, list) and -len(item) <= arg < len(item):
            return [item[arg]]
        return []
    if kind == "all":
        if isinstance(item, dict):
            return list(item.values())
        return list(item) if isinstance(item, list) else []
    return _deep(item, arg)


def _deep(item: Any, key: str) -> list[Any]:
    found: list[Any] = []
    if isinstance(item, dict):
        if key in item:
            found.append(item[key])
        for child in item.values():
            found.extend(_deep(child, key))
    elif isinstance(item, list):
        for child in item:
            found.extend(_deep(child, key))
    return found
