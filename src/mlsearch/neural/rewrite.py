"""Rewrite the model-backed queries of a search body into engine queries, as neural-search's query rewrite does.

`neural` becomes `knn` with the query embedding (same k / min_score / max_distance / filter / method_parameters /
rescore / boost / _name); `neural_sparse` with `query_text` becomes `neural_sparse` with `query_tokens` (from a sparse
encoding or tokenizer model, or an analyzer). Queries are found anywhere in the body (bool, hybrid, nested,
function_score, ...); model calls are batched per model, one `infer` per model and request."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from mlsearch.engine.analysis import Analyzers, known_analyzer
from mlsearch.engine.bert_analyzer import token_weights
from mlsearch.errors import IllegalArgumentError, ParsingError
from mlsearch.ml.predictor import PredictInput, Tensor

_NEURAL_KEYS = {
    "query_text",
    "query_image",
    "model_id",
    "k",
    "min_score",
    "max_distance",
    "filter",
    "method_parameters",
    "rescore",
    "expand_nested_docs",
    "boost",
    "_name",
    "semantic_field_search_analyzer",
    "query_tokens",
}
# What a `neural` query hands on to the `knn` query it becomes.
_KNN_KEYS = (
    "k",
    "min_score",
    "max_distance",
    "filter",
    "method_parameters",
    "rescore",
    "expand_nested_docs",
    "boost",
    "_name",
)
DEFAULT_K = 10
DENSE_FUNCTIONS = {"TEXT_EMBEDDING", "REMOTE"}
SPARSE_FUNCTIONS = {"SPARSE_ENCODING", "SPARSE_TOKENIZE", "REMOTE"}
_NO_MODEL = "model id must be provided in neural query or a default model id must be set in search request processor"


class Models(Protocol):
    """What the rewriter needs of ML Commons (MLService)."""

    def infer(self, model_id: str, inputs: PredictInput) -> list[list[Tensor]]: ...

    def model_function(self, model_id: str) -> str: ...


Analyze = Callable[[str, str], list[str]]
# field name -> its semantic query target (embedding_field, model_id, dense, analyzer), or None
SemanticTargets = Callable[[str], Any]


@dataclass(slots=True)
class _Site:
    """One query to rewrite: the object `{"neural": {...}}` holding it, and what its model must compute."""

    holder: dict[str, Any]
    kind: str  # neural | neural_sparse
    field: str
    spec: dict[str, Any]
    model_id: str | None
    texts: list[str] = field(default_factory=list)
    result: Any = None
    nested: str | None = None  # a chunked semantic field: the query runs on its chunks, parents score by the best


def mentions_models(body: Any) -> bool:
    """Whether a body holds a query this module rewrites (cheap; lets plain searches skip the copy)."""
    return any(True for _ in _holders(body))


def rewrite(
    body: dict[str, Any], models: Models, analyze: Analyze | None = None, semantic: SemanticTargets | None = None
) -> dict[str, Any]:
    """A copy of `body` with every neural / neural_sparse-with-text query turned into what the engine runs;
    `semantic` names the embedding field and model of a `semantic` field (None for other fields)."""
    if not mentions_models(body):
        return body
    body = copy.deepcopy(body)
    sites = [_site(holder, semantic) for holder in _holders(body)]
    sites = [s for s in sites if s is not None]
    _run_models(sites, models, analyze or Analyzers().analyze)
    for site in sites:
        _replace(site)
    return body


# ---- finding ---------------------------------------------------------------------------------------------------


_CONTAINERS = frozenset((dict, list))


def _holders(obj: Any) -> Iterator[dict[str, Any]]:
    """Every object whose single key is `neural` or `neural_sparse` with a field object under it."""
    if isinstance(obj, dict):
        if len(obj) == 1 and _is_model_query(*next(iter(obj.items()))):
            yield obj
            return
        for value in obj.values():
            yield from _holders(value)
    elif isinstance(obj, list) and not _CONTAINERS.isdisjoint(map(type, obj)):
        # The check stays in C: a query vector's numbers are not walked one generator each (~90 us at 384-d).
        for value in obj:
            yield from _holders(value)


def _is_model_query(name: str, value: Any) -> bool:
    if name not in ("neural", "neural_sparse") or not isinstance(value, dict) or not value:
        return False
    if not all(isinstance(v, dict) for v in value.values()):
        return False  # a field named `neural` in some other query
    return name == "neural" or any("query_text" in v for v in value.values())


def _site(holder: dict[str, Any], semantic: SemanticTargets | None = None) -> _Site | None:
    ((kind, body),) = holder.items()
    if len(body) != 1:
        names = list(body)
        raise ParsingError(f"[{kind}] query doesn't support multiple fields, found [{names[0]}] and [{names[1]}]")
    ((name, spec),) = body.items()
    target = semantic(name) if semantic is not None and kind == "neural" else None
    if target is not None:
        return _semantic_site(holder, spec, target)
    return _neural_site(holder, name, spec) if kind == "neural" else _sparse_site(holder, name, spec)


def _semantic_site(holder: dict[str, Any], spec: dict[str, Any], target: Any) -> _Site:
    """`neural` on a semantic field: k-NN on its embedding for a dense model, neural_sparse for a sparse one, with
    the field's search model unless the query names one."""
    if target.dense:
        site = _neural_site(holder, target.embedding_field, {"model_id": target.model_id, **spec})
        site.nested = target.nested_path
        return site
    for key in spec:
        if key not in ("query_text", "model_id", "semantic_field_search_analyzer", "boost", "_name"):
            raise IllegalArgumentError(
                f"[neural] query does not support [{key}] for a semantic field with a sparse model"
            )
    text = spec.get("query_text")
    if not isinstance(text, str) or not text.strip():
        raise IllegalArgumentError("query_text field can not be empty")
    sparse = {k: spec[k] for k in ("boost", "_name") if k in spec}
    analyzer = spec.get("semantic_field_search_analyzer") or target.analyzer
    if analyzer is not None and "model_id" not in spec:
        return _Site(holder, "neural_sparse", target.embedding_field, {**sparse, "analyzer": analyzer}, None, [text])
    model_id = _model_id({"model_id": spec.get("model_id", target.model_id)})
    return _Site(holder, "neural_sparse", target.embedding_field, sparse, model_id, [text])


