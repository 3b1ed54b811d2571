"""The k-NN plugin's vector functions, vectorised: raw Painless values and `knn_score` scores (spec §5.5)."""

from __future__ import annotations

import numpy as np

from mlsearch.errors import IllegalArgumentError

SCRIPT_SPACES = ("l2", "l1", "linf", "cosinesimil", "innerproduct", "hamming", "hammingbit")


def check_dimension(query: np.ndarray, width: int) -> None:
    if len(query) != width:
        raise IllegalArgumentError(f"query vector dimension mismatch. Expected: {width}, Given: {len(query)}")


def l2_squared(data: np.ndarray, q: np.ndarray) -> np.ndarray:
    diff = data.astype(np.float64) - q
    return np.einsum("ij,ij->i", diff, diff)


def l1_norm(data: np.ndarray, q: np.ndarray) -> np.ndarray:
    return np.abs(data.astype(np.float64) - q).sum(axis=1)


def linf_norm(data: np.ndarray, q: np.ndarray) -> np.ndarray:
    if data.shape[0] == 0:
        return np.empty(0)
    return np.abs(data.astype(np.float64) - q).max(axis=1)


def inner_product(data: np.ndarray, q: np.ndarray) -> np.ndarray:
    return data.astype(np.float64) @ q


def cosine_similarity(data: np.ndarray, q: np.ndarray, q_norm: float | None = None) -> np.ndarray:
    """cos(q, v); `q_norm` is the query's magnitude when the caller precomputed it (3-argument form)."""
    dots = inner_product(data, q)
    qn = float(np.linalg.norm(q)) if q_norm is None else float(q_norm)
    norms = np.linalg.norm(data.astype(np.float64), axis=1) * qn
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(norms == 0, 0.0, dots / np.where(norms == 0, 1.0, norms))


def hamming_bits(data: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Differing bits between rows of bytes (binary vectors) and the query's bytes."""
    a = np.asarray(data).astype(np.int8).view(np.uint8)
    b = np.asarray(q).astype(np.int8).view(np.uint8)
    return np.bitwise_count(np.bitwise_xor(a, b)).sum(axis=1, dtype=np.int64).astype(np.float64)


def knn_score(space: str, data: np.ndarray, q: np.ndarray) -> np.ndarray:
    """The `knn_score` script's score of each row (KNNScoringSpace; cosinesimil as for indices created >= 2.19)."""
    if space == "l2":
        return 1.0 / (1.0 + l2_squared(data, q))
    if space == "l1":
        return 1.0 / (1.0 + l1_norm(data, q))
    if space == "linf":
        return 1.0 / (1.0 + linf_norm(data, q))
    if space == "innerproduct":
        ip = inner_product(data, q)
        return np.where(ip <= 0, 1.0 / (1.0 - np.minimum(ip, 0)), ip + 1.0)
    if space == "cosinesimil":
        return np.maximum((1.0 + cosine_similarity(data, q)) / 2.0, 0.0)
    return 1.0 / (1.0 + hamming_bits(data, q))  # hamming, hammingbit
