"""Model runtimes: load an unpacked model artefact into a Predictor, chosen by the record's `model_format`.

The registry maps a format name to a factory; built-ins are registered below, explicitly. A factory receives the
node's RuntimeOptions (today: which engine runs ONNX graphs)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from mlsearch.errors import IllegalArgumentError
from mlsearch.ml.predictor import Runtime
from mlsearch.ml.runtimes._backends import AUTO, BACKENDS, check_backend
from mlsearch.ml.runtimes.onnx import OnnxRuntime
from mlsearch.ml.runtimes.torchscript import TorchScriptRuntime


@dataclass(frozen=True, slots=True)
class RuntimeOptions:
    """Node-wide runtime choices (Settings.ml_onnx_backend). `onnx_backend`: auto | onnxruntime | openvino."""

    onnx_backend: str = AUTO

    def __post_init__(self) -> None:
        object.__setattr__(self, "onnx_backend", check_backend(self.onnx_backend))


RuntimeFactory = Callable[[RuntimeOptions], Runtime]

_RUNTIMES: dict[str, RuntimeFactory] = {}


def register_runtime(model_format: str, factory: RuntimeFactory) -> None:
    key = model_format.upper()
    if key in _RUNTIMES:
        raise ValueError(f"a runtime for [{key}] is already registered")
    _RUNTIMES[key] = factory


def get_runtime(model_format: str | None, options: RuntimeOptions | None = None) -> Runtime:
    """A fresh runtime for a model_format (case-insensitive); an unknown format is a 400 as in ML Commons."""
    if not model_format:
        raise IllegalArgumentError("model format is null")
    factory = _RUNTIMES.get(model_format.upper())
    if factory is None:
        raise IllegalArgumentError(f"unsupported model format [{model_format}]; expected one of {sorted(_RUNTIMES)}")
    return factory(options or RuntimeOptions())


def model_formats() -> list[str]:
    return sorted(_RUNTIMES)


register_runtime("ONNX", lambda options: OnnxRuntime(backend=options.onnx_backend))
register_runtime("TORCH_SCRIPT", lambda options: TorchScriptRuntime())

__all__ = [
    "BACKENDS",
    "OnnxRuntime",
    "RuntimeOptions",
    "TorchScriptRuntime",
    "get_runtime",
    "model_formats",
    "register_runtime",
]
