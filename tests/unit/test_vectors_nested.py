"""Vectors of fields inside nested objects, without a server: several rows per document, searches answering with
distinct documents at their nearest row (exact, graph, radial), deletes of whole documents, merges that keep element
offsets, and the projection's files (reload, catch-up, rebuild)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson

from mlsearch.engine.mapping import Mappings
from mlsearch.engine.store import Store, Write
from mlsearch.engine.vectors import SearchOptions, Segment, VectorIndex, space
from mlsearch.engine.vectors import merge as merging
from mlsearch.engine.vectors.segment import GraphSpec, build_graph


def _grouped(counts: list[int], dim: int, seed: int, graph: bool = False, first_key: int = 0) -> Segment:
    rng = np.random.default_rng(seed)
    keys = np.repeat(np.arange(first_key, first_key + len(counts), dtype=np.int64), counts)
    offsets = np.concatenate([np.arange(c, dtype=np.int32) for c in counts])
    data = rng.normal(size=(len(keys), dim)).astype(np.float32)
    built = build_graph(space("l2"), data, GraphSpec()) if graph else None
    return Segment(0, keys, data, np.ones(len(keys), dtype=bool), built, offsets=offsets)


def _nearest_docs(seg: Segment, q: np.ndarray, k: int, live: np.ndarray | None = None) -> list[int]:
    live = seg.live if live is None else live
    d = ((seg.data.astype(np.float64) - q) ** 2).sum(axis=1)
    best: dict[int, float] = {}
    for key, dist, ok in zip(seg.keys.tolist(), d.tolist(), live.tolist(), strict=True):
        if ok:
            best[key] = min(best.get(key, np.inf), dist)
    return [key for key, _ in sorted(best.items(), key=lambda kv: (kv[1], kv[0]))[:k]]


def test_rows_of_and_without_cover_every_row_of_a_document() -> None:
    seg = _grouped([2, 3, 1], 4, seed=1)
    assert seg.rows_of(np.array([1, 2])).tolist() == [2, 3, 4, 5]
    gone = seg.without(np.array([1]))
    assert gone.live.tolist() == [True, True, False, False, False, True]
    offsets, data = gone.elements_of(0)
    assert offsets.tolist() == [0, 1] and data.shape == (2, 4)
    assert len(gone.elements_of(1)[0]) == 0


def test_exact_grouped_search_returns_distinct_documents_at_their_nearest_row() -> None:
    seg = _grouped([1, 4, 2, 5, 3] * 20, 5, seed=2)
    q = seg.data[7]
    keys, dists = seg.search(space("l2"), q, 10, seg.live, SearchOptions(), False)
    assert keys.tolist() == _nearest_docs(seg, q, 10)
    assert len(set(keys.tolist())) == 10 and np.all(np.diff(dists) >= 0)
    mask = seg.allowed_mask(np.arange(0, 100, 3, dtype=np.int64))
    keys, _ = seg.search(space("l2"), q, 10, mask, SearchOptions(), True)
    assert keys.tolist() == _nearest_docs(seg, q, 10, mask)


def test_graph_grouped_search_deepens_until_k_documents() -> None:
    seg = _grouped([5] * 400, 6, seed=3, graph=True)  # 2,000 rows: the walk first sees far fewer documents
    recall = []
    for row in (0, 777, 1999):
        q = seg.data[row]
        keys, _ = seg.search(space("l2"), q, 20, seg.live, SearchOptions(ef_search=100), False)
        assert len(set(keys.tolist())) == 20
        recall.append(len(set(keys.tolist()) & set(_nearest_docs(seg, q, 20))) / 20)
    assert np.mean(recall) >= 0.9


def test_radial_search_groups_by_document() -> None:
    seg = _grouped([3, 3, 3], 2, seed=4)
    keys, dists = seg.within(space("l2"), seg.data[0], 1e9, seg.live, 100)
    assert sorted(keys.tolist()) == [0, 1, 2] and dists[0] == 0.0


def test_merge_keeps_offsets_in_element_order() -> None:
    a = _grouped([2, 3], 3, seed=5)
    b = _grouped([4], 3, seed=6, first_key=7)
    a = a.without(np.array([0]))
    merged = merging.merge(9, [b, a], lambda data: None)
    assert merged.keys.tolist() == [1, 1, 1, 7, 7, 7, 7]
    assert merged.offsets is not None and merged.offsets.tolist() == [0, 1, 2, 0, 1, 2, 3]
    np.testing.assert_array_equal(merged.elements_of(7)[1], b.data)


# ---- the projection ------------------------------------------------------------------------------------------

_MAPPINGS = Mappings.parse(
    {"properties": {"chunks": {"type": "nested", "properties": {"v": {"type": "knn_vector", "dimension": 3}}}}}
)
_SETTINGS = {"index.knn": True}


def _projection(root: Path) -> VectorIndex:
    return VectorIndex(root / "vectors", _MAPPINGS, lambda: _SETTINGS, lambda: None)


def _doc(vectors: list[list[float]]) -> dict:
    return {"chunks": [{"v": v} if v else {"other": 1} for v in vectors]}


def _write(store: Store, writes: list[tuple[str, dict | None]]) -> list:
    return store.apply([Write(i, None if s is None else orjson.dumps(s), 1) for i, s in writes])


def _top(vi: VectorIndex, q: list[float], k: int = 5) -> list[int]:
    field = vi.field("chunks.v")
    keys, _ = field.search(field.query_row(np.array(q)), k, None, SearchOptions())
    return keys.tolist()


def test_projection_indexes_elements_and_survives_reload_catch_up_and_rebuild(tmp_path: Path) -> None:
    store = Store(tmp_path / "store.db")
    vi = _projection(tmp_path)
    spec = vi.field("chunks.v").spec
    assert (spec.parent, spec.nested) == ("chunks", True)
    vi.recover(store)
    docs = {str(i): _doc([[i, 5, 5], [], [i, 0, 0]]) for i in range(6)}
    applied = _write(store, list(docs.items()))
    for stored in applied:
        vi.project(stored.key, docs[stored.id])
    vi.refresh(store.max_seq_no)
    key = {s.id: s.key for s in applied}
    assert _top(vi, [0, 0, 0], 3) == [key["0"], key["1"], key["2"]]
    offsets, _ = vi.field("chunks.v").elements_of(key["3"])
    assert offsets.tolist() == [0, 2]  # the element without a vector keeps its place
    vi.close()  # one projection per directory at a time, as in the server (its merger removes old segments)
    # writes the projection never saw: caught up from the store at start-up
    _write(store, [("0", None), ("1", _doc([[9, 9, 9]]))])
    again = _projection(tmp_path)
    again.recover(store)
    assert _top(again, [0, 0, 0], 2) == [key["2"], key["3"]]
    assert again.field("chunks.v").elements_of(store.get("1").key)[0].tolist() == [0]
    expected = _top(again, [0, 0, 0], 4)
    again.settle()
    again.close()
    for f in (tmp_path / "vectors").rglob("offsets.npy"):
        f.write_bytes(b"garbage")
    rebuilt = _projection(tmp_path)
    rebuilt.recover(store)
    assert _top(rebuilt, [0, 0, 0], 4) == expected
    rebuilt.close()
    store.close()


def test_background_merges_keep_documents_whole(tmp_path: Path) -> None:
    store = Store(tmp_path / "store.db")
    vi = _projection(tmp_path)
    vi.recover(store)
    rng = np.random.default_rng(7)
    docs = {str(i): _doc(rng.normal(size=(1 + i % 4, 3)).tolist()) for i in range(120)}
    for chunk in range(12):  # twelve refreshes: twelve small segments
        ids = [str(i) for i in range(chunk * 10, chunk * 10 + 10)]
        for stored in _write(store, [(i, docs[i]) for i in ids]):
            vi.project(stored.key, docs[stored.id])
        vi.refresh(store.max_seq_no)
    before = _top(vi, [0, 0, 0], 30)
    vi.settle()
    segments = vi.field("chunks.v").segments
    assert len(segments) <= merging.MAX_SEGMENTS and all(s.offsets is not None for s in segments)
    assert _top(vi, [0, 0, 0], 30) == before
    vi.close()
    reopened = _projection(tmp_path)
    reopened.recover(store)
    assert _top(reopened, [0, 0, 0], 30) == before
    store.close()
