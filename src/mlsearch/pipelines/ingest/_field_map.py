"""neural-search's `field_map`: input field -> output field, with nested objects, dot paths and lists.

`{"obj.text": "emb"}` reads obj.text and writes obj.emb; `{"obj": {"text": "emb"}}` does the same and also walks a
list of objects under `obj`; a list of strings gives one output per string."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlsearch.errors import IllegalArgumentError
from mlsearch.pipelines.base import Config


@dataclass
class Slot:
    """One input found in a document: where its output goes, and its text(s)."""

    parent: dict[str, Any]
    target: str
    texts: list[str]
    is_list: bool
    input_path: str

    def write(self, value: Any) -> None:
        node = self.parent
        parts = self.target.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[parts[-1]] = value

    @property
    def output_path(self) -> str:
        parent = self.input_path.rsplit(".", 1)[0] if "." in self.input_path else ""
        return f"{parent}.{self.target}" if parent else self.target


def lookup(source: Any, path: str) -> Any:
    """The value at a dotted path (list positions as numbers), or None."""
    node = source
    for part in path.split("."):
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


def validate_field_map(config: Config, key: str = "field_map") -> dict[str, Any]:
    field_map = config.mapping(key)
    if not field_map:
        raise config.error(key, "Unable to create the processor as field_map has invalid key or value")
    _check(config, key, field_map)
    return field_map


def _check(config: Config, key: str, field_map: dict[str, Any]) -> None:
    for name, target in field_map.items():
        if not name or (isinstance(target, str) and not target):
            raise config.error(key, "Unable to create the processor as field_map has invalid key or value")
        if isinstance(target, dict):
            _check(config, key, target)
        elif not isinstance(target, str):
            raise config.error(key, f"[{name}] configuration isn't a string or a map")


def collect(source: dict[str, Any], field_map: dict[str, Any], prefix: str = "") -> list[Slot]:
    slots: list[Slot] = []
    for key, target in field_map.items():
        parent, leaf = _parent(source, key)
        if parent is None:
            continue
        value = parent.get(leaf)
        path = f"{prefix}{key}"
        if isinstance(target, dict):
            items = value if isinstance(value, list) else [value]
            for i, item in enumerate(items):
                if isinstance(item, dict):
                    sub = f"{path}.{i}." if isinstance(value, list) else f"{path}."
                    slots.extend(collect(item, target, sub))
            continue
        slot = _slot(parent, target, value, path)
        if slot is not None:
            slots.append(slot)
    return slots


def _parent(source: dict[str, Any], key: str) -> tuple[dict[str, Any] | None, str]:
    if key in source or "." not in key:
        return source, key
    node: Any = source
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.get(part) if isinstance(node, dict) else None
        if node is None:
            return None, parts[-1]
    return (node, parts[-1]) if isinstance(node, dict) else (None, parts[-1])


def _slot(parent: dict[str, Any], target: str, value: Any, path: str) -> Slot | None:
    if value is None or value == "" or value == []:
        return None
    if isinstance(value, str):
        return Slot(parent, target, [value], False, path)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return Slot(parent, target, list(value), True, path)
    raise IllegalArgumentError(
        f"field [{path}] is neither string nor nested type, cannot process it"
        if not isinstance(value, list)
        else f"list type field [{path}] has non string value, cannot process it"
    )
