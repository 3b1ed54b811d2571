"""ONNX models on onnxruntime (CPU).

Threads: intra-op threads = the cores this process may use, inter-op 1. One predict call is one big batch run
sequentially through the graph, so all cores should work inside each operator; concurrency across callers goes
through the dynamic batcher (one worker per model), which merges requests instead of running sessions side by side
and oversubscribing the cores. Pass `intra_op_threads=1` to load() when running many single-thread workers instead."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mlsearch.errors import IllegalArgumentError
from mlsearch.ml.predictor import ModelConfig
from mlsearch.ml.runtimes._encoder import (
    SPARSE_TOKENIZE,
    TEXT_EMBEDDING,
    EncoderPredictor,
    core_count,
    find_model_file,
    tokenizer_only,
)
from mlsearch.ml.runtimes._tokenize import Batch, TextTokenizer

_NUMPY_TYPES = {"tensor(int64)": np.int64, "tensor(int32)": np.int32}


class OnnxRuntime:
    """Runtime for model_format ONNX."""

    model_format = "ONNX"

    def __init__(self, intra_op_threads: int | None = None) -> None:
        self.intra_op_threads = intra_op_threads

    def load(self, model_dir: Path, function_name: str, config: ModelConfig) -> EncoderPredictor:
        if function_name.upper() == SPARSE_TOKENIZE:
            return tokenizer_only(model_dir, config)
        import onnxruntime as ort

        model_path = find_model_file(model_dir, (".onnx",))
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.intra_op_threads or core_count()
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own Fail / InvalidGraph / ... types
            raise IllegalArgumentError(f"cannot load ONNX model [{model_path.name}]: {exc}") from exc
        predictor = EncoderPredictor(
            function_name, TextTokenizer.from_dir(model_dir, config), _forward(session), config
        )
        if predictor.function_name == TEXT_EMBEDDING:
            predictor.check_dimension()
        return predictor


def _forward(session):  # type: ignore[no-untyped-def]
    """Feed the inputs the graph declares (token_type_ids is optional in many exports), in the integer type it wants."""
    inputs = [(i.name, _NUMPY_TYPES.get(i.type, np.int64)) for i in session.get_inputs()]
    output_names = [o.name for o in session.get_outputs()]
    known = {"input_ids", "attention_mask", "token_type_ids"}
    unknown = [name for name, _ in inputs if name not in known]
    if unknown:
        raise IllegalArgumentError(f"ONNX model has inputs this runtime cannot feed: {unknown}")

    def forward(batch: Batch) -> dict[str, np.ndarray]:
        feeds = batch.feeds()
        values = session.run(output_names, {name: feeds[name].astype(dtype, copy=False) for name, dtype in inputs})
        return dict(zip(output_names, values, strict=True))

    return forward
