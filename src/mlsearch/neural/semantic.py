"""The model side of the `semantic` field type: the mapping transform, the system ingest step, the query target.

- At create index / put mapping, each semantic field's model is looked up and a `<field>_semantic_info` object field is
  added beside it: `embedding` (knn_vector of the model's dimension and space type, or rank_features for a sparse
  model) and `model` (id, name, type), as neural-search's SemanticMappingTransformer does.
- On writes, after the user's pipelines, a system pipeline embeds each semantic field's text with the field's model
  through the text_embedding / sparse_encoding processors (same batching, cache and `skip_existing`) and records the
  model beside the embedding, in `_source` as in OpenSearch.
- A `neural` query on a semantic field targets its embedding field with its `search_model_id` (else `model_id`)."""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mlsearch.engine import semantic
from mlsearch.errors import IllegalArgumentError, MLSearchError, StatusError
from mlsearch.pipelines.base import Config, Services, SimpleProcessor
from mlsearch.pipelines.document import IngestDocument
from mlsearch.pipelines.ingest._field_map import lookup
from mlsearch.pipelines.ingest.sparse_encoding import SparseEncodingProcessor
from mlsearch.pipelines.ingest.text_chunking import Chunker, build_chunker
from mlsearch.pipelines.ingest.text_embedding import TextEmbeddingProcessor
from mlsearch.pipelines.runner import Pipeline, Step

SUPPORTED_ALGORITHMS = ("TEXT_EMBEDDING", "REMOTE", "SPARSE_ENCODING", "SPARSE_TOKENIZE")
SUPPORTED_REMOTE_TYPES = ("TEXT_EMBEDDING", "SPARSE_ENCODING", "SPARSE_TOKENIZE")
DENSE = "TEXT_EMBEDDING"
BATCH_SETTING = "index.neural_search.semantic_ingest_batch_size"
DEFAULT_BATCH = 10
# Sparse embeddings are pruned by default (max_ratio 0.1), as neural-search's semantic processor does.
DEFAULT_PRUNE = {"prune_type": "max_ratio", "prune_ratio": 0.1}
_MODEL_PROPS = {
    "properties": {name: {"type": "text", "index": False} for name in ("id", "name", "type")},
}

FindModel = Callable[[str], "dict[str, Any] | None"]


# ---- mapping ---------------------------------------------------------------------------------------------------


def transform_mappings(body: Any, find_model: FindModel) -> Any:
    """A copy of a `mappings` body with each semantic field's semantic info field added (its model looked up)."""
    if not isinstance(body, dict):
        return body
    body = copy.deepcopy(body)
    root = body["_doc"] if set(body) == {"_doc"} and isinstance(body["_doc"], dict) else body
    props = root.get("properties")
    if not isinstance(props, dict):
        return body
    fields = list(semantic.semantic_fields_in(props))
    for path, spec, _ in fields:
        semantic.check_names(spec, path)
    models: dict[str, dict[str, Any]] = {}
    for _, spec, _ in fields:
        model_id = str(spec["model_id"])
        if model_id not in models:
            models[model_id] = _find(find_model, model_id)
    for path, spec, holder in fields:
        spec.setdefault("raw_field_type", semantic.DEFAULT_RAW_TYPE)
        try:
            info = info_mapping(models[str(spec["model_id"])], str(spec["model_id"]), spec)
        except IllegalArgumentError as exc:
            raise IllegalArgumentError(
                f"Failed to transform the mapping for the semantic field at {path} due to {exc.reason}"
            ) from exc
        # beside the field, in the properties that hold it (a dotted key `a.b` gets `a.b_semantic_info`)
        key = next(k for k, v in holder.items() if v is spec)
        head, _, name = key.rpartition(".")
        own = semantic.info_field_name(name, spec)
        holder[f"{head}.{own}" if head else own] = info
    return body


def _find(find_model: FindModel, model_id: str) -> dict[str, Any]:
    doc = find_model(model_id)
    if doc is None:
        raise StatusError("Failed to find model", status=404)
    return doc


