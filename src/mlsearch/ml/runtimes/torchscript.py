"""TorchScript models (OpenSearch's TORCH_SCRIPT zips: `<name>.pt` + tokenizer.json) on CPU torch.

torch is optional and heavy: it is imported here, on first load, and a missing install names the extra to add."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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

TORCH_MISSING = (
    "TORCH_SCRIPT models need torch, which is not installed: pip install 'mlsearch[torch]' "
    "(on CPU-only machines: pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu)"
)


def import_torch() -> Any:
    try:
        import torch
    except ImportError as exc:
        raise IllegalArgumentError(TORCH_MISSING) from exc
    return torch


class TorchScriptRuntime:
    """Runtime for model_format TORCH_SCRIPT."""

    model_format = "TORCH_SCRIPT"

    def __init__(self, intra_op_threads: int | None = None) -> None:
        self.intra_op_threads = intra_op_threads

    def load(self, model_dir: Path, function_name: str, config: ModelConfig) -> EncoderPredictor:
        if function_name.upper() == SPARSE_TOKENIZE:
            return tokenizer_only(model_dir, config)  # no network to run, so no torch needed
        torch = import_torch()
        model_path = find_model_file(model_dir, (".pt", ".pth", ".torchscript"))
        torch.set_num_threads(self.intra_op_threads or core_count())
        try:
            module = torch.jit.load(str(model_path), map_location="cpu").eval()
        except Exception as exc:  # torch raises RuntimeError with C++ detail for bad archives
            raise IllegalArgumentError(f"cannot load TorchScript model [{model_path.name}]: {exc}") from exc
        predictor = EncoderPredictor(
            function_name, TextTokenizer.from_dir(model_dir, config), _forward(torch, module), config
        )
        if predictor.function_name == TEXT_EMBEDDING:
            predictor.check_dimension()
        return predictor


def _forward(torch: Any, module: Any):  # type: ignore[no-untyped-def]
    """opensearch-py-ml traces sentence-transformers with a dict of named tensors (as DJL passes them in ml-commons);
    plain HF traces take positional tensors. Try the dict first and remember which one worked."""
    style: list[str] = []

    def call(batch: Batch) -> Any:
        ids = torch.from_numpy(batch.input_ids)
        mask = torch.from_numpy(batch.attention_mask)
        types = torch.from_numpy(batch.token_type_ids)
        if not style or style[0] == "dict":
            try:
                out = module({"input_ids": ids, "attention_mask": mask, "token_type_ids": types})
                style[:] = ["dict"]
                return out
            except RuntimeError:
                if style:
                    raise
        style[:] = ["positional"]
        return module(ids, mask)

    def forward(batch: Batch) -> dict[str, np.ndarray]:
        with torch.inference_mode():
            out = call(batch)
        return _named_outputs(out)

    return forward


def _named_outputs(out: Any) -> dict[str, np.ndarray]:
    if isinstance(out, dict):
        return {str(k): v.detach().float().numpy() for k, v in out.items() if hasattr(v, "detach")}
    if isinstance(out, (tuple, list)):
        return {f"output_{i}": v.detach().float().numpy() for i, v in enumerate(out) if hasattr(v, "detach")}
    return {"output_0": out.detach().float().numpy()}
