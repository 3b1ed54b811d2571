"""The Predictor protocol: what a deployed model offers to the predict API and to ingest / search pipelines.

Records (what a model is) live in the registry; predictors (a model loaded and ready) live in memory only. A
predictor takes a batch of inputs and returns, per input, the output tensors ML Commons reports."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np


@dataclass(frozen=True, slots=True)
class ModelConfig:
    """`model_config` of a model record (text embedding / sparse / cross-encoder models)."""

    model_type: str | None = None  # bert, distilbert, roberta, ...
    embedding_dimension: int | None = None
    framework_type: str | None = None  # SENTENCE_TRANSFORMERS | HUGGINGFACE_TRANSFORMERS
    pooling_mode: str | None = None  # MEAN, MEAN_SQRT_LEN, MAX, WEIGHTEDMEAN, CLS, LASTTOKEN
    normalize_result: bool | None = None
    all_config: str | None = None  # the model's config.json as a string
    max_length: int | None = None  # truncation; from all_config's max_position_embeddings when absent
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PredictInput:
    """One predict call's inputs, as the predict API and pipelines give them."""

    text_docs: Sequence[str] = ()
    query_text: str | None = None  # TEXT_SIMILARITY: scored against each of text_docs
    target_response: Sequence[str] | None = None  # tensor names to keep
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Tensor:
    """One output tensor, rendered by the API as ML Commons' ModelTensor."""

    name: str
    data: np.ndarray | None = None  # float32 for embeddings and similarities
    data_as_map: dict[str, Any] | None = None  # sparse encodings: {"response": [{token: weight, ...}]}

    @property
    def shape(self) -> tuple[int, ...] | None:
        return None if self.data is None else tuple(self.data.shape)


class Predictor(Protocol):
    """A deployed model. Implementations are thread-safe; `predict` may batch across concurrent callers."""

    function_name: str  # TEXT_EMBEDDING | SPARSE_ENCODING | SPARSE_TOKENIZE | TEXT_SIMILARITY | REMOTE | ...

    def predict(self, inputs: PredictInput) -> list[list[Tensor]]:
        """Per input (text doc), its output tensors."""
        ...

    def close(self) -> None: ...


class Runtime(Protocol):
    """Loads a model's unpacked artefact directory (model file + tokenizer) into a Predictor."""

    def load(self, model_dir: Path, function_name: str, config: ModelConfig) -> Predictor: ...
