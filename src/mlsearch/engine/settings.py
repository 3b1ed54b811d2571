"""Typed settings registries: each known setting has a parser, a default and a dynamic flag.

Index settings live here; cluster settings (mlsearch.cluster_settings) use the same classes."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from mlsearch.errors import IllegalArgumentError, SettingsError

Parser = Callable[[str, Any], Any]


@dataclass(frozen=True, slots=True)
class Setting:
    name: str
    default: Any
    parse: Parser
    dynamic: bool = True

    def value(self, raw: Any) -> Any:
        return self.parse(self.name, raw)


class SettingsRegistry:
    """Known settings by exact name, plus prefix groups (`index.analysis.`) accepted as they are."""

    def __init__(self, settings: Iterable[Setting] = (), prefixes: Iterable[str] = ()) -> None:
        self._settings: dict[str, Setting] = {}
        self._prefixes: list[str] = list(prefixes)
        for setting in settings:
            self.register(setting)

    def register(self, setting: Setting) -> None:
        self._settings[setting.name] = setting

    def register_prefix(self, prefix: str) -> None:
        self._prefixes.append(prefix)

    def find(self, name: str) -> Setting | None:
        return self._settings.get(name)

    def defaults(self) -> dict[str, Any]:
        return {name: s.default for name, s in self._settings.items() if s.default is not None}

    def validate(self, values: Mapping[str, Any], *, updating: bool = False) -> dict[str, Any]:
        """Parse flat settings; unknown names and (when updating) static ones are refused. None means reset."""
        out: dict[str, Any] = {}
        for name, raw in values.items():
            setting = self._settings.get(name)
            if setting is None:
                if any(name.startswith(p) for p in self._prefixes):
                    out[name] = raw
                    continue
                raise SettingsError(
                    f"unknown setting [{name}] please check that any required plugins are installed, or check the "
                    f"breaking changes documentation for removed settings"
                )
            if updating and not setting.dynamic:
                raise SettingsError(f"final {name.split('.')[0]} setting [{name}], not updateable")
            out[name] = None if raw is None else setting.value(raw)
        return out


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"index": {"knn": true}} and {"index.knn": true} both become {"index.knn": true}."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    """The nested form OpenSearch prints: {"index.knn": "true"} -> {"index": {"knn": "true"}}."""
    tree: dict[str, Any] = {}
    for name in sorted(flat):
        node = tree
        parts = name.split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[parts[-1]] = flat[name]
    return tree


def as_string(value: Any) -> Any:
    """Settings are shown as strings, lists as lists of strings."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return [as_string(v) for v in value]
    return value if isinstance(value, str) or value is None else str(value)


# ---- parsers ----------------------------------------------------------------------------------------------


def boolean(name: str, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).lower()
    if text not in ("true", "false"):
        raise IllegalArgumentError(
            f"Failed to parse value [{raw}] as only [true] or [false] are allowed.",
        )
    return text == "true"


def integer(minimum: int | None = None, maximum: int | None = None) -> Parser:
    def parse(name: str, raw: Any) -> int:
        try:
            value = int(str(raw))
        except ValueError:
            raise IllegalArgumentError(f"Failed to parse value [{raw}] for setting [{name}]") from None
        if minimum is not None and value < minimum:
            raise IllegalArgumentError(f"Failed to parse value [{raw}] for setting [{name}] must be >= {minimum}")
        if maximum is not None and value > maximum:
            raise IllegalArgumentError(f"Failed to parse value [{raw}] for setting [{name}] must be <= {maximum}")
        return value

    return parse


def number(minimum: float | None = None, maximum: float | None = None) -> Parser:
    def parse(name: str, raw: Any) -> float:
        try:
            value = float(str(raw))
        except ValueError:
            raise IllegalArgumentError(f"Failed to parse value [{raw}] for setting [{name}]") from None
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise IllegalArgumentError(f"Failed to parse value [{raw}] for setting [{name}]")
        return value

    return parse


def text(name: str, raw: Any) -> str:
    if isinstance(raw, dict | list):
        raise IllegalArgumentError(f"Failed to parse value [{raw}] for setting [{name}]")
    return as_string(raw)


def one_of(*choices: str) -> Parser:
    def parse(name: str, raw: Any) -> str:
        value = str(raw)
        if value.lower() not in choices:
            raise IllegalArgumentError(f"Unknown value [{raw}] for setting [{name}]; expected one of {list(choices)}")
        return value.lower()

    return parse


