"""`text_embedding`: dense vectors from a TEXT_EMBEDDING model, through the content-hash embedding cache."""

from __future__ import annotations

from typing import Any

import numpy as np

from mlsearch.errors import StatusError
from mlsearch.ml.predictor import PredictInput, Tensor
from mlsearch.pipelines.base import Config, registry
from mlsearch.pipelines.ingest._model import ModelProcessor


class TextEmbeddingProcessor(ModelProcessor):
    type = "text_embedding"
    list_key = "knn"

    def encode(self, texts: list[str]) -> list[Any]:
        unique = list(dict.fromkeys(texts))
        cache = self.services.cache
        cached = cache.get_many(self.model_id, unique) if cache is not None else [None] * len(unique)
        missing = [t for t, v in zip(unique, cached, strict=True) if v is None]
        found = {t: v for t, v in zip(unique, cached, strict=True) if v is not None}
        if missing:
            vectors = embed(self.models(), self.model_id, missing)
            if cache is not None:
                cache.put_many(self.model_id, missing, vectors)
            found.update(zip(missing, vectors, strict=True))
        return [found[t].tolist() for t in texts]


def embed(models: Any, model_id: str, texts: list[str]) -> list[np.ndarray]:
    """One model call for `texts`; one float32 vector per text (local tensors or a remote `response` list)."""
    results = models.infer(model_id, PredictInput(text_docs=texts, target_response=["sentence_embedding"]))
    vectors: list[np.ndarray] = []
    for tensors in results:
        vectors.extend(_vectors(tensors))
    return vectors


def _vectors(tensors: list[Tensor]) -> list[np.ndarray]:
    out = []
    for tensor in tensors:
        if tensor.data is not None:
            out.append(np.asarray(tensor.data, dtype=np.float32).reshape(-1))
        elif tensor.data_as_map and "response" in tensor.data_as_map:
            response = tensor.data_as_map["response"]
            # one vector ([0.1, ...]) or one per text ([[0.1, ...], ...]), as the neural query rewriter reads it
            rows = response if response and isinstance(response[0], list) else [response]
            out.extend(np.asarray(v, dtype=np.float32) for v in rows)
        else:
            raise StatusError(
                "The remote model response is missing the required 'response' key in its dataAsMap", status=400
            )
    return out


@registry.register("text_embedding")
def _factory(config: Config) -> TextEmbeddingProcessor:
    processor = TextEmbeddingProcessor(config)
    config.value("model_config", None)
    return processor
