"""`_source` filtering: includes / excludes with wildcards over dotted paths, as OpenSearch applies it."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Any

from mlsearch.errors import ParsingError


@dataclass(frozen=True, slots=True)
class SourceFilter:
    enabled: bool = True
    includes: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()

    @classmethod
    def parse(cls, spec: Any) -> SourceFilter:
        """From a search body's `_source`: bool, a pattern, a list, or {includes, excludes} (or include/exclude)."""
        if spec is None:
            return cls()
        if isinstance(spec, bool):
            return cls(enabled=spec)
        if isinstance(spec, str):
            return cls(includes=(spec,))
        if isinstance(spec, list):
            return cls(includes=tuple(str(s) for s in spec))
        if isinstance(spec, dict):
            for key in spec:
                if key not in ("includes", "include", "excludes", "exclude"):
                    raise ParsingError(f"Unknown key for a START_OBJECT in [{key}].")
            return cls(
                includes=_patterns(spec.get("includes", spec.get("include"))),
                excludes=_patterns(spec.get("excludes", spec.get("exclude"))),
            )
        raise ParsingError("Expected one of [TRUE, FALSE, VALUE_STRING, START_ARRAY, START_OBJECT] for [_source]")

    @classmethod
    def from_params(cls, source: str | None, includes: str | None, excludes: str | None) -> SourceFilter | None:
        """From query-string parameters: `_source=false|a,b`, `_source_includes`, `_source_excludes`."""
        if source is None and includes is None and excludes is None:
            return None
        if source is not None and source.lower() in ("true", "false"):
            base = cls(enabled=source.lower() == "true")
        else:
            base = cls(includes=_split(source))
        return cls(base.enabled, base.includes + _split(includes), _split(excludes))

    @property
    def is_identity(self) -> bool:
        return self.enabled and not self.includes and not self.excludes

    def apply(self, source: dict[str, Any]) -> dict[str, Any] | None:
        if not self.enabled:
            return None
        if self.is_identity:
            return source
        return _filter(source, "", self.includes, self.excludes)


def _patterns(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value)


def _split(value: str | None) -> tuple[str, ...]:
    return tuple(p for p in (value or "").split(",") if p)


def _matches(path: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(path, p) or path.startswith(p + ".") for p in patterns)


def _could_match_below(path: str, patterns: tuple[str, ...]) -> bool:
    prefix = path + "."
    return any(
        p.startswith(prefix)
        or (fnmatch.fnmatchcase(prefix, p.split(".")[0] + "*") and "*" in p)
        or (fnmatch.fnmatchcase(path, p.split(".", 1)[0]) and "." in p)
        for p in patterns
    )


def _filter(obj: dict[str, Any], prefix: str, includes: tuple[str, ...], excludes: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in obj.items():
        path = f"{prefix}{key}"
        if excludes and _matches(path, excludes):
            continue
        included = not includes or _matches(path, includes)
        if isinstance(value, dict) and (not included or excludes):
            if included or _could_match_below(path, includes):
                inner = _filter(value, f"{path}.", () if included else includes, excludes)
                if inner or included:
                    out[key] = inner
            continue
        if isinstance(value, list) and any(isinstance(v, dict) for v in value) and (not included or excludes):
            if included or _could_match_below(path, includes):
                items = [
                    _filter(v, f"{path}.", () if included else includes, excludes) if isinstance(v, dict) else v
                    for v in value
                ]
                items = [v for v in items if v != {} or included]
                if items or included:
                    out[key] = items
            continue
        if included:
            out[key] = value
    return out
