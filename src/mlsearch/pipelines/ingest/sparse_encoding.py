"""`sparse_encoding`: token -> weight maps from a SPARSE_ENCODING model, with neural-search's pruning options."""

from __future__ import annotations

from typing import Any

from mlsearch.errors import StatusError
from mlsearch.ml.predictor import PredictInput
from mlsearch.pipelines.base import Config, registry
from mlsearch.pipelines.ingest._model import ModelProcessor

PRUNE_TYPES = ("none", "top_k", "max_ratio", "alpha_mass", "abs_value")


def prune(weights: dict[str, float], prune_type: str, ratio: float) -> dict[str, float]:
    """neural-search's PruneUtils: keep the tokens the rule selects, in descending weight order."""
    if prune_type == "none" or not weights:
        return dict(weights)
    ranked = sorted(weights.items(), key=lambda kv: -kv[1])
    if prune_type == "top_k":
        kept = ranked[: int(ratio)]
    elif prune_type == "max_ratio":
        kept = [kv for kv in ranked if kv[1] >= ranked[0][1] * ratio]
    elif prune_type == "abs_value":
        kept = [kv for kv in ranked if kv[1] >= ratio]
    else:  # alpha_mass: highest weights while their running sum stays within ratio * total
        total, running, kept = sum(weights.values()), 0.0, []
        for token, weight in ranked:
            running += weight
            if running > ratio * total and kept:
                break
            kept.append((token, weight))
    return dict(kept)


class SparseEncodingProcessor(ModelProcessor):
    type = "sparse_encoding"
    list_key = "sparse_encoding"

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.prune_type = config.string("prune_type", "none").lower()
        if self.prune_type not in PRUNE_TYPES:
            raise config.error("prune_type", f"Unknown prune type: {self.prune_type}")
        ratio = config.number("prune_ratio", None)
        if self.prune_type != "none" and ratio is None:
            raise config.error("prune_ratio", "prune ratio must be provided when prune type is not none")
        if ratio is not None and self.prune_type == "none":
            raise config.error("prune_ratio", "prune ratio is not applicable when prune type is none")
        self.prune_ratio = float(ratio or 0.0)
        _check_ratio(config, self.prune_type, self.prune_ratio)

    def encode(self, texts: list[str]) -> list[Any]:
        results = self.models().infer(self.model_id, PredictInput(text_docs=texts))
        out = []
        for tensors in results:
            for tensor in tensors:
                response = (tensor.data_as_map or {}).get("response")
                if not isinstance(response, list):
                    raise StatusError("The model response is missing the required 'response' key", status=400)
                out.extend(prune(dict(r), self.prune_type, self.prune_ratio) for r in response)
        return out


def _check_ratio(config: Config, prune_type: str, ratio: float) -> None:
    valid = {
        "top_k": ratio > 0 and ratio == int(ratio),
        "max_ratio": 0 <= ratio < 1,
        "alpha_mass": 0 <= ratio < 1,
        "abs_value": ratio > 0,
    }.get(prune_type, True)
    if not valid:
        raise config.error("prune_ratio", f"Illegal prune_ratio {ratio:g} for prune_type: {prune_type}")


@registry.register("sparse_encoding")
def _factory(config: Config) -> SparseEncodingProcessor:
    return SparseEncodingProcessor(config)
