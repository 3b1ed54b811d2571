"""Quantized graphs of knn_vector fields: what `mode`, `compression_level` and `method.parameters.encoder` ask for,
and the binary-quantized HNSW graph faiss has no ready-made index for.

Levels (spec §5.2): 1x full precision; 2x fp16 (faiss SQ); 4x int8 (SQ 8-bit); 8x / 16x / 32x binary quantization
with 4 / 2 / 1 bits per dimension. A search on a quantized graph fetches k x oversample candidates and, unless
`rescore: false`, re-measures them on the segment's float32 vectors (memory-mapped), so final scores are exact."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

# Compression level -> (kind, bits per dimension).
LEVELS = {
    "1x": ("flat", 32),
    "2x": ("fp16", 16),
    "4x": ("int8", 8),
    "8x": ("bq", 4),
    "16x": ("bq", 2),
    "32x": ("bq", 1),
}
# Default rescore oversample_factor of on_disk fields, per compression level (spec §5.2; 2x: none).
ON_DISK_OVERSAMPLE = {"32x": 2.0, "16x": 3.0, "8x": 2.0, "4x": 1.0, "2x": 1.0, "1x": 1.0}
_BQ_BITS = (1, 2, 4)
_TRAIN_SAMPLE = 65_536


@dataclass(frozen=True, slots=True)
class Quantization:
    """How a field's graph encodes vectors: flat | fp16 | int8 | pq | bq (binary, `bits` per dimension)."""

    kind: str = "flat"
    bits: int = 32
    pq_m: int = 1
    pq_bits: int = 8
    oversample: float = 1.0  # the default rescore oversample_factor

    @property
    def quantized(self) -> bool:
        return self.kind != "flat"

    @property
    def label(self) -> str:
        """A stable name for the projection's signature."""
        return f"pq{self.pq_m}x{self.pq_bits}" if self.kind == "pq" else f"{self.kind}{self.bits}"


FLAT = Quantization()


def quantization_of(params: Mapping[str, Any]) -> Quantization:
    """The quantization a knn_vector mapping asks for (validated by the mapping beforehand)."""
    method = params.get("method") or {}
    encoder = (method.get("parameters") or {}).get("encoder") or {}
    enc_params = encoder.get("parameters") or {}
    mode = params.get("mode") or "in_memory"
    level = params.get("compression_level") or ("32x" if mode == "on_disk" else "1x")
    name = encoder.get("name")
    if name == "pq":
        return Quantization("pq", 0, int(enc_params.get("m", 1)), int(enc_params.get("code_size", 8)))
    if name in ("sq", "binary"):
        bits = int(enc_params.get("bits", 16 if name == "sq" else 1))
        level = "2x" if bits == 16 else f"{32 // bits}x"
    kind, bits = LEVELS.get(str(level), ("flat", 32))
    oversample = ON_DISK_OVERSAMPLE.get(str(level), 1.0) if mode == "on_disk" else 1.0
    return Quantization(kind, bits, oversample=oversample)


def encoder_error(params: Mapping[str, Any]) -> str | None:
    """Why a knn_vector mapping's encoder is invalid, or None (checked when the mapping is stored)."""
    method = params.get("method") or {}
    encoder = (method.get("parameters") or {}).get("encoder")
    if encoder is None:
        return None
    if not isinstance(encoder, dict) or encoder.get("name") not in ("flat", "sq", "pq", "binary"):
        return f"Invalid encoder: {encoder.get('name') if isinstance(encoder, dict) else encoder}"
    enc = encoder.get("parameters") or {}
    name = encoder["name"]
    if name == "sq":
        if enc.get("type", "fp16") != "fp16":
            return f"Validation Failed: 1: Invalid value for parameter [type]: {enc.get('type')};"
        if enc.get("bits", 16) not in (1, 2, 4, 16):
            return f"Validation Failed: 1: Invalid value for parameter [bits]: {enc.get('bits')};"
    elif name == "binary" and enc.get("bits", 1) not in _BQ_BITS:
        return f"Validation Failed: 1: Invalid value for parameter [bits]: {enc.get('bits')};"
    elif name == "pq":
        m, code_size = enc.get("m", 1), enc.get("code_size", 8)
        dim = params.get("dimension", 0)
        if not isinstance(m, int) or m < 1 or m > 1024 or (isinstance(dim, int) and dim % m):
            return f"Validation Failed: 1: Invalid value for parameter [m]: {m};"
        if method.get("name", "hnsw") == "hnsw" and code_size != 8:
            return "Validation Failed: 1: Code size must be 8 for HNSW PQ;"
        if not isinstance(code_size, int) or not 1 <= code_size <= 16:
            return f"Validation Failed: 1: Invalid value for parameter [code_size]: {code_size};"
    return None


