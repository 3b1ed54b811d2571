"""The `semantic` field type of neural-search (OpenSearch 3.1+), as far as the engine sees it.

A semantic field stores its raw value as its `raw_field_type` (text by default) at its own path; its embedding lives
in a companion object field, `<name>_semantic_info` (`embedding` plus a `model` object), that the API layer adds to
the mapping once it has looked the model up. The engine only validates the parameters and indexes the raw value."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from mlsearch.errors import IllegalArgumentError, MapperParsingError

TYPE = "semantic"
INFO_SUFFIX = "_semantic_info"
DEFAULT_RAW_TYPE = "text"
# Raw field types served here (`token_count` and `binary` exist in OpenSearch but have no column kind in mlsearch).
RAW_TYPES = ("text", "keyword", "match_only_text", "wildcard")
OPENSEARCH_RAW_TYPES = ("text", "keyword", "match_only_text", "wildcard", "token_count", "binary")
PARAMS = {
    "type",
    "model_id",
    "search_model_id",
    "raw_field_type",
    "semantic_info_field_name",
    "chunking",
    "semantic_field_search_analyzer",
    "dense_embedding_config",
    "sparse_encoding_config",
    "skip_existing_embedding",
}
# Parameters a put-mapping may change on an existing semantic field (the docs' "Updatable" column).
UPDATABLE = {"model_id", "search_model_id", "semantic_field_search_analyzer", "skip_existing_embedding"}
SEARCH_ANALYZERS = ("standard", "bert-uncased", "mbert-uncased")


def raw_type(spec: Mapping[str, Any]) -> str:
    return str(spec.get("raw_field_type", DEFAULT_RAW_TYPE))


def info_field_name(name: str, spec: Mapping[str, Any]) -> str:
    """The semantic info field's own name (a sibling of the semantic field)."""
    custom = spec.get("semantic_info_field_name")
    return str(custom) if custom else f"{name}{INFO_SUFFIX}"


def info_path(path: str, spec: Mapping[str, Any]) -> str:
    """The full path of the semantic info object of the semantic field at `path`."""
    parent, _, name = path.rpartition(".")
    own = info_field_name(name, spec)
    return f"{parent}.{own}" if parent else own


def validate(spec: Mapping[str, Any], path: str) -> None:
    """The checks neural-search makes on a semantic field's own parameters (the raw type's are the mapper's)."""
    check_names(spec, path)
    raw = raw_type(spec)
    if raw not in OPENSEARCH_RAW_TYPES:
        raise MapperParsingError(
            f"raw_field_type [{raw}] is not supported for the semantic field at {path}. "
            f"Supported raw field types: {list(OPENSEARCH_RAW_TYPES)}"
        )
    if raw not in RAW_TYPES:
        raise MapperParsingError(f"raw_field_type [{raw}] of the semantic field at {path} is not supported by mlsearch")
    if "search_model_id" in spec and "semantic_field_search_analyzer" in spec:
        raise MapperParsingError(
            f"Cannot set both search_model_id and semantic_field_search_analyzer for the semantic field at {path}"
        )
    analyzer = spec.get("semantic_field_search_analyzer")
    if analyzer is not None and analyzer not in SEARCH_ANALYZERS:
        raise MapperParsingError(
            f"semantic_field_search_analyzer [{analyzer}] is not supported for the semantic field at {path}. "
            f"Supported analyzers: {list(SEARCH_ANALYZERS)}"
        )
    _validate_chunking(spec.get("chunking"), path)
    skip = spec.get("skip_existing_embedding")
    if skip is not None and not isinstance(skip, bool):
        raise MapperParsingError(f"skip_existing_embedding should be a boolean for the semantic field at {path}")
    _validate_configs(spec, path)


def chunking_enabled(spec: Mapping[str, Any]) -> bool:
    value = spec.get("chunking")
    return value is True or value == "true" or (isinstance(value, list) and bool(value))


def chunking_strategies(spec: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(algorithm, parameters) in the order they apply; `chunking: true` is fixed_token_length with its defaults."""
    value = spec.get("chunking")
    if not isinstance(value, list):
        return [("fixed_token_length", {})]
    return [(str(s["algorithm"]), dict(s.get("parameters") or {})) for s in value]


def _validate_chunking(value: Any, path: str) -> None:
    if value is None or isinstance(value, bool) or value in ("true", "false"):
        return
    if not isinstance(value, list):
        raise MapperParsingError(f"chunking should be a boolean or a list of maps for the semantic field at {path}")
    for strategy in value:
        if not isinstance(strategy, dict) or not isinstance(strategy.get("algorithm"), str):
            raise MapperParsingError(f"Each chunking strategy needs an [algorithm] for the semantic field at {path}")
        unknown = set(strategy) - {"algorithm", "parameters"}
        if unknown:
            raise MapperParsingError(
                f"Unsupported parameters {sorted(unknown)} in a chunking strategy of the semantic field at {path}"
            )
        if not isinstance(strategy.get("parameters", {}), dict):
            raise MapperParsingError(f"Chunking [parameters] should be a map for the semantic field at {path}")


def _validate_configs(spec: Mapping[str, Any], path: str) -> None:
    dense = spec.get("dense_embedding_config")
    if dense is not None:
        if not isinstance(dense, dict):
            raise MapperParsingError(f"dense_embedding_config should be a map for the semantic field at {path}")
        for key in ("dimension", "space_type"):
            if key in dense:
                raise MapperParsingError(
                    f"Cannot configure {key} in dense_embedding_config for the semantic field at {path}; "
                    f"it comes from the model config"
                )
    sparse = spec.get("sparse_encoding_config")
    if sparse is not None and not isinstance(sparse, dict):
        raise MapperParsingError(f"sparse_encoding_config should be a map for the semantic field at {path}")


def check_names(spec: Mapping[str, Any], path: str) -> None:
    """What neural-search checks before it looks the model up (an illegal_argument_exception, not a mapper error)."""
    model_id = spec.get("model_id")
    if model_id is None:
        raise IllegalArgumentError(f"model_id is required for the semantic field at {path}")
    if not isinstance(model_id, str) or not model_id:
        raise IllegalArgumentError(f"model_id should be a non-empty string for the semantic field at {path}")
    for key in ("search_model_id", "semantic_info_field_name"):
        value = spec.get(key)
        if key in spec and (not isinstance(value, str) or not value):
            raise IllegalArgumentError(f"{key} should be a non-empty string for the semantic field at {path}")
    if "." in str(spec.get("semantic_info_field_name", "")):
        raise IllegalArgumentError(f"semantic_info_field_name should not contain '.' for the semantic field at {path}")


def raw_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The semantic field as its raw field type: what the lexical index sees."""
    out = {k: v for k, v in spec.items() if k not in PARAMS}
    out["type"] = raw_type(spec)
    return out


def semantic_fields(props: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every semantic field of a properties tree: (full path, its spec)."""
    for path, spec, _ in semantic_fields_in(props, prefix):
        yield path, spec


def semantic_fields_in(
    props: Mapping[str, Any], prefix: str = ""
) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """Every semantic field of a properties tree: (full path, its spec, the properties holding it)."""
    for name, spec in props.items():
        if not isinstance(spec, dict):
            continue
        path = f"{prefix}{name}"
        if spec.get("type") == TYPE:
            yield path, spec, props  # type: ignore[misc]
        elif isinstance(spec.get("properties"), dict):
            yield from semantic_fields_in(spec["properties"], f"{path}.")
