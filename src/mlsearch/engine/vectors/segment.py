"""Immutable vector segments: rows sorted by document key, a live bitmap, and an optional faiss graph.

A field inside a nested (or object-array) path has several rows per document: the rows of one document are
contiguous, in the order of their elements, and `offsets` holds each row's position in the document's array. Such a
segment answers with distinct documents, each at the distance of its nearest row (OpenSearch 2.12+ returns k distinct
parent documents), so deletes, merges and filters stay per document.

A segment never changes once built; a delete or an update gives a new Segment object that shares the vectors and
the graph and carries a new live bitmap (copy-on-write), so readers holding the old one are never disturbed."""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path

import faiss
import numpy as np

from mlsearch.engine.vectors.ids import SegmentIds
from mlsearch.engine.vectors.quantize import (
    FLAT,
    BinaryGraph,
    Quantization,
    hnsw_index,
    is_quantized,
    ivf_index,
    train_and_add,
)
from mlsearch.engine.vectors.spaces import Space

log = logging.getLogger(__name__)

# Exact search over a filtered set when it needs at most this many float operations, as the k-NN plugin's
# efficient filtering does (MAX_DISTANCE_COMPUTATIONS = 2,048,000 / dimension filtered documents).
MAX_EXACT_COMPUTATIONS = 2_048_000
_CHUNK = 65_536
_SMALL_TOP = 64  # up to this many distances, `_top` checks in Python whether they are in order already
_EMPTY = (np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32))


@dataclass(frozen=True, slots=True)
class GraphSpec:
    """How a segment's approximate index is built (from the field's `method`)."""

    name: str = "hnsw"  # hnsw | ivf
    m: int = 16
    ef_construction: int = 100
    nlist: int = 4
    quant: Quantization = FLAT


@dataclass(frozen=True, slots=True)
class SearchOptions:
    ef_search: int = 100
    nprobes: int = 1
    exact_threshold: int | None = None  # index.knn.advanced.filtered_exact_search_threshold
    oversample: float = 1.0  # a graph search fetches k x oversample candidates ...
    rescore: bool = True  # ... and re-measures them on the float32 vectors (else: the quantized distances)


