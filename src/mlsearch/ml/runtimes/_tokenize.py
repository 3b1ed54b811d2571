"""Tokenization for local models: the Rust `tokenizers` library, padding done here per length-sorted batch."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tokenizers import Encoding, Tokenizer

from mlsearch.errors import IllegalArgumentError
from mlsearch.ml.predictor import ModelConfig

DEFAULT_MAX_LENGTH = 512


@dataclass(frozen=True, slots=True)
class Batch:
    """Padded model inputs for a group of encodings (right padding, int64 as BERT-style ONNX graphs expect)."""

    input_ids: np.ndarray
    attention_mask: np.ndarray
    token_type_ids: np.ndarray

    def feeds(self) -> dict[str, np.ndarray]:
        return {
            "input_ids": self.input_ids,
            "attention_mask": self.attention_mask,
            "token_type_ids": self.token_type_ids,
        }


class TextTokenizer:
    """A `tokenizer.json` with padding off and truncation at the model's maximum length.

    Padding is switched off because the shipped tokenizer.json files often pad to a fixed length (128 for
    all-MiniLM-L6-v2), which would waste most of the compute on short texts; we pad each length-sorted batch to its own
    longest member instead. Truncation is set explicitly for the same reason: those files may truncate at a length
    other than the one sentence-transformers uses (256 for MiniLM)."""

    def __init__(self, tokenizer: Tokenizer, max_length: int) -> None:
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length)
        self._tokenizer = tokenizer
        self.max_length = max_length
        self.pad_id = _pad_id(tokenizer)
        # Special tokens ([CLS], [SEP], [PAD], ...) never carry weight in sparse outputs.
        self.special_ids = np.array(
            sorted(i for i, t in tokenizer.get_added_tokens_decoder().items() if t.special), dtype=np.int64
        )

    @classmethod
    def from_dir(cls, model_dir: Path, config: ModelConfig) -> TextTokenizer:
        path = model_dir / "tokenizer.json"
        if not path.is_file():
            raise IllegalArgumentError(f"model artefact has no tokenizer.json in {model_dir.name}")
        tokenizer = Tokenizer.from_file(str(path))
        return cls(tokenizer, resolve_max_length(model_dir, config, tokenizer))

    def encode(self, texts: Sequence[str]) -> list[Encoding]:
        return self._tokenizer.encode_batch(list(texts), add_special_tokens=True)

    def encode_pairs(self, query: str, docs: Sequence[str]) -> list[Encoding]:
        return self._tokenizer.encode_batch([(query, d) for d in docs], add_special_tokens=True)

    def id_to_token(self, token_id: int) -> str | None:
        return self._tokenizer.id_to_token(token_id)

    def vocab_size(self) -> int:
        return self._tokenizer.get_vocab_size(with_added_tokens=True)

    def pad(self, encodings: Sequence[Encoding]) -> Batch:
        width = max((len(e.ids) for e in encodings), default=0)
        ids = np.full((len(encodings), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(encodings), width), dtype=np.int64)
        types = np.zeros((len(encodings), width), dtype=np.int64)
        for row, enc in enumerate(encodings):
            n = len(enc.ids)
            ids[row, :n] = enc.ids
            mask[row, :n] = 1
            types[row, :n] = enc.type_ids
        return Batch(ids, mask, types)


def resolve_max_length(model_dir: Path, config: ModelConfig, tokenizer: Tokenizer | None = None) -> int:
    """The truncation length, most specific source first.

    model_config.max_length / model_max_length > sentence-transformers' max_seq_length > the tokenizer.json's own
    truncation > max_position_embeddings of the model's config > 512."""
    if config.max_length:
        return int(config.max_length)
    if config.extra.get("model_max_length"):
        return int(config.extra["model_max_length"])
    st_config = _read_json(model_dir / "sentence_bert_config.json")
    if st_config.get("max_seq_length"):
        return int(st_config["max_seq_length"])
    if tokenizer is not None and tokenizer.truncation and tokenizer.truncation.get("max_length"):
        return int(tokenizer.truncation["max_length"])
    all_config = _parse_json(config.all_config) or _read_json(model_dir / "config.json")
    if all_config.get("max_position_embeddings"):
        # RoBERTa-family configs count two reserved positions; 512 is their real limit.
        return min(int(all_config["max_position_embeddings"]), DEFAULT_MAX_LENGTH)
    return DEFAULT_MAX_LENGTH


def _pad_id(tokenizer: Tokenizer) -> int:
    for token in ("[PAD]", "<pad>", "<|endoftext|>"):
        token_id = tokenizer.token_to_id(token)
        if token_id is not None:
            return token_id
    return 0


def _read_json(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _parse_json(text: str | None) -> dict:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