def _neural_site(holder: dict[str, Any], name: str, spec: dict[str, Any]) -> _Site:
    for key in spec:
        if key not in _NEURAL_KEYS:
            raise ParsingError(f"[neural] query does not support [{key}]")
    for key in ("query_tokens", "semantic_field_search_analyzer"):
        if key in spec:
            raise IllegalArgumentError(f"[neural] query does not support [{key}] for a knn_vector field")
    text, image = spec.get("query_text"), spec.get("query_image")
    if not text and not image:
        raise IllegalArgumentError("Either query_text or query_image must be provided.")
    for key, value in (("query_text", text), ("query_image", image)):
        if value is not None and not isinstance(value, str):
            raise ParsingError(f"[neural] {key} must be a string")
    if sum(spec.get(k) is not None for k in ("k", "min_score", "max_distance")) > 1:
        raise IllegalArgumentError("Only one of k, max_distance, or min_score can be provided")
    model_id = _model_id(spec)
    texts = [t for t in (text, image) if t]
    return _Site(holder, "neural", name, spec, model_id, texts)


def _sparse_site(holder: dict[str, Any], name: str, spec: dict[str, Any]) -> _Site:
    text = spec.get("query_text")
    if not isinstance(text, str) or not text.strip():
        raise IllegalArgumentError("query_text field can not be empty")
    if "model_id" in spec and "analyzer" in spec:
        raise IllegalArgumentError("[neural_sparse] model_id and analyzer can not be set at the same time")
    model_id = _model_id(spec) if "model_id" in spec else None
    analyzer = spec.get("analyzer", "bert-uncased")
    if model_id is None and (not isinstance(analyzer, str) or not analyzer.strip()):
        raise IllegalArgumentError("analyzer field can not be empty")
    return _Site(holder, "neural_sparse", name, spec, model_id, [text])


def _model_id(spec: dict[str, Any]) -> str:
    model_id = spec.get("model_id")
    if model_id is None:
        raise IllegalArgumentError(_NO_MODEL)
    if not isinstance(model_id, str) or not model_id.strip():
        raise IllegalArgumentError("model_id field can not be empty")
    return model_id


# ---- running the models ----------------------------------------------------------------------------------------


def _run_models(sites: list[_Site], models: Models, analyze: Analyze) -> None:
    by_model: dict[tuple[str, str], list[_Site]] = {}
    for site in sites:
        if site.model_id is None:
            site.result = _analyzed(site, analyze)
        else:
            by_model.setdefault((site.kind, site.model_id), []).append(site)
    for (kind, model_id), group in by_model.items():
        function = models.model_function(model_id).upper()
        if kind == "neural":
            _embed(group, model_id, function, models)
        else:
            _encode(group, model_id, function, models)


