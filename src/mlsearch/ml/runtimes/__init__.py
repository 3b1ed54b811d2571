"""Model runtimes: load an unpacked model artefact into a Predictor, chosen by the record's `model_format`.

The registry maps a format name to a factory; built-ins are registered below, explicitly."""

from __future__ import annotations

from collections.abc import Callable

from mlsearch.errors import IllegalArgumentError
from mlsearch.ml.predictor import Runtime
from mlsearch.ml.runtimes.onnx import OnnxRuntime
from mlsearch.ml.runtimes.torchscript import TorchScriptRuntime

RuntimeFactory = Callable[[], Runtime]

_RUNTIMES: dict[str, RuntimeFactory] = {}


def register_runtime(model_format: str, factory: RuntimeFactory) -> None:
    key = model_format.upper()
    if key in _RUNTIMES:
        raise ValueError(f"a runtime for [{key}] is already registered")
    _RUNTIMES[key] = factory


def get_runtime(model_format: str | None) -> Runtime:
    """A fresh runtime for a model_format (case-insensitive); an unknown format is a 400 as in ML Commons."""
    if not model_format:
        raise IllegalArgumentError("model format is null")
    factory = _RUNTIMES.get(model_format.upper())
    if factory is None:
        raise IllegalArgumentError(f"unsupported model format [{model_format}]; expected one of {sorted(_RUNTIMES)}")
    return factory()


def model_formats() -> list[str]:
    return sorted(_RUNTIMES)


register_runtime("ONNX", OnnxRuntime)
register_runtime("TORCH_SCRIPT", TorchScriptRuntime)

__all__ = ["OnnxRuntime", "TorchScriptRuntime", "get_runtime", "model_formats", "register_runtime"]
