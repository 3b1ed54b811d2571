"""Space types of knn_vector fields: the engine distance `d` (lower is nearer) and OpenSearch's `_score` of it.

Distances follow the k-NN plugin's faiss engine (spec §5.4): l2 is the *squared* L2 distance, cosinesimil works on
vectors normalised at index time with d = 1 - cos, innerproduct has d = -x·y, hamming counts differing bits."""

from __future__ import annotations

from dataclasses import dataclass

import faiss
import numpy as np

SPACE_TYPES = ("l2", "l1", "linf", "cosinesimil", "innerproduct", "hamming")


@dataclass(frozen=True, slots=True)
class Space:
    """One space type: how to measure, how faiss measures, and how a distance becomes a score."""

    name: str

    @property
    def binary(self) -> bool:
        return self.name == "hamming"

    @property
    def normalizes(self) -> bool:
        return self.name == "cosinesimil"

    @property
    def faiss_metric(self) -> int:
        return {
            "l2": faiss.METRIC_L2,
            "l1": faiss.METRIC_L1,
            "linf": faiss.METRIC_Linf,
            "cosinesimil": faiss.METRIC_INNER_PRODUCT,
            "innerproduct": faiss.METRIC_INNER_PRODUCT,
        }[self.name]

    def distances(self, data: np.ndarray, query: np.ndarray) -> np.ndarray:
        """Engine distances from `query` to every row of `data` (float32; exact)."""
        if self.binary:
            return np.bitwise_count(np.bitwise_xor(data, query)).sum(axis=1, dtype=np.int64).astype(np.float32)
        if self.name in ("innerproduct", "cosinesimil"):
            dots = data @ query
            return (1.0 - dots) if self.normalizes else -dots
        diff = data - query
        if self.name == "l2":
            return np.einsum("ij,ij->i", diff, diff)
        np.abs(diff, out=diff)
        return diff.sum(axis=1) if self.name == "l1" else diff.max(axis=1)

    def from_faiss(self, raw: np.ndarray) -> np.ndarray:
        """faiss's answer (similarity for inner-product metrics) as an engine distance."""
        if self.name == "innerproduct":
            return -raw
        if self.name == "cosinesimil":
            return 1.0 - raw
        return raw

    def from_hamming(self, bits: np.ndarray) -> np.ndarray:
        """The engine distance whose `_score` is 1 / (1 + bits): a binary-quantized graph's score without rescoring,
        as the k-NN plugin reports it (its quantized index lives in Hamming space whatever the field's space)."""
        bits = np.asarray(bits, dtype=np.float32)
        if self.name == "cosinesimil":
            return 2.0 - 2.0 / (1.0 + bits)
        return bits

    def scores(self, d: np.ndarray) -> np.ndarray:
        """OpenSearch's `_score` for engine distances (spec §5.4)."""
        d = np.asarray(d, dtype=np.float64)
        if self.name == "cosinesimil":
            return np.maximum((2.0 - d) / 2.0, 0.0)
        if self.name == "innerproduct":
            return np.where(d >= 0, 1.0 / (1.0 + np.maximum(d, 0)), 1.0 - np.minimum(d, 0))
        return 1.0 / (1.0 + d)

    def prepare(self, vectors: np.ndarray) -> np.ndarray:
        """Vectors as stored: normalised for cosinesimil (zero rows stay zero: rejected earlier)."""
        if not self.normalizes:
            return vectors
        norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
        return (vectors / np.where(norms == 0, 1, norms)).astype(np.float32)


def space(name: str) -> Space:
    if name not in SPACE_TYPES:
        raise ValueError(f"Unable to find space: {name}")
    return Space(name)