def _embed(group: list[_Site], model_id: str, function: str, models: Models) -> None:
    if function not in DENSE_FUNCTIONS:
        raise IllegalArgumentError(
            f"[neural] model [{model_id}] is a {function} model; the neural query needs a text embedding model"
        )
    plain = [s for s in group if len(s.texts) == 1 and "query_image" not in s.spec]
    for site in group:
        if site not in plain:
            if function != "REMOTE":
                raise IllegalArgumentError(
                    f"[neural] query_image needs a multimodal model; model [{model_id}] embeds text only"
                )
            # text + image make one input pair: one vector for the pair (text_image_embedding semantics)
            site.result = _vectors(models.infer(model_id, PredictInput(text_docs=site.texts)), model_id)[0]
    if plain:
        vectors = _vectors(models.infer(model_id, PredictInput(text_docs=[s.texts[0] for s in plain])), model_id)
        if len(vectors) != len(plain):
            raise IllegalArgumentError(f"model [{model_id}] returned {len(vectors)} embeddings for {len(plain)} texts")
        for site, vector in zip(plain, vectors, strict=True):
            site.result = vector


def _vectors(results: list[list[Tensor]], model_id: str) -> list[list[float]]:
    """The embeddings of a predict result: each tensor's data, or a remote model's `dataAsMap.response`."""
    out: list[list[float]] = []
    for tensors in results:
        for tensor in tensors:
            if tensor.data is not None:
                if tensor.name in ("sentence_embedding", "") or len(tensors) == 1:
                    out.append(np.asarray(tensor.data, dtype=np.float32).ravel().tolist())
                continue
            response = (tensor.data_as_map or {}).get("response")
            if response is None:
                raise IllegalArgumentError(
                    "The remote model response is missing the required 'response' key in dataAsMap"
                )
            rows = response if response and isinstance(response[0], list) else [response]
            out.extend([float(x) for x in row] for row in rows)
    if not out:
        raise IllegalArgumentError(f"model [{model_id}] returned no embedding")
    return out


def _encode(group: list[_Site], model_id: str, function: str, models: Models) -> None:
    if function not in SPARSE_FUNCTIONS:
        raise IllegalArgumentError(
            f"[neural_sparse] model [{model_id}] is a {function} model; the neural_sparse query needs a sparse "
            f"encoding or sparse tokenize model"
        )
    results = models.infer(model_id, PredictInput(text_docs=[s.texts[0] for s in group]))
    maps: list[dict[str, Any]] = []
    for tensors in results:
        for tensor in tensors:
            response = (tensor.data_as_map or {}).get("response")
            if isinstance(response, list):
                maps.extend(m for m in response if isinstance(m, dict))
    if len(maps) != len(group):
        raise IllegalArgumentError(f"model [{model_id}] returned {len(maps)} sparse encodings for {len(group)} texts")
    for site, tokens in zip(group, maps, strict=True):
        site.result = {str(t): float(w) for t, w in tokens.items()}


def _analyzed(site: _Site, analyze: Analyze) -> dict[str, float]:
    """Doc-only mode with an analyzer: each token weighs what the analyzer's token weights say (1.0 without them,
    and for every token of a non-DL analyzer); tokens weighing 0 or less are dropped, as neural-search does."""
    name = str(site.spec.get("analyzer", "bert-uncased"))
    if not known_analyzer(name):
        raise IllegalArgumentError(f"Analyzer [{name}] not found in shard context. ")
    weights = token_weights(name)
    out: dict[str, float] = {}
    for token in analyze(name, site.texts[0]):
        weight = 1.0 if weights is None else weights.get(token, 1.0)
        if weight > 0:
            out[token] = weight
    return out


# ---- replacing -------------------------------------------------------------------------------------------------


def _replace(site: _Site) -> None:
    site.holder.clear()
    if site.kind == "neural":
        knn: dict[str, Any] = {"vector": site.result}
        knn.update({k: site.spec[k] for k in _KNN_KEYS if site.spec.get(k) is not None})
        if not any(k in knn for k in ("k", "min_score", "max_distance")):
            knn["k"] = DEFAULT_K
        if site.nested is None:
            site.holder["knn"] = {site.field: knn}
        else:
            inner = {"knn": {site.field: knn}}
            site.holder["nested"] = {"path": site.nested, "query": inner, "score_mode": "max"}
        return
    sparse = {k: v for k, v in site.spec.items() if k not in ("query_text", "model_id", "analyzer")}
    sparse["query_tokens"] = site.result
    site.holder["neural_sparse"] = {site.field: sparse}
