"""ONNX models on CPU, run by onnxruntime or (on CPUs with native bf16) OpenVINO; see `_backends`.

Threads: intra-op threads = the cores this process may use, inter-op 1. One predict call is one big batch run
sequentially through the graph, so all cores should work inside each operator; concurrency across callers goes
through the dynamic batcher (one worker per model), which merges requests instead of running sessions side by side
and oversubscribing the cores. Pass `intra_op_threads=1` when running many single-thread workers instead."""

from __future__ import annotations

import logging
from pathlib import Path

from mlsearch.ml.predictor import ModelConfig
from mlsearch.ml.runtimes._backends import AUTO, check_backend, load_forward
from mlsearch.ml.runtimes._encoder import (
    SPARSE_TOKENIZE,
    TEXT_EMBEDDING,
    EncoderPredictor,
    core_count,
    find_model_file,
    tokenizer_only,
)
from mlsearch.ml.runtimes._tokenize import TextTokenizer

log = logging.getLogger(__name__)


class OnnxRuntime:
    """Runtime for model_format ONNX. `backend`: auto (default), onnxruntime or openvino."""

    model_format = "ONNX"

    def __init__(self, intra_op_threads: int | None = None, backend: str = AUTO) -> None:
        self.intra_op_threads = intra_op_threads
        self.backend = check_backend(backend)

    def load(self, model_dir: Path, function_name: str, config: ModelConfig) -> EncoderPredictor:
        if function_name.upper() == SPARSE_TOKENIZE:
            return tokenizer_only(model_dir, config)
        model_path = find_model_file(model_dir, (".onnx",))
        used, forward = load_forward(model_path, self.backend, self.intra_op_threads or core_count())
        log.info("ONNX model [%s] runs on %s", model_path.name, used)
        tokenizer = TextTokenizer.from_dir(model_dir, config)
        predictor = EncoderPredictor(function_name, tokenizer, forward, config, backend=used)
        if predictor.function_name == TEXT_EMBEDDING:
            predictor.check_dimension()
        return predictor