@dataclass(frozen=True)
class Segment:
    """Vectors (float32 [n, dim], or uint8 [n, dim/8] for binary) of the documents `keys` (sorted, int64)."""

    id: int
    keys: np.ndarray
    data: np.ndarray
    live: np.ndarray  # bool [n]
    graph: faiss.Index | BinaryGraph | None = None
    live_count: int = field(default=-1)
    offsets: np.ndarray | None = None  # int32 [n]: the element each row came from; None when one row per document
    ids: SegmentIds | None = None  # each row's `_id` (None: not known here, e.g. a segment saved before ids were kept)

    def __post_init__(self) -> None:
        if self.live_count < 0:
            object.__setattr__(self, "live_count", int(np.count_nonzero(self.live)))

    @cached_property
    def quantized(self) -> bool:
        """Whether the graph holds lossy codes (so its candidates need rescoring)."""
        return self.graph is not None and is_quantized(self.graph)

    @property
    def size(self) -> int:
        return len(self.keys)

    @property
    def grouped(self) -> bool:
        """Whether documents may have several rows here (a nested field)."""
        return self.offsets is not None

    @property
    def dead_ratio(self) -> float:
        return 0.0 if self.size == 0 else 1.0 - self.live_count / self.size

    def rows_of(self, keys: np.ndarray) -> np.ndarray:
        """Rows holding any of `keys` (int64), live or not."""
        if self.size == 0 or len(keys) == 0:
            return np.empty(0, dtype=np.int64)
        if self.offsets is not None:
            return _ranges(np.searchsorted(self.keys, keys, "left"), np.searchsorted(self.keys, keys, "right"))
        rows = np.searchsorted(self.keys, keys)
        inside = rows < self.size
        rows, wanted = rows[inside], keys[inside]
        return rows[self.keys[rows] == wanted]

    def without(self, keys: np.ndarray) -> Segment:
        """This segment with `keys` marked dead; itself when none of them is live here."""
        rows = self.rows_of(keys)
        rows = rows[self.live[rows]]
        if len(rows) == 0:
            return self
        live = self.live.copy()
        live[rows] = False
        return Segment(self.id, self.keys, self.data, live, self.graph, offsets=self.offsets, ids=self.ids)

    def with_data(self, data: np.ndarray) -> Segment:
        """The same segment reading its vectors from `data` (the memory-mapped copy of its file)."""
        return Segment(self.id, self.keys, data, self.live, self.graph, self.live_count, self.offsets, self.ids)

    def allowed_mask(self, keys: np.ndarray | None) -> np.ndarray:
        """Live rows, restricted to documents in `keys` when given."""
        if keys is None:
            return self.live
        mask = np.zeros(self.size, dtype=bool)
        mask[self.rows_of(keys)] = True
        return mask & self.live

    # ---- searching ---------------------------------------------------------------------------------------

    def search(
        self, space: Space, query: np.ndarray, k: int, mask: np.ndarray, opts: SearchOptions, filtered: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """The nearest k allowed rows: keys and engine distances, nearest first."""
        if self.offsets is not None:
            allowed = int(np.count_nonzero(mask)) if mask is not self.live else self.live_count
            if allowed == 0 or k <= 0:
                return _EMPTY
            return self._search_grouped(space, query, k, mask, allowed, opts, filtered)
        rows, dists = self.search_rows(space, query, k, mask, opts, filtered)
        return self.keys[rows], dists

    def search_rows(
        self, space: Space, query: np.ndarray, k: int, mask: np.ndarray, opts: SearchOptions, filtered: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """`search` of a segment with one row per document, as rows (int64) rather than keys."""
        allowed = int(np.count_nonzero(mask)) if mask is not self.live else self.live_count
        if allowed == 0 or k <= 0:
            return _EMPTY
        if self.graph is None or allowed <= k or (filtered and self._exact_is_cheaper(allowed)):
            return self._exact(space, query, k, mask)
        rows, dists = self._approximate(space, query, k, mask, allowed, opts)
        if len(rows) < min(k, allowed):
            return self._exact(space, query, k, mask)  # a sparse filter starved the graph walk
        return rows, dists

    def _exact_is_cheaper(self, allowed: int) -> bool:
        return allowed * self.data.shape[1] <= MAX_EXACT_COMPUTATIONS

    def _exact(self, space: Space, query: np.ndarray, k: int, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The nearest k rows of `mask`, measured one by one: rows and distances."""
        rows = np.flatnonzero(mask)
        best_rows, best_d = np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
        for start in range(0, len(rows), _CHUNK):
            chunk = rows[start : start + _CHUNK]
            d = space.distances(self.data[chunk], query)
            best_rows = np.concatenate([best_rows, chunk])
            best_d = np.concatenate([best_d, d.astype(np.float32, copy=False)])
            best_rows, best_d = _top(best_rows, best_d, k)
        return best_rows, best_d

    def _search_grouped(
        self,
        space: Space,
        query: np.ndarray,
        k: int,
        mask: np.ndarray,
        allowed: int,
        opts: SearchOptions,
        filtered: bool,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The nearest k distinct documents, each at its nearest allowed row. The graph is walked deeper (twice the
        rows each time) until k documents turn up, as the plugin's grouping search does; exact when that is cheaper."""
        if self.graph is None or allowed <= k or (filtered and self._exact_is_cheaper(allowed)):
            return self._exact_grouped(space, query, k, mask)
        want = 2 * k
        while want < allowed:
            rows, dists = self._approximate(space, query, want, mask, allowed, opts)
            keys, best = _nearest_per_key(self.keys[rows], dists)
            if len(keys) >= k:
                order = np.lexsort((keys, best))[:k]
                return keys[order], best[order]
            want *= 2
        return self._exact_grouped(space, query, k, mask)

    def _exact_grouped(
        self, space: Space, query: np.ndarray, k: int, mask: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        rows = np.flatnonzero(mask)
        best_keys, best_d = np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
        for start in range(0, len(rows), _CHUNK):
            chunk = rows[start : start + _CHUNK]
            d = space.distances(self.data[chunk], query).astype(np.float32, copy=False)
            # A document cut by the chunk boundary shows up in both chunks: the regrouping below keeps its nearest.
            keys, near = _nearest_per_key(self.keys[chunk], d)
            keys, near = _nearest_per_key(np.concatenate([best_keys, keys]), np.concatenate([best_d, near]))
            best_keys, best_d = _top(keys, near, k)
        return best_keys, best_d

    def _approximate(
        self, space: Space, query: np.ndarray, k: int, mask: np.ndarray, allowed: int, opts: SearchOptions
    ) -> tuple[np.ndarray, np.ndarray]:
        want = k if opts.oversample <= 1.0 else math.ceil(k * opts.oversample)
        if opts.rescore and self.quantized:
            # The graph walk already holds an ef_search-wide beam of candidates: rescoring all of it costs ~ef exact
            # distances and lifts the recall of coarse codes (1-bit: ~0.55 at 2x oversampling, ~1.0 with the beam).
            want = max(want, opts.ef_search)
        want = min(want, allowed)
        selector = None
        if allowed < self.size:
            bits = np.packbits(mask, bitorder="little")  # referenced until the search returns: faiss reads it
            selector = faiss.IDSelectorBitmap(self.size, faiss.swig_ptr(bits))
        _one_omp_thread()
        params = _params(self.graph, opts, want, selector)
        binary = isinstance(self.graph, BinaryGraph)
        rows, raw = self.graph.search(query, want, params) if binary else graph_search(self.graph, query, want, params)
        if binary and not opts.rescore:
            return _top(rows, space.from_hamming(raw), k)
        if not (opts.rescore and self.quantized):
            # A graph over the float32 vectors measured them exactly: its distances are the scores, as the k-NN
            # plugin reports faiss's own (re-measuring cost ~7 us a query and could only move the last bit).
            return _top(rows, space.from_faiss(raw), k)
        # Rescoring of quantized graphs: the candidates re-measured on the float32 vectors (memory-mapped).
        return _top(rows, space.distances(self.data[rows], query).astype(np.float32, copy=False), k)

    def within(
        self, space: Space, query: np.ndarray, max_distance: float, mask: np.ndarray, limit: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Every allowed row within `max_distance` (radial search; exact), nearest first, at most `limit`."""
        rows = np.flatnonzero(mask)
        out_rows, out_d = [], []
        for start in range(0, len(rows), _CHUNK):
            chunk = rows[start : start + _CHUNK]
            d = space.distances(self.data[chunk], query).astype(np.float32, copy=False)
            near = d <= max_distance
            out_rows.append(chunk[near])
            out_d.append(d[near])
        if not out_rows:
            return _EMPTY
        if self.offsets is not None:
            keys, near = _nearest_per_key(self.keys[np.concatenate(out_rows)], np.concatenate(out_d))
            return _top(keys, near, limit)
        found_rows, found_d = _top(np.concatenate(out_rows), np.concatenate(out_d), limit)
        return self.keys[found_rows], found_d

    def ids_of(self, keys: np.ndarray) -> tuple[np.ndarray, list[str]] | None:
        """Which of `keys` have a row here (a bool mask) and their `_id`s, in `keys` order; None without ids."""
        if self.ids is None or self.size == 0:
            return None
        rows = np.searchsorted(self.keys, keys)
        np.minimum(rows, self.size - 1, out=rows)
        found = self.keys[rows] == keys
        return found, self.ids.at(rows[found])

    def elements_of(self, key: int) -> tuple[np.ndarray, np.ndarray]:
        """The live rows of one document: their offsets (element positions) and vectors."""
        rows = self.rows_of(np.array([key], dtype=np.int64))
        rows = rows[np.asarray(self.live)[rows]]
        offsets = np.zeros(len(rows), dtype=np.int32) if self.offsets is None else np.asarray(self.offsets)[rows]
        return offsets, np.asarray(self.data)[rows]

    # ---- persistence -------------------------------------------------------------------------------------

    def save(self, directory: Path) -> None:
        """Write the immutable parts (keys, vectors, graph); live bitmaps are saved apart, per generation."""
        directory.mkdir(parents=True, exist_ok=True)
        np.save(directory / "keys.npy", self.keys)
        np.save(directory / "data.npy", self.data)
        if self.offsets is not None:
            np.save(directory / "offsets.npy", self.offsets)
        if self.ids is not None:
            self.ids.save(directory)
        if isinstance(self.graph, BinaryGraph):
            self.graph.save(directory)
        elif self.graph is not None:
            faiss.write_index(self.graph, str(directory / "graph.faiss"))

    @classmethod
    def load(cls, seg_id: int, directory: Path, live_file: Path) -> Segment:
        keys = mapped(directory / "keys.npy")
        data = mapped(directory / "data.npy")
        live = np.load(live_file)
        offsets = mapped(directory / "offsets.npy") if (directory / "offsets.npy").exists() else None
        graph: faiss.Index | BinaryGraph | None = BinaryGraph.load(directory)
        if (directory / "graph.faiss").exists():
            # IO_FLAG_MMAP_IFC maps the file without copying it into memory.
            graph = faiss.read_index(str(directory / "graph.faiss"), faiss.IO_FLAG_MMAP_IFC)
        if not (len(keys) == len(data) == len(live)) or (graph is not None and graph.ntotal != len(keys)):
            raise ValueError(f"segment {directory} is inconsistent")
        if offsets is not None and len(offsets) != len(keys):
            raise ValueError(f"segment {directory} is inconsistent")
        return cls(seg_id, keys, data, live, graph, offsets=offsets, ids=SegmentIds.load(directory, len(keys)))


_search_thread = threading.local()


def _one_omp_thread() -> None:
    """Searching threads run faiss with one OpenMP thread: concurrency comes from the search threads themselves, and
    a single query's parallel region spin-waits for a descheduled partner on a busy machine (binary HNSW fell from
    ~2,400 to ~50 queries/s under load). OpenMP keeps this setting per thread, so graph builds in the merger keep
    every core."""
    if not getattr(_search_thread, "single", False):
        faiss.omp_set_num_threads(1)
        _search_thread.single = True


def mapped(path: Path) -> np.ndarray:
    """A saved array, memory-mapped read-only, as a plain ndarray view (np.memmap's Python-level __getitem__ and
    __array_finalize__ cost microseconds on every fancy index of the query path)."""
    return np.asarray(np.load(path, mmap_mode="r"))


def _top(rows: np.ndarray, d: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k smallest distances, sorted (ties by row, which is key order)."""
    if len(d) > k:
        part = np.argpartition(d, k - 1)[:k]
        rows, d = rows[part], d[part]
    elif len(d) <= _SMALL_TOP:
        listed = d.tolist()
        if listed == sorted(set(listed)):  # strictly ascending, as a graph search mostly answers: nothing to order
            return rows, d
    order = np.lexsort((rows, d))
    return rows[order], d[order]


def _nearest_per_key(keys: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each distinct key once, at its smallest distance (keys in any order)."""
    if len(keys) == 0:
        return keys.astype(np.int64, copy=False), d
    order = np.lexsort((d, keys))  # by key, nearest first within a key
    keys, d = keys[order], d[order]
    first = np.ones(len(keys), dtype=bool)
    first[1:] = keys[1:] != keys[:-1]
    return keys[first], d[first]


def _ranges(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """The rows start..end-1 of every (start, end) pair, concatenated."""
    lengths = ends - starts
    total = int(lengths.sum())
    if total == 0:
        return np.empty(0, dtype=np.int64)
    firsts = np.repeat(starts - np.cumsum(lengths) + lengths, lengths)
    return firsts + np.arange(total, dtype=np.int64)


def _params(graph: object, opts: SearchOptions, k: int, selector: faiss.IDSelector | None) -> faiss.SearchParameters:
    ivf = isinstance(graph, faiss.IndexIVF)
    value = max(1, opts.nprobes) if ivf else max(opts.ef_search, k)
    if selector is None:
        return _shared_params(ivf, value)
    params = _new_params(ivf, value)
    params.sel = selector
    return params


def _new_params(ivf: bool, value: int) -> faiss.SearchParameters:
    if ivf:
        params = faiss.SearchParametersIVF()
        params.nprobe = value
    else:
        params = faiss.SearchParametersHNSW()
        params.efSearch = value
    return params


@lru_cache(maxsize=512)
def _shared_params(ivf: bool, value: int) -> faiss.SearchParameters:
    """Parameters without a selector, built once: faiss only reads them, so threads may share them (building one
    through SWIG cost ~30 us a query)."""
    return _new_params(ivf, value)


def graph_search(
    graph: faiss.Index, query: np.ndarray, k: int, params: faiss.SearchParameters
) -> tuple[np.ndarray, np.ndarray]:
    """One query straight through faiss's C entry point (the Python wrapper re-checks and reshapes every call)."""
    query = np.ascontiguousarray(query, dtype=np.float32)
    dists = np.empty(k, dtype=np.float32)
    labels = np.empty(k, dtype=np.int64)
    graph.search_c(1, faiss.swig_ptr(query), k, faiss.swig_ptr(dists), faiss.swig_ptr(labels), params)
    if labels[-1] >= 0:  # a full answer (faiss's result heaps put a short answer's -1 padding last)
        return labels, dists
    keep = labels >= 0
    return labels[keep], dists[keep]


def build_graph(space: Space, data: np.ndarray, spec: GraphSpec) -> faiss.Index | BinaryGraph | None:
    """A faiss index over `data` (ids = row numbers), or None when the space or data can't have one."""
    if space.binary or len(data) == 0:
        return None
    dim, quant = data.shape[1], spec.quant
    if spec.name == "ivf":
        nlist = max(1, min(spec.nlist, len(data) // 39 or 1))
        return train_and_add(ivf_index(dim, space.faiss_metric, nlist, quant, len(data)), data)
    if quant.kind == "bq":
        return BinaryGraph.build(data, quant.bits, spec.m, spec.ef_construction)
    graph = hnsw_index(dim, space.faiss_metric, spec.m, quant, len(data))
    graph.hnsw.efConstruction = spec.ef_construction
    return train_and_add(graph, data)
