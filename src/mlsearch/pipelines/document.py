"""IngestDocument: one document as a pipeline sees it — `_source`, metadata (`_index`, `_id`, ...) and `_ingest`."""

from __future__ import annotations

import copy
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from mlsearch.errors import IllegalArgumentError

METADATA = ("_index", "_id", "_routing", "_version", "_version_type", "_if_seq_no", "_if_primary_term")
_MISSING = object()


def _java_type(value: Any) -> str:
    names = {
        str: "java.lang.String",
        bool: "java.lang.Boolean",
        int: "java.lang.Integer",
        float: "java.lang.Double",
        list: "java.util.ArrayList",
        dict: "java.util.LinkedHashMap",
    }
    return names.get(type(value), type(value).__name__)


def now_timestamp() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class IngestDocument:
    """A document in flight through a pipeline; field paths are dotted (`a.b.0.c`), `_source.` / `_ingest.` prefixed."""

    source: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)
    ingest: dict[str, Any] = field(default_factory=lambda: {"timestamp": now_timestamp()})

    @property
    def index(self) -> str | None:
        return self.meta.get("_index")

    @property
    def id(self) -> str | None:
        return self.meta.get("_id")

    def copy(self) -> IngestDocument:
        return IngestDocument(copy.deepcopy(self.source), dict(self.meta), copy.deepcopy(self.ingest))

    def ctx(self) -> dict[str, Any]:
        """The `ctx` map of a condition: source fields and metadata side by side, `_ingest` included."""
        return {**self.source, **self.meta, "_ingest": self.ingest}

    def render(self) -> dict[str, Any]:
        """The simulate API's `doc` object."""
        body: dict[str, Any] = {k: v for k, v in self.meta.items() if v is not None}
        body["_source"] = self.source
        body["_ingest"] = self.ingest
        return body

    # ---- field access -----------------------------------------------------------------------------------------

    def _root(self, path: str) -> tuple[dict[str, Any], list[str]]:
        if path in METADATA:
            return self.meta, [path]
        if path.startswith("_ingest."):
            return self.ingest, path[len("_ingest.") :].split(".")
        if path.startswith("_source."):
            path = path[len("_source.") :]
        if not path:
            raise IllegalArgumentError("path cannot be null nor empty")
        return self.source, path.split(".")

    def get(self, path: str, default: Any = _MISSING) -> Any:
        """The value at `path`; raises OpenSearch's error when absent unless a default is given."""
        container: Any
        container, parts = self._root(path)
        for part in parts:
            found, container = _child(container, part, path)
            if not found:
                if default is _MISSING:
                    raise IllegalArgumentError(f"field [{part}] not present as part of path [{path}]")
                return default
        return container

    def has(self, path: str) -> bool:
        try:
            return self.get(path, _MISSING_SENTINEL) is not _MISSING_SENTINEL
        except IllegalArgumentError:
            return False

    def set(self, path: str, value: Any, *, append: bool = False) -> None:
        container: Any
        container, parts = self._root(path)
        for part in parts[:-1]:
            if isinstance(container, dict):
                container = container.setdefault(part, {})
            elif isinstance(container, list) and part.isdigit() and int(part) < len(container):
                container = container[int(part)]
            else:
                raise IllegalArgumentError(
                    f"cannot set [{part}] with parent object of type [{_java_type(container)}] as part of path [{path}]"
                )
        last = parts[-1]
        if isinstance(container, list) and last.isdigit():
            if int(last) >= len(container):
                raise IllegalArgumentError(
                    f"[{last}] is out of bounds for array with length [{len(container)}] as part of path [{path}]"
                )
            container[int(last)] = value
            return
        if not isinstance(container, dict):
            raise IllegalArgumentError(
                f"cannot set [{last}] with parent object of type [{_java_type(container)}] as part of path [{path}]"
            )
        if append and last in container:
            current = container[last]
            current = current if isinstance(current, list) else [current]
            current.extend(value if isinstance(value, list) else [value])
            container[last] = current
        else:
            container[last] = value

    def remove(self, path: str) -> Any:
        container: Any
        container, parts = self._root(path)
        for part in parts[:-1]:
            found, container = _child(container, part, path)
            if not found:
                raise IllegalArgumentError(f"field [{part}] not present as part of path [{path}]")
        last = parts[-1]
        if isinstance(container, dict) and last in container:
            return container.pop(last)
        if isinstance(container, list) and last.isdigit() and int(last) < len(container):
            return container.pop(int(last))
        raise IllegalArgumentError(f"field [{last}] not present as part of path [{path}]")


_MISSING_SENTINEL = object()


def _child(container: Any, part: str, path: str) -> tuple[bool, Any]:
    if isinstance(container, dict):
        return (True, container[part]) if part in container else (False, None)
    if isinstance(container, list):
        if not part.lstrip("-").isdigit():
            raise IllegalArgumentError(
                f"[{part}] is not an integer, cannot be used as an index as part of path [{path}]"
            )
        i = int(part)
        if not 0 <= i < len(container):
            raise IllegalArgumentError(
                f"[{part}] is out of bounds for array with length [{len(container)}] as part of path [{path}]"
            )
        return True, container[i]
    if container is None:
        return False, None
    raise IllegalArgumentError(
        f"cannot resolve [{part}] from object of type [{_java_type(container)}] as part of path [{path}]"
    )


def java_type(value: Any) -> str:
    return _java_type(value)
