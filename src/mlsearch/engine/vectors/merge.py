"""The merge policy: which segments to rebuild, and how a merged segment is made.

Small segments pile up (one per refresh) and deletes leave dead rows behind; both slow searches down. Like Lucene's
tiered policy, but simpler: merge the smallest segments when there are more than MAX_SEGMENTS, rewrite any
segment whose dead rows pass DEAD_RATIO, and give a graph to a segment large enough to want one. Refresh itself
never builds graphs, so that writers never wait for one."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import faiss
import numpy as np

from mlsearch.engine.vectors.ids import SegmentIds
from mlsearch.engine.vectors.segment import Segment

MAX_SEGMENTS = 8
DEAD_RATIO = 0.3


def pick(segments: Sequence[Segment], wants_graph: Callable[[int], bool] = lambda n: False) -> list[Segment]:
    """The segments one merge should combine, or [] when the field is in good shape."""
    if len(segments) > MAX_SEGMENTS:
        smallest = sorted(segments, key=lambda s: s.live_count)
        return smallest[: len(segments) - MAX_SEGMENTS // 2 + 1]
    dead = [s for s in segments if s.dead_ratio > DEAD_RATIO]
    if dead:
        return dead[:1]
    bare = [s for s in segments if s.graph is None and wants_graph(s.live_count)]
    return bare[:1]


def merge(seg_id: int, sources: Sequence[Segment], build: Callable[[np.ndarray], faiss.Index | None]) -> Segment:
    """One segment holding the live rows of `sources`, in key order, with a fresh graph."""
    keys = np.concatenate([np.asarray(s.keys)[s.live] for s in sources])
    data = np.concatenate([np.asarray(s.data)[s.live] for s in sources])
    # Stable: a document's rows (all in one source, contiguous, in element order) stay in their order.
    order = np.argsort(keys, kind="stable")
    keys, data = keys[order], np.ascontiguousarray(data[order])
    offsets = None
    if any(s.grouped for s in sources):
        offsets = np.concatenate([_offsets(s)[s.live] for s in sources])[order]
    ids = None
    if all(s.ids is not None for s in sources):
        ids = SegmentIds.concat([s.ids.take(np.flatnonzero(s.live)) for s in sources]).take(order)  # type: ignore[union-attr]
    return Segment(seg_id, keys, data, np.ones(len(keys), dtype=bool), build(data), offsets=offsets, ids=ids)


def _offsets(seg: Segment) -> np.ndarray:
    return np.zeros(seg.size, dtype=np.int32) if seg.offsets is None else np.asarray(seg.offsets)


def catch_up(merged: Segment, before: Sequence[Segment], now: Sequence[Segment]) -> Segment:
    """The merged segment with the deletes that reached its sources while it was being built."""
    current = {s.id: s for s in now}
    died = []
    for old in before:
        cur = current.get(old.id)
        gone = old.live if cur is None else old.live & ~cur.live
        died.append(np.asarray(old.keys)[gone])
    return merged.without(np.concatenate(died)) if died else merged
