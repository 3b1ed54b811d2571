"""The model-independent half of a local predictor: tokenize, length-sort, run, pool, and shape ML Commons' tensors.

A runtime (ONNX, TorchScript) supplies only `forward`: padded inputs in, named output arrays out."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from tokenizers import Encoding

from mlsearch.errors import IllegalArgumentError
from mlsearch.ml.predictor import ModelConfig, PredictInput, Tensor
from mlsearch.ml.runtimes._pooling import normalize, pool, pooling_mode, sparse_activation
from mlsearch.ml.runtimes._tokenize import Batch, TextTokenizer

Forward = Callable[[Batch], dict[str, np.ndarray]]

TEXT_EMBEDDING = "TEXT_EMBEDDING"
TEXT_SIMILARITY = "TEXT_SIMILARITY"
SPARSE_ENCODING = "SPARSE_ENCODING"
SPARSE_TOKENIZE = "SPARSE_TOKENIZE"
FUNCTIONS = (TEXT_EMBEDDING, TEXT_SIMILARITY, SPARSE_ENCODING, SPARSE_TOKENIZE)

# Texts per forward pass inside one predict call. Inputs are sorted by token length first, so each chunk pads to
# nearly the same width; 32 keeps the [chunk, tokens, vocab] logits of sparse models within a few hundred MB.
DEFAULT_CHUNK_SIZE = 32
_POOLED_NAMES = ("sentence_embedding", "pooler_output_normalized")
_TOKEN_NAMES = ("last_hidden_state", "token_embeddings")


class EncoderPredictor:
    """A Predictor over a transformer encoder (or, for SPARSE_TOKENIZE, over the tokenizer alone). Thread-safe."""

    def __init__(
        self,
        function_name: str,
        tokenizer: TextTokenizer,
        forward: Forward | None,
        config: ModelConfig,
        *,
        idf: dict[str, float] | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        on_close: Callable[[], None] | None = None,
        backend: str = "",
    ) -> None:
        function_name = function_name.upper()
        if function_name not in FUNCTIONS:
            raise IllegalArgumentError(f"function [{function_name}] is not supported by local model runtimes")
        if forward is None and function_name != SPARSE_TOKENIZE:
            raise IllegalArgumentError(f"a {function_name} model needs a model file")
        self.function_name = function_name
        self.tokenizer = tokenizer
        self.config = config
        self.pooling_mode = pooling_mode(config.pooling_mode)
        self._forward = forward
        self._idf = idf
        self._chunk_size = max(1, chunk_size)
        self._on_close = on_close
        self.backend = backend  # the engine running the network (onnxruntime, openvino, torch), for logs and tests

    # -- Predictor -------------------------------------------------------------------------------------------------

    def predict(self, inputs: PredictInput) -> list[list[Tensor]]:
        docs = [d if d is not None else "" for d in inputs.text_docs]
        if not docs:
            return []
        if self.function_name == TEXT_EMBEDDING:
            results = [[Tensor("sentence_embedding", data=v)] for v in self.embed(docs)]
        elif self.function_name == TEXT_SIMILARITY:
            if inputs.query_text is None:
                raise IllegalArgumentError("No query text was provided")
            scores = self._run_sorted(self.tokenizer.encode_pairs(inputs.query_text, docs), self._similarity)
            results = [[Tensor("similarity", data=s.reshape(1))] for s in scores]
        else:
            by_id = str(inputs.parameters.get("sparse_embedding_format", "WORD")).upper() == "TOKEN_ID"
            maps = self._sparse(docs, by_id=by_id)
            results = [[Tensor("output", data_as_map={"response": [m]})] for m in maps]
        if inputs.target_response:
            wanted = set(inputs.target_response)
            results = [[t for t in tensors if t.name in wanted] or tensors for tensors in results]
        return results

    def close(self) -> None:
        if self._on_close is not None:
            self._on_close()
            self._on_close = None

    # -- work ------------------------------------------------------------------------------------------------------

    def embed(self, docs: Sequence[str]) -> np.ndarray:
        """[len(docs), dim] float32 embeddings, in input order."""
        vectors = self._run_sorted(self.tokenizer.encode(docs), self._embedding)
        return normalize(vectors) if self.config.normalize_result else vectors

    def check_dimension(self) -> int:
        """Run one probe text and compare the output width with model_config.embedding_dimension."""
        dim = int(self.embed(["dimension probe"]).shape[1])
        expected = self.config.embedding_dimension
        if expected is not None and int(expected) != dim:
            raise IllegalArgumentError(
                f"model output dimension [{dim}] does not match model_config.embedding_dimension [{expected}]"
            )
        return dim

    def _run_sorted(self, encodings: list[Encoding], step: Callable[[Batch], np.ndarray]) -> np.ndarray:
        """Run `step` over length-sorted chunks and put the rows back in input order (padding is the main waste)."""
        order = np.argsort([len(e.ids) for e in encodings], kind="stable")
        parts = []
        for start in range(0, len(order), self._chunk_size):
            chunk = order[start : start + self._chunk_size]
            parts.append(step(self.tokenizer.pad([encodings[i] for i in chunk])))
        sorted_rows = np.concatenate(parts, axis=0)
        out = np.empty_like(sorted_rows)
        out[order] = sorted_rows
        return out

    def _outputs(self, batch: Batch) -> dict[str, np.ndarray]:
        assert self._forward is not None
        return self._forward(batch)

    def _embedding(self, batch: Batch) -> np.ndarray:
        outputs = self._outputs(batch)
        for name in _POOLED_NAMES:
            if name in outputs and outputs[name].ndim == 2:  # traced sentence-transformers pool inside the model
                return outputs[name].astype(np.float32, copy=False)
        for name in (*_TOKEN_NAMES, *outputs):
            value = outputs.get(name)
            if value is not None and value.ndim == 3:
                return pool(value, batch.attention_mask, self.pooling_mode)
        for value in outputs.values():
            if value.ndim == 2:
                return value.astype(np.float32, copy=False)
        raise IllegalArgumentError(
            "model outputs neither token embeddings [batch, tokens, dim] nor sentence embeddings"
        )

    def _similarity(self, batch: Batch) -> np.ndarray:
        outputs = self._outputs(batch)
        logits = outputs.get("logits", next(iter(outputs.values())))
        logits = logits.reshape(logits.shape[0], -1).astype(np.float32, copy=False)
        # One logit per pair for MS MARCO cross-encoders; two-class heads score with the positive (last) class.
        return logits[:, -1]

    def _sparse_weights(self, batch: Batch) -> np.ndarray:
        outputs = self._outputs(batch)
        value = outputs.get("logits", next(iter(outputs.values())))
        weights = sparse_activation(value, batch.attention_mask) if value.ndim == 3 else value.astype(np.float32)
        if self.tokenizer.special_ids.size:
            weights[:, self.tokenizer.special_ids[self.tokenizer.special_ids < weights.shape[1]]] = 0.0
        return weights

    def _sparse(self, docs: Sequence[str], *, by_id: bool) -> list[dict[str, float]]:
        encodings = self.tokenizer.encode(docs)
        if self.function_name == SPARSE_TOKENIZE:
            return [self._tokenize_weights(e, by_id=by_id) for e in encodings]
        weights = self._run_sorted(encodings, self._sparse_weights)
        maps = []
        for row in weights:
            ids = np.flatnonzero(row > 0)
            maps.append({self._key(int(i), by_id): float(row[i]) for i in ids})
        return maps

    def _tokenize_weights(self, encoding: Encoding, *, by_id: bool) -> dict[str, float]:
        special = set(self.tokenizer.special_ids.tolist())
        out: dict[str, float] = {}
        for token_id, token in zip(encoding.ids, encoding.tokens, strict=True):
            if token_id in special:
                continue
            weight = 1.0 if self._idf is None else float(self._idf.get(token, 1.0))
            out[str(token_id) if by_id else token] = weight
        return out

    def _key(self, token_id: int, by_id: bool) -> str:
        if by_id:
            return str(token_id)
        return self.tokenizer.id_to_token(token_id) or str(token_id)


def load_idf(model_dir: Path) -> dict[str, float] | None:
    """A sparse tokenizer model's idf.json (token → weight), or None: every token then weighs 1."""
    path = model_dir / "idf.json"
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise IllegalArgumentError(f"idf.json is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise IllegalArgumentError("idf.json must map tokens to weights")
    return {str(k): float(v) for k, v in data.items()}


def tokenizer_only(model_dir: Path, config: ModelConfig) -> EncoderPredictor:
    """SPARSE_TOKENIZE models ship a tokenizer and an optional idf.json, no network; either format loads them."""
    return EncoderPredictor(
        SPARSE_TOKENIZE, TextTokenizer.from_dir(model_dir, config), None, config, idf=load_idf(model_dir)
    )


def find_model_file(model_dir: Path, suffixes: tuple[str, ...]) -> Path:
    """The model file of an unpacked artefact: OpenSearch zips keep `<name>.onnx|.pt` at the root; HF dirs may nest it."""
    candidates = sorted(p for s in suffixes for p in model_dir.glob(f"*{s}") if p.is_file())
    if not candidates:
        candidates = sorted(p for s in suffixes for p in model_dir.glob(f"*/*{s}") if p.is_file())
    if not candidates:
        raise IllegalArgumentError(f"model artefact has no {'/'.join(suffixes)} file")
    if len(candidates) > 1:
        preferred = [p for p in candidates if p.stem == "model"]
        if len(preferred) == 1:
            return preferred[0]
        raise IllegalArgumentError(f"model artefact has several model files: {', '.join(p.name for p in candidates)}")
    return candidates[0]


def core_count() -> int:
    import os

    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)
