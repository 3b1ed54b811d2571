"""The vectors of one knn_vector field: immutable segments plus a buffer of writes since the last refresh."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import faiss
import numpy as np

from mlsearch.engine.mapping import Field
from mlsearch.engine.vectors.ids import SegmentIds
from mlsearch.engine.vectors.quantize import quantization_of
from mlsearch.engine.vectors.segment import GraphSpec, SearchOptions, Segment
from mlsearch.engine.vectors.spaces import Space, space

_EMPTY = (np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32))


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """What the mapping says about one knn_vector field, resolved with defaults."""

    path: str
    dimension: int
    data_type: str  # float | byte | binary
    space: Space
    engine: str
    graph: GraphSpec
    ef_search: int | None  # from method.parameters; the index setting applies otherwise
    knn_enabled: bool
    nprobes: int = 1
    model_id: str | None = None
    template: bytes | None = field(default=None, compare=False, repr=False)  # the trained model's empty index
    # A field inside objects: the object path whose elements each hold one vector (documents then have several
    # rows), and whether that path is mapped `nested` (searched only through a `nested` query, as in OpenSearch).
    parent: str | None = None
    nested: bool = False

    @classmethod
    def of(cls, leaf: Field, knn_enabled: bool) -> FieldSpec:
        params: Mapping[str, Any] = leaf.params
        method = params.get("method") or {}
        method_params = method.get("parameters") or {}
        data_type = str(params.get("data_type", "float"))
        space_name = params.get("space_type") or method.get("space_type")
        if space_name is None:
            space_name = "hamming" if data_type == "binary" else "l2"
        graph = GraphSpec(
            name=str(method.get("name", "hnsw")),
            m=int(method_params.get("m", 16)),
            ef_construction=int(method_params.get("ef_construction", 100)),
            nlist=int(method_params.get("nlist", 4)),
            quant=quantization_of(params),
        )
        ef = method_params.get("ef_search")
        return cls(
            leaf.path,
            int(params.get("dimension", 0)),
            data_type,
            space(str(space_name)),
            str(method.get("engine", "faiss")),
            graph,
            None if ef is None else int(ef),
            knn_enabled,
            int(method_params.get("nprobes", 1)),
        )

    @classmethod
    def from_model(cls, leaf: Field, knn_enabled: bool, model: Mapping[str, Any]) -> FieldSpec:
        """A field with `model_id`: dimension, space and method come from the trained model."""
        method = model.get("model_definition") or {}
        params = method.get("parameters") or {}
        return cls(
            leaf.path,
            int(model["dimension"]),
            str(model.get("data_type") or "float"),
            space(str(model.get("space_type") or "l2")),
            str(model.get("engine") or "faiss"),
            GraphSpec(name="model", nlist=int(params.get("nlist", 4))),
            None if params.get("ef_search") is None else int(params["ef_search"]),
            knn_enabled,
            int(params.get("nprobes", 1)),
            str(leaf.params["model_id"]),
            bytes(model["blob"]),
        )

    @property
    def width(self) -> int:
        """Columns of a stored row: dimension, or bytes for binary vectors."""
        return self.dimension // 8 if self.data_type == "binary" else self.dimension

    @property
    def dtype(self) -> type:
        return np.uint8 if self.data_type == "binary" else np.float32

    def to_row(self, value: Any) -> np.ndarray:
        """A validated document value as a stored row."""
        if self.data_type == "binary":
            return np.asarray(value, dtype=np.int8).view(np.uint8)
        return self.space.prepare(np.asarray(value, dtype=np.float32))


GraphBuilder = Callable[[FieldSpec, np.ndarray], "faiss.Index | None"]


class FieldVectors:
    """Segments (a tuple swapped whole, so readers never lock) and the unrefreshed buffer of one field."""

    def __init__(self, spec: FieldSpec, segments: tuple[Segment, ...] = (), next_id: int = 0) -> None:
        self.spec = spec
        self.segments = segments
        self.next_id = next_id
        self.buffer: dict[int, np.ndarray | None] = {}  # key -> new row, or None when the key lost its vector
        # key -> element offsets of its rows (fields inside objects: the buffer then holds [rows, width] arrays)
        self.offsets: dict[int, np.ndarray] = {}
        self.ids: dict[int, str] = {}  # key -> `_id` of buffered documents (kept beside the segment's rows)
        # Called for each segment a search walks through its graph (the projection's cache accounting).
        self.on_graph: Callable[[Segment], None] = lambda seg: None

    # ---- writing (under the projection's lock) -----------------------------------------------------------

    def put(
        self, key: int, row: np.ndarray | None, offsets: np.ndarray | None = None, doc_id: str | None = None
    ) -> None:
        """Buffer a document's vector (or, for a field inside objects, its rows and their element offsets)."""
        if offsets is not None and row is not None and len(row) == 0:
            row = None  # no element carries a vector
        self.buffer[key] = row
        if doc_id is not None:
            self.ids[key] = doc_id
        if offsets is not None and row is not None:
            self.offsets[key] = offsets
        else:
            self.offsets.pop(key, None)

    def refresh(self, build: GraphBuilder) -> Segment | None:
        """Turn the buffer into a segment and mark the keys it touched dead elsewhere; returns the new segment."""
        if not self.buffer:
            return None
        touched = np.fromiter(self.buffer, dtype=np.int64, count=len(self.buffer))
        kept = tuple(seg.without(touched) for seg in self.segments)
        fresh = [(k, row) for k, row in self.buffer.items() if row is not None]
        new: Segment | None = None
        if fresh:
            fresh.sort(key=lambda item: item[0])
            keys, data, offsets = self._rows(fresh)
            live = np.ones(len(keys), dtype=bool)
            ids = self._ids(keys)
            new = Segment(self.next_id, keys, data, live, build(self.spec, data), offsets=offsets, ids=ids)
            self.next_id += 1
        self.segments = (*(s for s in kept if s.live_count > 0), *([new] if new else []))
        self.buffer.clear()
        self.offsets.clear()
        self.ids.clear()
        return new

    def _ids(self, keys: np.ndarray) -> SegmentIds | None:
        """The rows' `_id`s when every buffered document came with one (else the segment has none)."""
        ids = self.ids
        try:
            return SegmentIds.of([ids[k] for k in keys.tolist()])
        except KeyError:
            return None

    def _rows(self, fresh: list[tuple[int, np.ndarray]]) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Keys, vectors and element offsets of the buffered documents (sorted by key)."""
        if self.spec.parent is None:
            keys = np.fromiter((k for k, _ in fresh), dtype=np.int64, count=len(fresh))
            return keys, np.stack([row for _, row in fresh]).astype(self.spec.dtype, copy=False), None
        counts = [len(rows) for _, rows in fresh]
        keys = np.repeat(np.fromiter((k for k, _ in fresh), dtype=np.int64, count=len(fresh)), counts)
        data = np.concatenate([rows for _, rows in fresh]).astype(self.spec.dtype, copy=False)
        offsets = np.concatenate([self.offsets[k] for k, _ in fresh]).astype(np.int32, copy=False)
        return keys, data, offsets

    def swap(self, merged_ids: set[int], merged: Segment) -> None:
        """Replace the segments `merged_ids` by their merge (already carrying every delete since)."""
        out = [s for s in self.segments if s.id not in merged_ids]
        self.segments = (*out, merged) if merged.live_count > 0 else tuple(out)

    # ---- reading (no lock: one snapshot of the segment tuple) --------------------------------------------

    def query_row(self, vector: np.ndarray) -> np.ndarray:
        if self.spec.data_type == "binary":
            return np.asarray(vector, dtype=np.int8).view(np.uint8)
        return self.spec.space.prepare(np.asarray(vector, dtype=np.float32))

    def search(
        self, query: np.ndarray, k: int, allowed: np.ndarray | None, opts: SearchOptions
    ) -> tuple[np.ndarray, np.ndarray]:
        """The k nearest live documents (restricted to the `allowed` keys): keys and engine distances."""
        keys, dists, _ = self.search_found(query, k, allowed, opts)
        return keys, dists

    def search_found(
        self, query: np.ndarray, k: int, allowed: np.ndarray | None, opts: SearchOptions
    ) -> tuple[np.ndarray, np.ndarray, tuple[Segment, np.ndarray] | None]:
        """`search`, plus where the documents were found when that is one segment with one row per document: the
        segment and the rows (their `_id`s then come from the segment's id table, with no search over keys)."""
        segments = self.segments
        if len(segments) == 1 and allowed is None:  # the common case once merged: no masks, no merge
            seg = segments[0]
            if seg.graph is not None:
                self.on_graph(seg)
            if seg.offsets is None:
                rows, dists = seg.search_rows(self.spec.space, query, k, seg.live, opts, False)
                return seg.keys[rows], dists, (seg, rows)
            return *seg.search(self.spec.space, query, k, seg.live, opts, False), None
        parts = []
        for seg in segments:
            mask = seg.allowed_mask(allowed)
            if seg.graph is not None:
                self.on_graph(seg)
            parts.append(seg.search(self.spec.space, query, k, mask, opts, allowed is not None))
        return *_merge(parts, k), None

    def within(
        self, query: np.ndarray, max_distance: float, allowed: np.ndarray | None, limit: int
    ) -> tuple[np.ndarray, np.ndarray]:
        parts = [
            seg.within(self.spec.space, query, max_distance, seg.allowed_mask(allowed), limit) for seg in self.segments
        ]
        return _merge(parts, limit)

    def vectors_of(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The stored rows of the documents `keys` (zeros where a document has none) and which have one."""
        keys = np.asarray(keys, dtype=np.int64)
        out = np.zeros((len(keys), self.spec.width), dtype=self.spec.dtype)
        present = np.zeros(len(keys), dtype=bool)
        for seg in self.segments:
            if seg.size == 0 or len(keys) == 0:
                continue
            rows = np.minimum(np.searchsorted(seg.keys, keys), seg.size - 1)
            hit = (np.asarray(seg.keys)[rows] == keys) & np.asarray(seg.live)[rows]
            if hit.any():
                out[hit] = np.asarray(seg.data)[rows[hit]]
                present |= hit
        return out, present

    def ids_of(self, keys: np.ndarray) -> dict[int, str]:
        """The `_id`s of the documents `keys` that segments know (a key's `_id` never changes: any row will do)."""
        found: dict[int, str] = {}
        for seg in self.segments:
            known = seg.ids_of(keys)
            if known is None:
                continue
            mask, ids = known
            found.update(zip((keys if len(ids) == len(keys) else keys[mask]).tolist(), ids, strict=True))
            if len(found) == len(keys):
                break
        return found

    def elements_of(self, key: int) -> tuple[np.ndarray, np.ndarray]:
        """The element offsets and vectors of one document's live rows (a field inside objects)."""
        for seg in self.segments:
            offsets, data = seg.elements_of(key)
            if len(offsets):
                return offsets, data
        return np.empty(0, dtype=np.int32), np.empty((0, self.spec.width), dtype=self.spec.dtype)

    @property
    def live_count(self) -> int:
        return sum(s.live_count for s in self.segments)


def _merge(parts: list[tuple[np.ndarray, np.ndarray]], k: int) -> tuple[np.ndarray, np.ndarray]:
    parts = [p for p in parts if len(p[0])]
    if not parts:
        return _EMPTY
    if len(parts) == 1:
        return parts[0]  # already sorted, at most k
    keys = np.concatenate([p[0] for p in parts])
    dists = np.concatenate([p[1] for p in parts])
    order = np.lexsort((keys, dists))[:k]
    return keys[order], dists[order]