def string_list(name: str, raw: Any) -> list[str]:
    if isinstance(raw, list):
        return [str(v) for v in raw]
    return [part.strip() for part in str(raw).split(",") if part.strip()]


_TIME = re.compile(r"^(-1|0|\d+(\.\d+)?(nanos|micros|ms|s|m|h|d))$")
_UNITS = {"nanos": 1e-9, "micros": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def time_value(name: str, raw: Any) -> str:
    value = str(raw).strip()
    if not _TIME.match(value):
        raise IllegalArgumentError(
            f"failed to parse setting [{name}] with value [{raw}] as a time value: unit is missing or unrecognized"
        )
    return value


def seconds(value: str) -> float:
    """A time value in seconds; -1 (disabled) stays -1."""
    if value in ("-1", "0"):
        return float(value)
    match = re.match(r"^(\d+(?:\.\d+)?)([a-z]+)$", value)
    assert match is not None  # time_value() validated it
    return float(match.group(1)) * _UNITS[match.group(2)]


_BYTES = re.compile(r"^\d+(\.\d+)?\s*(b|kb|mb|gb|tb|pb|%)?$", re.IGNORECASE)


def byte_size(name: str, raw: Any) -> str:
    value = str(raw).strip()
    if not _BYTES.match(value):
        raise IllegalArgumentError(f"failed to parse setting [{name}] with value [{raw}] as a size in bytes")
    return value


def _index_settings() -> list[Setting]:
    static = False
    return [
        Setting("index.number_of_shards", 1, integer(1, 1024), static),
        Setting("index.number_of_replicas", 1, integer(0)),
        Setting("index.number_of_routing_shards", None, integer(1), static),
        Setting("index.auto_expand_replicas", "false", text),
        Setting("index.refresh_interval", "1s", time_value),
        Setting("index.max_result_window", 10000, integer(1)),
        Setting("index.highlight.max_analyzed_offset", 1000000, integer(1)),
        Setting("index.max_inner_result_window", 100, integer(1)),
        Setting("index.max_terms_count", 65536, integer(1)),
        Setting("index.translog.durability", "request", one_of("request", "async")),
        Setting("index.translog.sync_interval", "5s", time_value),
        Setting("index.codec", "default", text, static),
        Setting("index.hidden", False, boolean),
        Setting("index.similarity.default.type", "BM25", one_of("bm25", "legacybm25"), static),
        Setting("index.mapping.total_fields.limit", 1000, integer(0)),
        Setting("index.mapping.depth.limit", 20, integer(1)),
        Setting("index.query.default_field", ["*"], string_list),
        Setting("index.default_pipeline", "_none", text),
        Setting("index.final_pipeline", "_none", text),
        Setting("index.search.default_pipeline", "_none", text),
        Setting("index.blocks.read_only", False, boolean),
        Setting("index.blocks.read_only_allow_delete", False, boolean),
        Setting("index.blocks.write", False, boolean),
        Setting("index.blocks.read", False, boolean),
        Setting("index.blocks.metadata", False, boolean),
        Setting("index.knn", False, boolean, static),
        Setting("index.knn.algo_param.ef_search", 100, integer(2)),
        Setting("index.knn.advanced.approximate_threshold", 0, integer(-1)),
        Setting("index.knn.advanced.filtered_exact_search_threshold", None, integer(-1)),
        Setting("index.knn.faiss.efficient_filter.disable_exact_search", False, boolean),
        Setting("index.knn.derived_source.enabled", True, boolean, static),
        Setting("index.knn.memory_optimized_search", False, boolean, static),
        Setting("index.knn.space_type", None, text, static),
        Setting("index.knn.algo_param.m", None, integer(2), static),
        Setting("index.knn.algo_param.ef_construction", None, integer(2), static),
        Setting("index.neural_search.semantic_ingest_batch_size", 10, integer(1, 100)),
    ]


# Settings OpenSearch assigns itself and shows, which a user may not set.
INTERNAL_INDEX_SETTINGS = ("index.uuid", "index.version.created", "index.creation_date", "index.provided_name")


def index_settings_registry() -> SettingsRegistry:
    return SettingsRegistry(_index_settings(), prefixes=("index.analysis.", "index.sort.", "index.routing."))


def normalize_index_settings(body: Mapping[str, Any]) -> dict[str, Any]:
    """Flatten and prefix: {"knn": true} and {"index": {"knn": true}} both mean index.knn."""
    flat = flatten(body)
    return {name if name.startswith("index.") else f"index.{name}": value for name, value in flat.items()}