def model_type(doc: Mapping[str, Any], model_id: str) -> str:
    """TEXT_EMBEDDING, SPARSE_ENCODING or SPARSE_TOKENIZE (a remote model's `model_config.model_type`)."""
    algorithm = str(doc.get("algorithm", "")).upper()
    if algorithm not in SUPPORTED_ALGORITHMS:
        raise IllegalArgumentError(
            f"The algorithm {algorithm} of the model {model_id} is not supported in the semantic field. "
            f"Supported algorithms: [{','.join(SUPPORTED_ALGORITHMS)}]."
        )
    if algorithm != "REMOTE":
        return algorithm
    config = doc.get("model_config")
    if not isinstance(config, dict):
        raise IllegalArgumentError(f"Model config is null for the remote model {model_id}.")
    remote_type = str(config.get("model_type", "")).upper()
    if remote_type not in SUPPORTED_REMOTE_TYPES:
        raise IllegalArgumentError(
            f"The model type {config.get('model_type')} of the model {model_id} is not supported in the semantic "
            f"field. Supported remote model types: [{','.join(SUPPORTED_REMOTE_TYPES)}]"
        )
    return remote_type


def info_mapping(doc: Mapping[str, Any], model_id: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    """The semantic info object field for a model record: `embedding`, or nested `chunks` of text and embedding."""
    kind = model_type(doc, model_id)
    embedding = _knn_mapping(doc, model_id, spec) if kind == DENSE else {"type": "rank_features"}
    model = copy.deepcopy(_MODEL_PROPS)
    if not semantic.chunking_enabled(spec):
        return {"properties": {"embedding": embedding, "model": model}}
    if kind != DENSE:
        raise IllegalArgumentError("chunking with a sparse model is not supported by mlsearch yet")
    _chunkers(spec)  # a bad algorithm or parameter fails the mapping, not the first write
    chunks = {"type": "nested", "properties": {"text": {"type": "text"}, "embedding": embedding}}
    return {"properties": {"chunks": chunks, "model": model}}


def _chunkers(spec: Mapping[str, Any]) -> list[tuple[Chunker, int]]:
    try:
        return [build_chunker(name, params) for name, params in semantic.chunking_strategies(spec)]
    except MLSearchError as exc:
        raise IllegalArgumentError(f"Invalid chunking config: {exc.reason}") from exc


def _knn_mapping(doc: Mapping[str, Any], model_id: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    config = doc.get("model_config") if isinstance(doc.get("model_config"), dict) else {}
    dimension = config.get("embedding_dimension")
    if not isinstance(dimension, int):
        raise IllegalArgumentError(
            f"Model {model_id} is a remote text embedding model but the embedding dimension is not defined in the "
            f"model config."
        )
    extra = config.get("additional_config") if isinstance(config.get("additional_config"), dict) else {}
    space = extra.get("space_type")
    if space is None and str(doc.get("algorithm")).upper() != "REMOTE":
        space = "l2"  # pretrained configs here carry no additional_config; OpenSearch's publish l2 for these models
    if not isinstance(space, str):
        raise IllegalArgumentError(
            f"space_type is not defined or not a string in the additional_config of the model {model_id}."
        )
    custom = copy.deepcopy(spec.get("dense_embedding_config") or {})
    method = {"engine": "faiss", "space_type": space, "name": "hnsw", "parameters": {}}
    if isinstance(custom.get("method"), dict):
        method = {**method, **custom.pop("method"), "space_type": space}
        method.setdefault("parameters", {})
    return {"type": "knn_vector", "dimension": dimension, **custom, "method": method}


# ---- writes ----------------------------------------------------------------------------------------------------


def has_semantic_fields(tree: Mapping[str, Any]) -> bool:
    return any(True for _ in semantic.semantic_fields(tree.get("properties", {})))


def ingest_pipeline(
    tree: Mapping[str, Any], find_model: FindModel, services: Services, batch_size: int = DEFAULT_BATCH
) -> Pipeline | None:
    """The system pipeline that embeds an index's semantic fields, or None when it has none."""
    steps: list[Step] = []
    labels: list[tuple[str, str, dict[str, Any]]] = []
    chunked: list[tuple[str, str, list[tuple[Chunker, int]]]] = []
    for path, spec in semantic.semantic_fields(tree.get("properties", {})):
        model_id = str(spec["model_id"])
        doc = _find(find_model, model_id)
        kind = model_type(doc, model_id)
        info = semantic.info_path(path, spec)
        field_map: dict[str, Any] = {path: f"{semantic.info_field_name(path.rsplit('.', 1)[-1], spec)}.embedding"}
        if semantic.chunking_enabled(spec):
            chunked.append((path, info, _chunkers(spec)))
            field_map = {info: {"chunks": {"text": "embedding"}}}  # each chunk's text -> its embedding
        raw: dict[str, Any] = {
            "model_id": model_id,
            "field_map": field_map,
            "batch_size": batch_size,
            "skip_existing": bool(spec.get("skip_existing_embedding", False)),
        }
        if kind == DENSE:
            processor: Any = TextEmbeddingProcessor(Config("text_embedding", raw, services=services))
        else:
            raw.update(spec.get("sparse_encoding_config") or DEFAULT_PRUNE)
            processor = SparseEncodingProcessor(Config("sparse_encoding", raw, services=services))
        steps.append(Step(processor.type, processor))
        labels.append((path, info, {"id": model_id, "name": doc.get("name"), "type": kind}))
    if not steps:
        return None
    if chunked:
        steps.insert(0, Step("semantic_chunking", _Chunks(chunked)))
    steps.append(Step("semantic_model_info", _ModelInfo(labels)))
    return Pipeline("_system_semantic_field", steps)


class _ModelInfo(SimpleProcessor):
    """Writes `<info>.model` beside each embedding the document got."""

    type = "semantic_model_info"

    def __init__(self, labels: Sequence[tuple[str, str, dict[str, Any]]]) -> None:
        self.labels = labels

    def execute(self, doc: IngestDocument) -> IngestDocument | None:
        for path, info, model in self.labels:
            if lookup(doc.source, path) not in (None, "", []):
                _object_at(doc.source, info)["model"] = dict(model)
        return doc


class _Chunks(SimpleProcessor):
    """Splits each chunked semantic field's text into `<info>.chunks` ([{"text": ...}]), each strategy applied in
    turn to the pieces of the one before; the embedding step then fills each chunk's `embedding`."""

    type = "semantic_chunking"

    def __init__(self, fields: Sequence[tuple[str, str, list[tuple[Chunker, int]]]]) -> None:
        self.fields = fields

    def execute(self, doc: IngestDocument) -> IngestDocument | None:
        for path, info, chunkers in self.fields:
            value = lookup(doc.source, path)
            texts = value if isinstance(value, list) else [value]
            if not all(isinstance(t, str) for t in texts):
                raise IllegalArgumentError(f"field [{path}] is neither string nor nested type, cannot process it")
            pieces = [t for t in texts if t]
            if not pieces:
                continue
            for chunker, limit in chunkers:
                pieces = [c for piece in pieces for c in chunker(piece, limit)]
            _object_at(doc.source, info)["chunks"] = [{"text": p} for p in pieces]
        return doc


def _object_at(source: dict[str, Any], path: str) -> dict[str, Any]:
    """The object at a dotted path, created on the way."""
    node = source
    for part in path.split("."):
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    return node


# ---- search ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QueryTarget:
    """Where a `neural` query on a semantic field goes, and which model (or analyzer) encodes its text."""

    embedding_field: str
    model_id: str
    dense: bool
    analyzer: str | None = None
    nested_path: str | None = None  # the chunks' path when the field is chunked


def query_target(tree: Mapping[str, Any], field: str, find_model: FindModel) -> QueryTarget | None:
    """The query target of `field` when it is a semantic field of this mapping, else None."""
    for path, spec in semantic.semantic_fields(tree.get("properties", {})):
        if path != field:
            continue
        model_id = str(spec.get("search_model_id") or spec["model_id"])
        indexed_with = str(spec["model_id"])
        dense = model_type(_find(find_model, indexed_with), indexed_with) == DENSE
        analyzer = spec.get("semantic_field_search_analyzer")
        info = semantic.info_path(path, spec)
        if semantic.chunking_enabled(spec):
            return QueryTarget(f"{info}.chunks.embedding", model_id, dense, analyzer, f"{info}.chunks")
        return QueryTarget(f"{info}.embedding", model_id, dense, analyzer)
    return None


def targets_of(mappings: Sequence[Mapping[str, Any]], find_model: FindModel) -> Callable[[str], QueryTarget | None]:
    """The `semantic` argument of `rewrite` for a search over indices with these mapping trees: a field's target in
    the first index where it is a semantic field."""

    def target(field: str) -> QueryTarget | None:
        for tree in mappings:
            found = query_target(tree, field, find_model)
            if found is not None:
                return found
        return None

    return target
