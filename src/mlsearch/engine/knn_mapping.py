"""`knn_vector` mappings: the k-NN plugin's checks on dimension, data type, space, engine, method, mode and
compression, with its error messages; and the rule that `method` / `model_id` need `index.knn: true`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mlsearch.errors import MapperParsingError

if TYPE_CHECKING:
    from mlsearch.engine.mapping import Mappings

_KNN_SPACES = ("l2", "l1", "linf", "cosinesimil", "innerproduct", "hamming", "hammingbit")
_KNN_ENGINES = ("faiss", "lucene", "nmslib")
_KNN_METHODS = {"faiss": ("hnsw", "ivf"), "lucene": ("hnsw", "flat"), "nmslib": ("hnsw",)}
_KNN_ENGINE_SPACES = {
    "faiss": ("l2", "innerproduct", "cosinesimil", "hamming"),
    "lucene": ("l2", "cosinesimil", "innerproduct"),
    "nmslib": ("l2", "innerproduct", "cosinesimil", "l1", "linf"),
}
_KNN_MODES = ("in_memory", "on_disk")
_KNN_COMPRESSION = ("1x", "2x", "4x", "8x", "16x", "32x")


def validate_knn_vector(spec: dict[str, Any], path: str) -> None:
    if "model_id" in spec:
        if "dimension" in spec or "method" in spec:
            raise MapperParsingError(f"Cannot specify both a modelId and dimension/method in the mapping: {path}")
        return
    dim = spec.get("dimension")
    if dim is None:
        raise MapperParsingError(f"Dimension value missing for vector: {path}")
    if not isinstance(dim, int) or isinstance(dim, bool) or not 1 <= dim <= 16000:
        raise MapperParsingError(
            f"Dimension value cannot be greater than 16000 but got [{dim}] for vector [{path}]"
            if isinstance(dim, int) and dim > 16000
            else f"Dimension value must be greater than 0 for vector: {path}"
        )
    data_type = spec.get("data_type", "float")
    if data_type not in ("float", "byte", "binary"):
        raise MapperParsingError(
            "Invalid value provided for [data_type] field. Supported values are [float, byte, binary]"
        )
    if data_type == "binary" and dim % 8:
        raise MapperParsingError("Dimension should be multiply of 8 for binary vector data type")
    method = spec.get("method")
    if method is not None and not isinstance(method, dict):
        raise MapperParsingError(f"Unable to parse [method] for field [{path}]: expected an object")
    space = _knn_space(spec, method or {}, data_type)
    if method is not None:
        _validate_knn_method(method, space, data_type)
        from mlsearch.engine.vectors.quantize import encoder_error  # late: the vectors package imports this module

        if (problem := encoder_error(spec)) is not None:
            raise MapperParsingError(problem)
    mode = spec.get("mode")
    if mode is not None and mode not in _KNN_MODES:
        raise MapperParsingError(f"Invalid mode: {mode}. Valid values are {list(_KNN_MODES)}")
    level = spec.get("compression_level")
    if level is not None and level not in _KNN_COMPRESSION:
        raise MapperParsingError(f"Invalid compression level: {level}. Valid values are {list(_KNN_COMPRESSION)}")
    if mode == "on_disk" and data_type != "float":
        raise MapperParsingError(f"Mode [on_disk] is only supported for [float] data type, got [{data_type}]")


def _knn_space(spec: dict[str, Any], method: dict[str, Any], data_type: str) -> str:
    top, inner = spec.get("space_type"), method.get("space_type")
    if top is not None and inner is not None and top != inner:
        raise MapperParsingError(
            'Space type in "method" and top level space type should be same or one of them should be defined'
        )
    space = top or inner or ("hamming" if data_type == "binary" else "l2")
    if space not in _KNN_SPACES:
        raise MapperParsingError(f"Unable to find space: {space}")
    if (data_type == "binary") != (space in ("hamming", "hammingbit")):
        raise MapperParsingError(f"Space type [{space}] is not supported with [{data_type}] data type")
    return str(space)


def _validate_knn_method(method: dict[str, Any], space: str, data_type: str) -> None:
    engine = method.get("engine", "faiss")
    if engine not in _KNN_ENGINES:
        raise MapperParsingError(f"Invalid engine type: {engine}")
    name = method.get("name")
    if name is None:
        raise MapperParsingError("Method name missing")
    if name not in _KNN_METHODS[engine]:
        raise MapperParsingError(f"Invalid method name: {name}")
    if space not in _KNN_ENGINE_SPACES[engine]:
        raise MapperParsingError(f"Validation Failed: 1: Space type [{space}] not supported by engine [{engine}];")
    if data_type != "float" and engine == "nmslib":
        raise MapperParsingError(f"[data_type] field with value [{data_type}] is not supported for [nmslib] engine")
    params = method.get("parameters") or {}
    if not isinstance(params, dict):
        raise MapperParsingError("Unable to parse [parameters] of [method]: expected an object")
    for key in ("m", "ef_construction", "ef_search", "nlist", "nprobes"):
        value = params.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise MapperParsingError(f"Validation Failed: 1: Invalid value for parameter [{key}]: {value};")


def check_knn_mapping(mappings: Mappings, settings: Mapping[str, Any]) -> None:
    """`method` and `model_id` need `index.knn: true` (the k-NN plugin rejects them otherwise)."""
    if str(settings.get("index.knn", False)).lower() == "true":
        return
    for leaf in mappings.fields.values():
        if leaf.type == "knn_vector" and ("method" in leaf.params or "model_id" in leaf.params):
            raise MapperParsingError(
                "Failed to parse mapping [_doc]: Cannot set modelId or method parameters when index.knn setting "
                "is false",
                caused_by={
                    "type": "illegal_argument_exception",
                    "reason": "Cannot set modelId or method parameters when index.knn setting is false",
                },
            )
