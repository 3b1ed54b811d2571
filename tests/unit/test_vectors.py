"""Vector segments without a server: spaces vs numpy, exact and graph search, live bitmaps, merges, and the
projection's files (reload, catch-up from the store, rebuild when damaged)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlsearch.engine.mapping import Mappings
from mlsearch.engine.store import Store, Write
from mlsearch.engine.vectors import SearchOptions, Segment, VectorIndex, space
from mlsearch.engine.vectors import merge as merging
from mlsearch.engine.vectors.quantize import BinaryGraph, graph_memory, is_quantized, quantization_of
from mlsearch.engine.vectors.segment import GraphSpec, build_graph


def _clustered(n: int, dim: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 4, size=(20, dim))
    return (centers[rng.integers(0, 20, n)] + rng.normal(0, 1, size=(n, dim))).astype(np.float32)


def _segment(data: np.ndarray, keys: np.ndarray | None = None, graph: bool = False, name: str = "l2") -> Segment:
    keys = np.arange(len(data), dtype=np.int64) if keys is None else keys
    sp = space(name)
    data = sp.prepare(data)
    return Segment(0, keys, data, np.ones(len(data), dtype=bool), build_graph(sp, data, GraphSpec()) if graph else None)


@pytest.mark.parametrize("name", ["l2", "l1", "linf", "innerproduct", "cosinesimil"])
def test_distances_match_numpy(name: str) -> None:
    rng = np.random.default_rng(1)
    x, q = rng.normal(size=(50, 6)).astype(np.float32), rng.normal(size=6).astype(np.float32)
    sp = space(name)
    d = sp.distances(sp.prepare(x), sp.prepare(q))
    x64, q64 = x.astype(np.float64), q.astype(np.float64)
    expected = {
        "l2": ((x64 - q64) ** 2).sum(1),
        "l1": np.abs(x64 - q64).sum(1),
        "linf": np.abs(x64 - q64).max(1),
        "innerproduct": -(x64 @ q64),
        "cosinesimil": 1 - x64 @ q64 / np.linalg.norm(x64, axis=1) / np.linalg.norm(q64),
    }[name]
    np.testing.assert_allclose(d, expected, rtol=1e-4, atol=1e-5)


def test_innerproduct_scores_follow_the_plugin() -> None:
    sp = space("innerproduct")
    np.testing.assert_allclose(sp.scores(np.array([-3.0, 0.0, 1.0])), [4.0, 1.0, 0.5])


def test_hamming_counts_bits() -> None:
    sp = space("hamming")
    data = np.array([[0b1111_0000, 0], [0, 0]], dtype=np.uint8)
    np.testing.assert_array_equal(sp.distances(data, np.array([0, 1], dtype=np.uint8)), [5, 1])


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 60), k=st.integers(1, 20), seed=st.integers(0, 1000), dead=st.floats(0, 0.9))
def test_exact_search_is_brute_force(n: int, k: int, seed: int, dead: float) -> None:
    rng = np.random.default_rng(seed)
    data = rng.normal(size=(n, 4)).astype(np.float32)
    keys = np.sort(rng.choice(10_000, size=n, replace=False)).astype(np.int64)
    seg = _segment(data, keys)
    gone = keys[rng.random(n) < dead]
    seg = seg.without(gone)
    q = rng.normal(size=4).astype(np.float32)
    found, dists = seg.search(space("l2"), q, k, seg.live, SearchOptions(), False)
    d = ((data - q) ** 2).sum(1)
    alive = ~np.isin(keys, gone)
    expected = keys[alive][np.argsort(d[alive], kind="stable")][:k]
    assert found.tolist() == expected.tolist()
    assert np.all(np.diff(dists) >= 0)


def test_graph_search_recall_and_filter() -> None:
    data = _clustered(4000, 16)
    seg = _segment(data, graph=True)
    assert seg.graph is not None and seg.graph.ntotal == 4000
    rng = np.random.default_rng(2)
    recall = 0
    for q in data[rng.integers(0, 4000, 20)] + 0.3:
        found, _ = seg.search(space("l2"), q, 10, seg.live, SearchOptions(ef_search=100), False)
        truth = np.argsort(((data - q) ** 2).sum(1))[:10]
        recall += len(set(found.tolist()) & set(truth.tolist()))
    assert recall / 200 >= 0.95
    allowed = np.arange(0, 4000, 97, dtype=np.int64)  # a sparse filter: exact search over the allowed rows
    found, _ = seg.search(space("l2"), data[0], 10, seg.allowed_mask(allowed), SearchOptions(), True)
    d = ((data[allowed] - data[0]) ** 2).sum(1)
    assert found.tolist() == allowed[np.argsort(d)[:10]].tolist()


def test_graph_search_skips_dead_rows() -> None:
    data = _clustered(2000, 8, seed=3)
    seg = _segment(data, graph=True)
    seg = seg.without(np.arange(0, 2000, 2, dtype=np.int64))
    found, _ = seg.search(space("l2"), data[10], 20, seg.live, SearchOptions(), False)
    assert len(found) == 20 and all(k % 2 == 1 for k in found.tolist())


def test_merge_keeps_live_rows_and_catches_up_deletes() -> None:
    a = Segment(1, np.array([1, 3, 5]), np.eye(3, dtype=np.float32), np.array([True, False, True]))
    b = Segment(2, np.array([2, 4]), np.ones((2, 3), dtype=np.float32), np.ones(2, dtype=bool))
    merged = merging.merge(9, [a, b], lambda data: None)
    assert merged.keys.tolist() == [1, 2, 4, 5]
    np.testing.assert_array_equal(merged.data[0], [1, 0, 0])
    now = [a.without(np.array([5])), b]  # a delete arrived while the merge ran
    merged = merging.catch_up(merged, [a, b], now)
    assert merged.keys[merged.live].tolist() == [1, 2, 4]


def test_policy_picks_small_and_dead_heavy_segments() -> None:
    small = [Segment(i, np.array([i]), np.zeros((1, 2), np.float32), np.ones(1, bool)) for i in range(10)]
    assert len(merging.pick(small)) == 10 - merging.MAX_SEGMENTS // 2 + 1
    heavy = Segment(20, np.arange(10), np.zeros((10, 2), np.float32), np.arange(10) < 5)
    assert merging.pick([heavy]) == [heavy]
    assert merging.pick(small[:3]) == []


# ---- the projection and its files ------------------------------------------------------------------------


_MAPPINGS = Mappings.parse({"properties": {"v": {"type": "knn_vector", "dimension": 3}}})
_SETTINGS = {"index.knn": True}


def _projection(root: Path) -> VectorIndex:
    return VectorIndex(root / "vectors", _MAPPINGS, lambda: _SETTINGS, lambda: None)


def _write(store: Store, writes: list[tuple[str, dict | None]]) -> list:
    return store.apply([Write(i, None if s is None else orjson.dumps(s), 1) for i, s in writes])


def _top(vi: VectorIndex, q: list[float], k: int = 5) -> list[int]:
    field = vi.field("v")
    keys, _ = field.search(field.query_row(np.array(q)), k, None, SearchOptions())
    return keys.tolist()


def test_projection_reload_catch_up_and_rebuild(tmp_path: Path) -> None:
    store = Store(tmp_path / "store.db")
    vi = _projection(tmp_path)
    vi.recover(store)
    applied = _write(store, [(str(i), {"v": [i, 0, 0]}) for i in range(10)])
    for stored in applied:
        vi.project(stored.key, {"v": [int(stored.id), 0, 0]})
    vi.refresh(store.max_seq_no)
    assert _top(vi, [0, 0, 0], 3) == [applied[0].key, applied[1].key, applied[2].key]
    # writes the projection never saw (a crash before refresh): caught up from the store at start-up
    _write(store, [("0", None), ("11", {"v": [0.1, 0, 0]})])
    again = _projection(tmp_path)
    again.recover(store)
    top = _top(again, [0, 0, 0], 2)
    assert applied[0].key not in top and store.get("11").key == top[0]
    # a damaged segment file: rebuilt from the store with the same answer
    for f in (tmp_path / "vectors").rglob("keys.npy"):
        f.write_bytes(b"garbage")
    rebuilt = _projection(tmp_path)
    rebuilt.recover(store)
    assert _top(rebuilt, [0, 0, 0], 2) == top
    store.close()


def test_background_merge_keeps_results(tmp_path: Path) -> None:
    store = Store(tmp_path / "store.db")
    vi = _projection(tmp_path)
    vi.recover(store)
    rng = np.random.default_rng(4)
    vectors = rng.normal(size=(200, 3)).astype(np.float32)
    for chunk in range(20):  # twenty refreshes: twenty small segments
        ids = range(chunk * 10, chunk * 10 + 10)
        applied = _write(store, [(str(i), {"v": vectors[i].tolist()}) for i in ids])
        for stored in applied:
            vi.project(stored.key, {"v": vectors[int(stored.id)].tolist()})
        vi.refresh(store.max_seq_no)
    before = _top(vi, [0, 0, 0], 20)
    while vi.merge_once():
        pass
    assert len(vi.field("v").segments) <= merging.MAX_SEGMENTS
    assert _top(vi, [0, 0, 0], 20) == before
    vi.close()
    reopened = _projection(tmp_path)
    reopened.recover(store)
    assert _top(reopened, [0, 0, 0], 20) == before
    store.close()


def test_graphs_come_from_the_merger_not_refresh(tmp_path: Path) -> None:
    store = Store(tmp_path / "store.db")
    vi = _projection(tmp_path)
    vi.recover(store)
    data = _clustered(1500, 3, seed=9)
    applied = _write(store, [(str(i), {"v": data[i].tolist()}) for i in range(1500)])
    for stored in applied:
        vi.project(stored.key, {"v": data[int(stored.id)].tolist()})
    vi.refresh(store.max_seq_no)
    exact = _top(vi, [0, 0, 0], 10)
    vi.settle()
    (segment,) = vi.field("v").segments
    assert segment.graph is not None and segment.graph.ntotal == 1500
    assert len(set(_top(vi, [0, 0, 0], 10)) & set(exact)) >= 9
    vi.close()
    store.close()


# ---- quantization ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ({"dimension": 8}, ("flat", 32, 1.0)),
        ({"dimension": 8, "mode": "on_disk"}, ("bq", 1, 2.0)),
        ({"dimension": 8, "mode": "on_disk", "compression_level": "16x"}, ("bq", 2, 3.0)),
        ({"dimension": 8, "mode": "on_disk", "compression_level": "2x"}, ("fp16", 16, 1.0)),
        ({"dimension": 8, "compression_level": "4x"}, ("int8", 8, 1.0)),
        ({"dimension": 8, "method": {"name": "hnsw", "parameters": {"encoder": {"name": "sq"}}}}, ("fp16", 16, 1.0)),
        (
            {
                "dimension": 8,
                "method": {"name": "hnsw", "parameters": {"encoder": {"name": "binary", "parameters": {"bits": 4}}}},
            },
            ("bq", 4, 1.0),
        ),
    ],
)
def test_quantization_of_mappings(field: dict, expected: tuple) -> None:
    q = quantization_of(field)
    assert (q.kind, q.bits, q.oversample) == expected


def test_binary_codes_are_thermometer_codes() -> None:
    data = _clustered(1200, 5, seed=2)
    graph = BinaryGraph.build(data, 2, 16, 40)
    assert graph.code_bits == 16 and graph.ntotal == 1200  # 5 dims x 2 bits, padded to whole bytes
    codes = np.unpackbits(graph.encode(data[:50]), axis=1)[:, :10].reshape(50, 2, 5)
    assert np.all(codes[:, 1] <= codes[:, 0])  # the upper threshold is only passed after the lower one
    assert graph.memory_bytes() < graph_memory(build_graph(space("l2"), data, GraphSpec()))
    assert is_quantized(graph) and not is_quantized(build_graph(space("l2"), data, GraphSpec()))


def test_on_disk_vectors_are_memory_mapped_after_refresh(tmp_path: Path) -> None:
    mappings = Mappings.parse({"properties": {"v": {"type": "knn_vector", "dimension": 8, "mode": "on_disk"}}})
    store = Store(tmp_path / "store.db")
    vi = VectorIndex(tmp_path / "vectors", mappings, lambda: _SETTINGS, lambda: None)
    vi.recover(store)
    data = _clustered(1200, 8, seed=5)
    for stored in _write(store, [(str(i), {"v": data[i].tolist()}) for i in range(1200)]):
        vi.project(stored.key, {"v": data[int(stored.id)].tolist()})
    vi.refresh(store.max_seq_no)
    vi.settle()
    (segment,) = vi.field("v").segments
    assert not segment.data.flags.owndata and not segment.data.flags.writeable  # a read-only view of the file
    assert isinstance(segment.graph, BinaryGraph)
    field = vi.field("v")
    keys, dists = field.search(field.query_row(data[7]), 3, None, SearchOptions(oversample=2.0))
    assert dists[0] == 0.0 and len(keys) == 3
    vi.close()
    store.close()