# ---- building the faiss index of a segment -----------------------------------------------------------------


def _sample(data: np.ndarray) -> np.ndarray:
    if len(data) <= _TRAIN_SAMPLE:
        return np.ascontiguousarray(data, dtype=np.float32)
    rows = np.random.default_rng(0).choice(len(data), _TRAIN_SAMPLE, replace=False)
    return np.ascontiguousarray(data[np.sort(rows)], dtype=np.float32)


def _sq_type(kind: str) -> int:
    return faiss.ScalarQuantizer.QT_fp16 if kind == "fp16" else faiss.ScalarQuantizer.QT_8bit


def hnsw_index(dim: int, metric: int, m: int, quant: Quantization, rows: int) -> faiss.Index:
    """An empty HNSW index with the codes `quant` asks for (PQ only when `rows` can train its codebooks)."""
    if quant.kind in ("fp16", "int8"):
        return faiss.IndexHNSWSQ(dim, _sq_type(quant.kind), m, metric)
    if quant.kind == "pq" and rows >= (1 << quant.pq_bits):
        return faiss.IndexHNSWPQ(dim, quant.pq_m, m, quant.pq_bits, metric)
    return faiss.IndexHNSWFlat(dim, m, metric)


def ivf_index(dim: int, metric: int, nlist: int, quant: Quantization, rows: int) -> faiss.Index:
    quantizer = faiss.IndexFlat(dim, metric)
    if quant.kind in ("fp16", "int8"):
        index = faiss.IndexIVFScalarQuantizer(quantizer, dim, nlist, _sq_type(quant.kind), metric)
    elif quant.kind == "pq" and rows >= (1 << quant.pq_bits):
        index = faiss.IndexIVFPQ(quantizer, dim, nlist, quant.pq_m, quant.pq_bits, metric)
    else:
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, metric)
    index.own_fields = True
    quantizer.this.disown()
    return index


def train_and_add(index: faiss.Index, data: np.ndarray) -> faiss.Index:
    if not index.is_trained:
        index.train(_sample(data))
    index.add(np.ascontiguousarray(data, dtype=np.float32))
    return index


def is_quantized(graph: Any) -> bool:
    """Whether a graph stores lossy codes rather than the float32 vectors."""
    if isinstance(graph, BinaryGraph):
        return True
    if isinstance(graph, faiss.IndexIVF):
        return not isinstance(graph, faiss.IndexIVFFlat)
    storage = getattr(graph, "storage", None)
    return storage is not None and not isinstance(faiss.downcast_index(storage), faiss.IndexFlat)


def graph_memory(graph: Any) -> int:
    """Bytes of native memory a graph holds: its codes (full vectors when flat) plus links or inverted lists."""
    if isinstance(graph, BinaryGraph):
        return graph.memory_bytes()
    if isinstance(graph, faiss.IndexIVF):
        return int(graph.ntotal) * (int(graph.code_size) + 8) + int(graph.nlist) * graph.d * 4
    hnsw = getattr(graph, "hnsw", None)
    storage = getattr(graph, "storage", None)
    code_size = getattr(faiss.downcast_index(storage), "code_size", None) if storage is not None else None
    codes = int(graph.ntotal) * (int(code_size) if code_size is not None else graph.d * 4)
    links = 0 if hnsw is None else int(hnsw.neighbors.size()) * 4 + int(hnsw.offsets.size()) * 8
    return codes + links


