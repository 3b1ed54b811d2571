"""Pooling of token embeddings into one vector per text, vectorised over a padded batch with its attention mask."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from mlsearch.errors import IllegalArgumentError

Pooler = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _mask(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return mask[:, :, None].astype(hidden.dtype)


def _mean(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    m = _mask(hidden, mask)
    return (hidden * m).sum(axis=1) / np.clip(m.sum(axis=1), 1e-9, None)


def _mean_sqrt_len(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    m = _mask(hidden, mask)
    return (hidden * m).sum(axis=1) / np.sqrt(np.clip(m.sum(axis=1), 1e-9, None))


def _max(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    # Padding set to a large negative value (as sentence-transformers does) so it never wins the max.
    return np.where(mask[:, :, None] > 0, hidden, np.asarray(-1e9, dtype=hidden.dtype)).max(axis=1)


def _weighted_mean(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    # sentence-transformers' weightedmean: token i (1-based position) weighs i, so later tokens count more.
    positions = np.arange(1, hidden.shape[1] + 1, dtype=hidden.dtype)[None, :, None]
    m = _mask(hidden, mask) * positions
    return (hidden * m).sum(axis=1) / np.clip(m.sum(axis=1), 1e-9, None)


def _cls(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return hidden[:, 0, :]


def _last_token(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    # Right padding: the last real token sits at length - 1.
    last = np.clip(mask.sum(axis=1) - 1, 0, None)
    return hidden[np.arange(hidden.shape[0]), last, :]


POOLERS: dict[str, Pooler] = {
    "MEAN": _mean,
    "MEAN_SQRT_LEN": _mean_sqrt_len,
    "MAX": _max,
    "WEIGHTEDMEAN": _weighted_mean,
    "CLS": _cls,
    "LASTTOKEN": _last_token,
}


def pooling_mode(name: str | None) -> str:
    """The canonical pooling name for a model_config value (case-insensitive; `weighted_mean` accepted); MEAN when unset."""
    if not name:
        return "MEAN"
    key = name.upper().replace("-", "_")
    key = {"WEIGHTED_MEAN": "WEIGHTEDMEAN", "LAST_TOKEN": "LASTTOKEN", "MEANSQRTLEN": "MEAN_SQRT_LEN"}.get(key, key)
    if key not in POOLERS:
        raise IllegalArgumentError(f"unsupported pooling_mode [{name}]; expected one of {sorted(POOLERS)}")
    return key


def pool(hidden: np.ndarray, mask: np.ndarray, mode: str) -> np.ndarray:
    """[batch, tokens, dim] token embeddings → [batch, dim] float32."""
    return POOLERS[pooling_mode(mode)](hidden.astype(np.float32, copy=False), mask).astype(np.float32, copy=False)


def normalize(vectors: np.ndarray) -> np.ndarray:
    """L2-normalise rows (a zero row stays zero)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.clip(norms, 1e-12, None)).astype(np.float32, copy=False)


def sparse_activation(logits: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """SPLADE-style document weights: max over real tokens of log(1 + relu(logits)); [batch, tokens, vocab] → [batch, vocab]."""
    weights = np.log1p(np.maximum(logits.astype(np.float32, copy=False), 0.0))
    weights *= mask[:, :, None].astype(np.float32)
    return weights.max(axis=1)
