"""ONNX models on CPU, run by onnxruntime or (on CPUs with native bf16) OpenVINO; see `_backends`.

Threads: intra-op threads = the cores this process may use, inter-op 1. One predict call is one big batch run
sequentially through the graph, so all cores should work inside each operator; concurrency across callers goes
through the dynamic batcher (one worker per model), which merges requests instead of running sessions side by side
and oversubscribing the cores. Pass `intra_op_threads=1` when running many single-thread workers instead."""

from __future__ import annotations

import logging
from pathlib import Path

from mlsearch.ml.predictor import ModelConfig
from mlsearch.ml.runtimes._backends import AUTO, ONNXRUNTIME, check_backend, load_forward
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
        used, forward = load_forward(
            model_path, self._backend_for(function_name), self.intra_op_threads or core_count()
        )
        log.info("ONNX model [%s] runs on %s", model_path.name, used)
        tokenizer = TextTokenizer.from_dir(model_dir, config)
        predictor = EncoderPredictor(function_name, tokenizer, forward, config, backend=used)
        if predictor.function_name == TEXT_EMBEDDING:
            predictor.check_dimension()
        return predictor

    def _backend_for(self, function_name: str) -> str:
        """`auto` uses bf16 OpenVINO for text embeddings only: their parity with fp32 (cosine ≥ 0.9999) is measured.
        Sparse-encoder weights and cross-encoder scores are compared by value, not by angle, and no such model is
        here to measure bf16's error on them, so they stay on fp32 onnxruntime unless a backend is forced."""
        if self.backend == AUTO and function_name.upper() != TEXT_EMBEDDING:
            return ONNXRUNTIME
        return self.backend
