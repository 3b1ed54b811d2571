"""Built-in pre / post-processing functions of connectors, by their ML Commons names (spec §3.5), and the
declarative `response_mapping` extension. Other function texts are Painless scripts, run by `painless.run_script`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import orjson

from mlsearch.errors import IllegalArgumentError
from mlsearch.ml.connectors import jsonpath
from mlsearch.ml.predictor import PredictInput, Tensor

PreProcess = Callable[[PredictInput], dict[str, Any]]
PostProcess = Callable[[Any, str | None], list[Tensor]]

PRE: dict[str, PreProcess] = {}
POST: dict[str, tuple[str, PostProcess]] = {}  # name -> (default response filter, builder)
DEFAULT_PRE = "connector.pre_process.default.embedding"


def pre(*names: str) -> Callable[[PreProcess], PreProcess]:
    def register(fn: PreProcess) -> PreProcess:
        for name in names:
            PRE[name] = fn
        return fn

    return register


def post(name: str, default_filter: str) -> Callable[[PostProcess], PostProcess]:
    def register(fn: PostProcess) -> PostProcess:
        POST[name] = (default_filter, fn)
        return fn

    return register


def is_builtin(name: str) -> bool:
    return name in PRE or name in POST


# ---- pre-process ------------------------------------------------------------------------------------------


def _texts(inputs: PredictInput) -> list[str]:
    if not inputs.text_docs:
        raise IllegalArgumentError("Empty text docs")
    return list(inputs.text_docs)


@pre("connector.pre_process.openai.embedding", "connector.pre_process.default.embedding")
def _openai_embedding(inputs: PredictInput) -> dict[str, Any]:
    return {"input": _texts(inputs)}


@pre("connector.pre_process.cohere.embedding")
def _cohere_embedding(inputs: PredictInput) -> dict[str, Any]:
    return {"texts": _texts(inputs)}


@pre("connector.pre_process.cohere.multimodal_embedding")
def _cohere_images(inputs: PredictInput) -> dict[str, Any]:
    return {"images": _texts(inputs)}


@pre("connector.pre_process.bedrock.embedding")
def _bedrock_embedding(inputs: PredictInput) -> dict[str, Any]:
    return {"inputText": _texts(inputs)[0]}


@pre("connector.pre_process.bedrock.multimodal_embedding")
def _bedrock_multimodal(inputs: PredictInput) -> dict[str, Any]:
    docs = list(inputs.text_docs)
    if not docs:
        raise IllegalArgumentError("No input text or image provided")
    out: dict[str, Any] = {"inputText": docs[0]}
    if len(docs) > 1:
        out["inputImage"] = docs[1]
    return out


@pre("connector.pre_process.cohere.rerank", "connector.pre_process.default.rerank")
def _cohere_rerank(inputs: PredictInput) -> dict[str, Any]:
    docs = _rerank_docs(inputs)
    return {"query": inputs.query_text, "documents": docs, "top_n": len(docs)}


@pre("connector.pre_process.bedrock.rerank")
def _bedrock_rerank(inputs: PredictInput) -> dict[str, Any]:
    docs = _rerank_docs(inputs)
    sources = [{"inlineDocumentSource": {"textDocument": {"text": d}, "type": "TEXT"}, "type": "INLINE"} for d in docs]
    queries = [{"textQuery": {"text": inputs.query_text}, "type": "TEXT"}]
    return {"queries": queries, "sources": sources, "numberOfResults": len(docs)}


def _rerank_docs(inputs: PredictInput) -> list[str]:
    if not inputs.text_docs:
        raise IllegalArgumentError("No text documents were provided")
    if inputs.query_text is None:
        raise IllegalArgumentError("No query text was provided")
    return list(inputs.text_docs)


# ---- post-process -----------------------------------------------------------------------------------------


def _vector(value: Any, dtype: type) -> np.ndarray:
    if not isinstance(value, list) or not value or not all(isinstance(x, int | float) for x in value):
        raise IllegalArgumentError("The embedding should be a non-empty List containing Float values.")
    return np.asarray(value, dtype=dtype)


def _embeddings(value: Any, dtype: type = np.float32) -> list[Tensor]:
    if not isinstance(value, list):
        raise IllegalArgumentError("Post process function input is not a List.")
    matrix = _matrix(value, dtype)
    if matrix is not None:  # the common case, checked and converted in C: one array, a row view per tensor
        return [Tensor("sentence_embedding", row) for row in matrix]
    return [Tensor("sentence_embedding", _vector(v, dtype)) for v in value]


def _matrix(value: list[Any], dtype: type) -> np.ndarray | None:
    """Equal-length numeric vectors as one 2-D array, or None (then each vector is checked on its own, with the
    message for the first bad one). numpy infers int / float only when every item is a number (bools give `b`)."""
    if not value or not all(isinstance(v, list) and v for v in value):
        return None
    try:
        matrix = np.asarray(value)
    except ValueError:  # ragged
        return None
    if matrix.ndim != 2 or matrix.dtype.kind not in "if":
        return None
    return matrix.astype(dtype, copy=False)


def _single_embedding(value: Any, dtype: type = np.float32) -> list[Tensor]:
    return [Tensor("sentence_embedding", _vector(value, dtype))]


for _name, _filter in (
    ("connector.post_process.openai.embedding", "$.data[*].embedding"),
    ("connector.post_process.cohere.embedding", "$.embeddings"),
    ("connector.post_process.default.embedding", "$[*]"),
    ("connector.post_process.bedrock.nova.embedding", "$.embeddings[*].embedding"),
):
    POST[_name] = (_filter, lambda value, _f: _embeddings(value))

# Data type from the filter's last segment, as ML Commons does (`…embeddings.int8` → INT8).
_TYPED = {"float": np.float32, "int8": np.int8, "uint8": np.uint8, "binary": np.int8, "ubinary": np.uint8}
for _suffix, _dtype in _TYPED.items():
    POST[f"connector.post_process.cohere_v2.embedding.{_suffix}"] = (
        f"$.embeddings.{_suffix}",
        lambda value, _f, _d=_dtype: _embeddings(value, _d),
    )
for _suffix in ("float", "binary"):
    POST[f"connector.post_process.bedrock_v2.embedding.{_suffix}"] = (
        f"$.embeddingsByType.{_suffix}",
        lambda value, _f, _d=_TYPED[_suffix]: _single_embedding(value, _d),
    )
POST["connector.post_process.bedrock.embedding"] = ("$.embedding", lambda value, _f: _single_embedding(value))


def _rerank(value: Any, score_key: str) -> list[Tensor]:
    if not isinstance(value, list):
        raise IllegalArgumentError("Post process function input is not a List.")
    scored: list[tuple[int, float]] = []
    for item in value:
        if not isinstance(item, dict) or "index" not in item or score_key not in item:
            raise IllegalArgumentError("The rerank result should contain index and relevance_score.")
        scored.append((int(item["index"]), float(item[score_key])))
    scored.sort()  # back to the input order of the documents
    return [Tensor("similarity", np.array([score], dtype=np.float32)) for _, score in scored]


for _name in ("connector.post_process.cohere.rerank", "connector.post_process.default.rerank"):
    POST[_name] = ("$.results", lambda value, _f: _rerank(value, "relevance_score"))
POST["connector.post_process.bedrock.rerank"] = ("$.results", lambda value, _f: _rerank(value, "relevanceScore"))


def _batch_job_arn(value: Any, _f: str | None) -> list[Tensor]:
    data = dict(value) if isinstance(value, dict) else {"response": value}
    if "jobArn" in data:
        data["processedJobArn"] = str(data["jobArn"]).replace("/", "%2F")
    return [Tensor("response", data_as_map=data)]


POST["connector.post_process.bedrock.batch_job_arn"] = ("$", _batch_job_arn)


# ---- applying them ----------------------------------------------------------------------------------------


def run_post(name: str, response: Any, response_filter: str | None) -> list[Tensor]:
    default_filter, builder = POST[name]
    return builder(jsonpath.read(response, response_filter or default_filter), response_filter)


def raw_output(response: Any, response_filter: str | None) -> list[Tensor]:
    """No post-process function: the (filtered) response as `dataAsMap`, a non-object wrapped as {"response": v}."""
    value = jsonpath.read(response, response_filter) if response_filter else response
    return [Tensor("response", data_as_map=value if isinstance(value, dict) else {"response": value})]


def mapped_output(response: Any, mapping: dict[str, str]) -> list[Tensor]:
    """`response_mapping` {tensor name: JSONPath}: vectors become tensors (one per vector), anything else dataAsMap."""
    tensors: list[Tensor] = []
    for name, path in mapping.items():
        value = jsonpath.read(response, path)
        if _is_vector(value):
            tensors.append(Tensor(name, np.asarray(value, dtype=np.float32)))
        elif isinstance(value, list) and value and all(_is_vector(v) for v in value):
            tensors.extend(Tensor(name, np.asarray(v, dtype=np.float32)) for v in value)
        else:
            tensors.append(Tensor(name, data_as_map={"response": value}))
    return tensors


def _is_vector(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(x, int | float) and not isinstance(x, bool) for x in value)
    )


def script_output(result: Any) -> list[Tensor]:
    """A Painless post-process result: ModelTensor JSON (one or a list) when it is one, else `dataAsMap`."""
    if isinstance(result, str):
        try:
            result = orjson.loads(result)
        except orjson.JSONDecodeError:
            return [Tensor("response", data_as_map={"response": result})]
    items = result if isinstance(result, list) else [result]
    if items and all(isinstance(i, dict) and "name" in i for i in items):
        return [_model_tensor(i) for i in items]
    return [Tensor("response", data_as_map=result if isinstance(result, dict) else {"response": result})]


_NP_TYPES = {"FLOAT32": np.float32, "FLOAT64": np.float64, "INT32": np.int32, "INT8": np.int8, "UINT8": np.uint8}


def _model_tensor(item: dict[str, Any]) -> Tensor:
    data = item.get("data")
    array = None
    if data is not None:
        array = np.asarray(data, dtype=_NP_TYPES.get(str(item.get("data_type", "FLOAT32")).upper(), np.float32))
        if item.get("shape"):
            array = array.reshape([int(s) for s in item["shape"]])
    return Tensor(str(item["name"]), array, item.get("dataAsMap"))
