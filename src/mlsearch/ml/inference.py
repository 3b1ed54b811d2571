"""Predict requests of local models: the body as a PredictInput, the predictor's tensors as ModelTensorOutput."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

import numpy as np

from mlsearch.errors import IllegalArgumentError
from mlsearch.ml.predictor import PredictInput, Tensor
from mlsearch.ml.schemas import PredictBody


def predict_input(function_name: str, body: PredictBody) -> PredictInput:
    """Check the body against the model's function, as ML Commons does, and build the predictor's input."""
    docs = list(body.text_docs or [])
    if function_name == "TEXT_SIMILARITY":
        if not docs:
            raise IllegalArgumentError("No text documents were provided")
        if body.query_text is None:
            raise IllegalArgumentError("No query text was provided")
    elif not docs:
        raise IllegalArgumentError("Empty text docs")
    # Null entries are allowed by ML Commons; the runtimes take strings, so they become empty texts.
    texts = [doc if doc is not None else "" for doc in docs]
    return PredictInput(
        text_docs=texts,
        query_text=body.query_text,
        target_response=body.target_response,
        parameters=dict(body.parameters or {}),
    )


def render_output(results: Sequence[Sequence[Tensor]], body: PredictBody, function_name: str) -> dict[str, Any]:
    """`{"inference_results": [{"output": [ModelTensor, ...]}, ...]}`, one result per input document."""
    wanted = set(body.target_response) if body.target_response else None
    rendered = []
    for tensors in results:
        kept = [t for t in tensors if wanted is None or t.name in wanted]
        rendered.append({"output": [_tensor(t, body, function_name) for t in kept]})
    return {"inference_results": rendered}


def _tensor(tensor: Tensor, body: PredictBody, function_name: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if tensor.name and function_name != "SPARSE_TOKENIZE":
        out["name"] = tensor.name
    if tensor.data is not None:
        data = np.asarray(tensor.data)
        out["data_type"] = _DATA_TYPES.get(data.dtype.str.lstrip("<>=|"), "FLOAT32")
        out["shape"] = list(data.shape)
        if body.return_number:
            out["data"] = np.ascontiguousarray(data).ravel()
        if body.return_bytes:
            little = data.astype(data.dtype.newbyteorder("<"), copy=False)
            out["byte_buffer"] = {"array": base64.b64encode(little.tobytes()).decode(), "order": "LITTLE_ENDIAN"}
    if tensor.data_as_map is not None:
        out["dataAsMap"] = tensor.data_as_map
    return out


_DATA_TYPES = {
    "f4": "FLOAT32",
    "f8": "FLOAT64",
    "f2": "FLOAT16",
    "u1": "UINT8",
    "i4": "INT32",
    "i1": "INT8",
    "i8": "INT64",
    "b1": "BOOLEAN",
}
