"""Engines that run an ONNX graph for the ONNX runtime: onnxruntime, or OpenVINO in bf16 where the CPU computes bf16.

Why two: on CPUs with AMX / AVX512-BF16, OpenVINO runs the encoder's matmuls in bf16 (fp32 accumulation), measured
2-3x faster than fp32 onnxruntime on all-MiniLM-L6-v2 with embeddings at cosine ≥ 0.9999 of sentence-transformers'
fp32 ones (bench/embed.py). Without bf16 hardware onnxruntime stays the engine. `auto` picks OpenVINO only when it is
installed and reports BF16; `onnxruntime` / `openvino` force one (MLSEARCH_ML_ONNX_BACKEND)."""

from __future__ import annotations

import logging
import queue
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from mlsearch.errors import IllegalArgumentError
from mlsearch.ml.runtimes._tokenize import Batch

log = logging.getLogger(__name__)

Forward = Callable[[Batch], dict[str, np.ndarray]]

AUTO = "auto"
ONNXRUNTIME = "onnxruntime"
OPENVINO = "openvino"
BACKENDS = (AUTO, ONNXRUNTIME, OPENVINO)
_FEEDABLE = ("input_ids", "attention_mask", "token_type_ids")
_OPENVINO_MISSING = "the openvino ONNX backend needs openvino, which is not installed: pip install 'mlsearch[openvino]'"


def check_backend(name: str) -> str:
    """The canonical backend name (case-insensitive); an unknown one is a 400 naming the choices."""
    key = (name or AUTO).strip().lower()
    if key not in BACKENDS:
        raise IllegalArgumentError(f"unknown ONNX backend [{name}]; expected one of {list(BACKENDS)}")
    return key


def resolve_backend(name: str) -> str:
    """`auto` → openvino when it is installed and the CPU runs bf16 natively, else onnxruntime."""
    key = check_backend(name)
    if key != AUTO:
        return key
    return OPENVINO if openvino_bf16_available() else ONNXRUNTIME


@cache
def openvino_bf16_available() -> bool:
    """OpenVINO is importable and its CPU plugin lists BF16 (AVX512-BF16 or AMX): the only case it is worth it."""
    try:
        import openvino as ov
    except ImportError:
        return False
    try:
        return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    except Exception:  # a broken plugin install is the same as none
        log.warning("OpenVINO is installed but its CPU plugin does not answer; using onnxruntime", exc_info=True)
        return False


def load_forward(model_path: Path, backend: str, threads: int) -> tuple[str, Forward]:
    """(backend used, forward) for an ONNX file. With `auto`, a graph OpenVINO cannot read falls back to onnxruntime."""
    chosen = resolve_backend(backend)
    if chosen == OPENVINO:
        try:
            return OPENVINO, openvino_forward(model_path, threads)
        except IllegalArgumentError:
            if check_backend(backend) == OPENVINO:
                raise
            log.warning("OpenVINO cannot run [%s]; falling back to onnxruntime", model_path.name, exc_info=True)
    return ONNXRUNTIME, onnxruntime_forward(model_path, threads)


# -- onnxruntime -----------------------------------------------------------------------------------------------------

_NUMPY_TYPES = {"tensor(int64)": np.int64, "tensor(int32)": np.int32}


def onnxruntime_forward(model_path: Path, threads: int) -> Forward:
    """One onnxruntime session: all cores inside each operator, one inter-op thread, every graph optimisation."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    try:
        session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own Fail / InvalidGraph / ... types
        raise IllegalArgumentError(f"cannot load ONNX model [{model_path.name}]: {exc}") from exc
    inputs = [(i.name, _NUMPY_TYPES.get(i.type, np.int64)) for i in session.get_inputs()]
    _check_inputs([name for name, _ in inputs])
    output_names = [o.name for o in session.get_outputs()]

    def forward(batch: Batch) -> dict[str, np.ndarray]:
        feeds = batch.feeds()
        values = session.run(output_names, {name: feeds[name].astype(dtype, copy=False) for name, dtype in inputs})
        return dict(zip(output_names, values, strict=True))

    return forward


# -- OpenVINO --------------------------------------------------------------------------------------------------------


def openvino_forward(model_path: Path, threads: int) -> Forward:
    """The ONNX file compiled by OpenVINO's CPU plugin at its default precision (bf16 on bf16 hardware).

    LATENCY hint: one stream using every thread, as onnxruntime's session does here; concurrency comes from the
    dynamic batcher merging requests. Infer requests are not thread-safe, so each call borrows one from a pool."""
    try:
        import openvino as ov
    except ImportError as exc:
        raise IllegalArgumentError(_OPENVINO_MISSING) from exc
    core = ov.Core()
    try:
        compiled = core.compile_model(
            core.read_model(str(model_path)),
            "CPU",
            {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": threads},
        )
    except Exception as exc:  # OpenVINO raises RuntimeError / OpConversionFailure with its own detail
        raise IllegalArgumentError(f"OpenVINO cannot load ONNX model [{model_path.name}]: {exc}") from exc
    inputs = [(port.get_any_name(), _numpy_type(port)) for port in compiled.inputs]
    _check_inputs([name for name, _ in inputs])
    output_names = [port.get_any_name() for port in compiled.outputs]
    requests: queue.SimpleQueue[Any] = queue.SimpleQueue()

    def forward(batch: Batch) -> dict[str, np.ndarray]:
        feeds = batch.feeds()
        try:
            request = requests.get_nowait()
        except queue.Empty:
            request = compiled.create_infer_request()
        try:
            result = request.infer({name: feeds[name].astype(dtype, copy=False) for name, dtype in inputs})
            # The result views the request's own buffers, which its next use overwrites: copy before returning it.
            return {name: np.array(result[i]) for i, name in enumerate(output_names)}
        finally:
            requests.put(request)

    return forward


def _numpy_type(port: Any) -> type:
    return np.int32 if port.get_element_type().get_type_name() == "i32" else np.int64


def _check_inputs(names: list[str]) -> None:
    unknown = [name for name in names if name not in _FEEDABLE]
    if unknown:
        raise IllegalArgumentError(f"ONNX model has inputs this runtime cannot feed: {unknown}")
