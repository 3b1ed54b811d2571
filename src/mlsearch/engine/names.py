"""Index names: validation and resolution of expressions (comma lists, wildcards, exclusions, aliases)."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping

from mlsearch.errors import IndexNotFoundError, InvalidIndexNameError

_FORBIDDEN = ' ", *, \\, <, |, ,, >, /, ?'
_FORBIDDEN_CHARS = set(' "*\\<|,>/?')


def validate_index_name(name: str) -> None:
    """Raise invalid_index_name_exception with OpenSearch's wording."""
    if not name:
        raise InvalidIndexNameError(name, "must not be empty")
    if name != name.lower():
        raise InvalidIndexNameError(name, "must be lowercase")
    if any(c in _FORBIDDEN_CHARS for c in name):
        raise InvalidIndexNameError(name, f"must not contain the following characters [{_FORBIDDEN}]")
    if "#" in name:
        raise InvalidIndexNameError(name, "must not contain '#'")
    if ":" in name:
        raise InvalidIndexNameError(name, "must not contain ':'")
    if name[0] in "_-+":
        raise InvalidIndexNameError(name, "must not start with '_', '-', or '+'")
    if name in (".", ".."):
        raise InvalidIndexNameError(name, "must not be '.' or '..'")
    if len(name.encode()) > 255:
        raise InvalidIndexNameError(name, f"index name is too long, ({len(name.encode())} > 255)")


def resolve(
    expression: str | Iterable[str] | None,
    indices: Iterable[str],
    aliases: Mapping[str, list[str]],
    *,
    ignore_unavailable: bool = False,
    allow_no_indices: bool = True,
    include_hidden: bool = False,
) -> list[str]:
    """Concrete index names for an expression such as `logs-*,-logs-old,my-alias`, in a stable order."""
    names = sorted(indices)
    if expression is None:
        parts = ["_all"]
    elif isinstance(expression, str):
        parts = [p.strip() for p in expression.split(",") if p.strip()] or ["_all"]
    else:
        parts = list(expression) or ["_all"]
    chosen: list[str] = []
    for i, part in enumerate(parts):
        if part.startswith("-") and i > 0:
            pattern = part[1:]
            chosen = [n for n in chosen if not fnmatch.fnmatchcase(n, pattern)]
            continue
        if part in ("_all", "*"):
            chosen += [n for n in names if include_hidden or not n.startswith(".")]
            continue
        if "*" in part:
            matched = [
                n
                for n in names
                if fnmatch.fnmatchcase(n, part) and (include_hidden or not n.startswith(".") or part.startswith("."))
            ]
            for alias, targets in aliases.items():
                if fnmatch.fnmatchcase(alias, part):
                    matched += targets
            chosen += matched
            continue
        if part in aliases:
            chosen += aliases[part]
        elif part in indices:
            chosen.append(part)
        elif not ignore_unavailable:
            raise IndexNotFoundError(part)
    unique = list(dict.fromkeys(chosen))
    if not unique and not allow_no_indices:
        raise IndexNotFoundError(expression if isinstance(expression, str) else ",".join(parts))
    return unique