# ---- binary quantization ---------------------------------------------------------------------------------------


class BinaryGraph:
    """Binary quantization (8x/16x/32x): each dimension becomes `bits` bits of a thermometer code (bit i set when
    the value passes the i-th per-dimension threshold), so the Hamming distance between codes sums the level gaps;
    the packed codes sit in a faiss IndexBinaryHNSW. 1 bit is the sign around the dimension's mean."""

    FILE = "graph_bq.faiss"
    THRESHOLDS = "bq_thresholds.npy"

    def __init__(self, index: faiss.IndexBinary, thresholds: np.ndarray) -> None:
        self.index = index
        self.thresholds = np.ascontiguousarray(thresholds, dtype=np.float32)  # [bits, dim]
        self.bits, self.d = self.thresholds.shape
        self.code_bits = int(index.d)
        self._pad = self.code_bits - self.bits * self.d

    @classmethod
    def build(cls, data: np.ndarray, bits: int, m: int, ef_construction: int) -> BinaryGraph:
        sample = _sample(data)
        mean, std = sample.mean(axis=0), sample.std(axis=0)
        # Thresholds at the normal quantiles (i+1)/(bits+1): bits+1 equally populated levels per dimension.
        z = np.array([_normal_quantile((i + 1) / (bits + 1)) for i in range(bits)], dtype=np.float32)
        thresholds = mean[None, :] + z[:, None] * std[None, :]
        code_bits = math.ceil(bits * data.shape[1] / 8) * 8
        index = faiss.IndexBinaryHNSW(code_bits, m)
        index.hnsw.efConstruction = ef_construction
        graph = cls(index, thresholds)
        for start in range(0, len(data), _TRAIN_SAMPLE):
            index.add(graph.encode(np.asarray(data[start : start + _TRAIN_SAMPLE], dtype=np.float32)))
        return graph

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    def encode(self, x: np.ndarray) -> np.ndarray:
        """Packed codes (uint8 [n, code_bits / 8]) of float rows."""
        x = x.reshape(-1, self.d)
        levels = (x[:, None, :] > self.thresholds[None, :, :]).reshape(len(x), -1)
        if self._pad:
            levels = np.concatenate([levels, np.zeros((len(x), self._pad), dtype=bool)], axis=1)
        return np.packbits(levels, axis=1)

    def search(self, query: np.ndarray, k: int, params: faiss.SearchParameters) -> tuple[np.ndarray, np.ndarray]:
        """Rows and Hamming distances of the k nearest codes."""
        code = self.encode(query)
        dists = np.empty(k, dtype=np.int32)
        rows = np.empty(k, dtype=np.int64)
        self.index.search_c(1, faiss.swig_ptr(code), k, faiss.swig_ptr(dists), faiss.swig_ptr(rows), params)
        keep = rows >= 0
        return rows[keep], dists[keep].astype(np.float32)

    def memory_bytes(self) -> int:
        hnsw = self.index.hnsw
        links = int(hnsw.neighbors.size()) * 4 + int(hnsw.offsets.size()) * 8
        return self.ntotal * (self.code_bits // 8) + links + self.thresholds.nbytes

    def save(self, directory: Path) -> None:
        faiss.write_index_binary(self.index, str(directory / self.FILE))
        np.save(directory / self.THRESHOLDS, self.thresholds)

    @classmethod
    def load(cls, directory: Path) -> BinaryGraph | None:
        if not (directory / cls.FILE).exists():
            return None
        index = faiss.read_index_binary(str(directory / cls.FILE), faiss.IO_FLAG_MMAP_IFC)
        return cls(index, np.load(directory / cls.THRESHOLDS))


def _normal_quantile(p: float) -> float:
    """Φ⁻¹(p) by bisection on erf (a handful of calls at build time; no scipy needed)."""
    lo, hi = -8.0, 8.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if 0.5 * (1 + math.erf(mid / math.sqrt(2))) < p:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2
