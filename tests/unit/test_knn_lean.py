"""What the knn fast path relies on without a server: `_id`s kept beside the vector segments through refresh, merge,
reload, catch-up and rebuild; and the lean request parse giving the full parse's request, or its error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlsearch.engine import search_request
from mlsearch.engine.search_request import parse_request
from mlsearch.engine.store import Store
from mlsearch.engine.vectors.ids import SegmentIds
from mlsearch.errors import IllegalArgumentError, ParsingError
from tests.unit.test_vectors import _projection, _write


def _ids_everywhere(vi: Any, store: Store) -> None:
    """Every segment knows its rows' ids, and they are the store's."""
    field = vi.field("v")
    for seg in field.segments:
        assert seg.ids is not None and len(seg.ids) == seg.size
        keys = np.asarray(seg.keys)
        assert field.ids_of(keys) == store.ids_of(keys.tolist())


def test_segment_ids_follow_refresh_merge_reload_catch_up_and_rebuild(tmp_path: Path) -> None:
    store = Store(tmp_path / "store.db")
    vi = _projection(tmp_path)
    vi.recover(store)
    for chunk in range(12):  # more segments than the merge policy keeps
        applied = _write(store, [(f"é{i}", {"v": [i, 0, 0]}) for i in range(chunk * 5, chunk * 5 + 5)])
        for stored in applied:
            vi.project(stored.key, {"v": [int(stored.id[1:]), 0, 0]}, stored.id)
        vi.refresh(store.max_seq_no)
    applied = _write(store, [("é3", None), ("é4", {"v": [100, 0, 0]})])  # a delete, an update
    vi.project(applied[0].key, None, applied[0].id)
    vi.project(applied[1].key, {"v": [100, 0, 0]}, applied[1].id)
    vi.refresh(store.max_seq_no)
    _ids_everywhere(vi, store)
    vi.settle()  # merges: ids taken from the live rows, in key order
    _ids_everywhere(vi, store)
    vi.close()
    _write(store, [("é3", {"v": [3, 0, 0]}), ("é70", {"v": [70, 0, 0]})])  # never projected: a crash
    again = _projection(tmp_path)
    again.recover(store)  # reload the segment files, catch up from the store
    _ids_everywhere(again, store)
    assert again.field("v").ids_of(np.array([store.get("é3").key])) == {store.get("é3").key: "é3"}
    again.settle()
    again.close()  # one projection per directory at a time: its merger removes segment directories
    for f in (tmp_path / "vectors").rglob("id_offsets.npy"):
        f.write_bytes(b"garbage")  # damaged: rebuilt from the store
    rebuilt = _projection(tmp_path)
    rebuilt.recover(store)
    _ids_everywhere(rebuilt, store)
    rebuilt.close()
    store.close()


def test_segment_ids_take_and_concat() -> None:
    ids = SegmentIds.of(["a", "ßb", "", "dd"])
    assert ids.at(np.array([3, 0, 1])) == ["dd", "a", "ßb"]
    assert SegmentIds.concat([ids.take(np.array([1, 2])), SegmentIds.of(["x"])]).at(np.arange(3)) == ["ßb", "", "x"]


_VEC = [0.5, 1.5, -2.0]
_BODIES: list[Any] = [
    {"query": {"knn": {"vec": {"vector": _VEC, "k": 3}}}},
    {"size": 5, "from": 2, "_source": False, "query": {"knn": {"vec": {"vector": _VEC, "k": 3}}}},
    {"size": "7", "_source": ["a*"], "query": {"match_all": {}}},
    {"_source": {"includes": ["a"], "excludes": ["b"]}},
    {"query": None, "size": 0},
    {"query": {"knn": {"vec": {"vector": [1, 0, True], "k": 3}}}},
    {"query": {"knn": {"vec": {"vector": [1, 0, 2], "k": 3}}}},
    {"query": {"knn": {"vec": {"vector": [1.0, "2", 3.0], "k": 3}}}},
    {"query": {"knn": {"vec": {"vector": [1.0, None, 3.0], "k": 3}}}},
    {"query": {"knn": {"vec": {"vector": [1.0, float("nan"), 3.0], "k": 3}}}},
    {"query": {"knn": {"vec": {"vector": [1.0, 1e39, 3.0], "k": 3}}}},
    {"query": {"knn": {"vec": {"vector": [1.0, 10**400, 3.0], "k": 3}}}},
    {"query": {"knn": {"vec": {"vector": [], "k": 3}}}},
    {"query": {"knn": {"vec": {"vector": _VEC, "k": 0}}}},
    {"size": -1, "query": {"knn": {"vec": {"vector": _VEC, "k": 3}}}},
    {"from": -1},
    {"size": [1]},
    {"size": "x", "from": -1},
    {"_source": 5},
    {"query": {"nope": {}}, "size": -1},
]


def _outcome(body: Any) -> Any:
    try:
        req = parse_request(body)
    except (IllegalArgumentError, ParsingError) as exc:
        return type(exc), str(exc)
    fields = {name: getattr(req, name) for name in req.__slots__ if name != "query"}  # type: ignore[attr-defined]
    query = req.query
    shown = {k: getattr(query, k) for k in getattr(query, "__slots__", ()) if k != "vector"}
    vector = getattr(query, "vector", None)
    return fields, type(query), shown, None if vector is None else (vector.dtype, vector.tolist())


@pytest.mark.parametrize("body", _BODIES)
def test_lean_parse_matches_the_full_parse(body: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    lean = _outcome(body)
    monkeypatch.setattr(search_request, "_LEAN_KEYS", frozenset())  # every body takes the full parse
    assert lean == _outcome(body)


# ---- the hot path's shortcuts ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["l2", "innerproduct", "cosinesimil"])
def test_flat_graph_distances_are_faiss_own(name: str) -> None:
    """A graph over float32 vectors answers with faiss's exact distances, which the k-NN plugin turns into scores:
    they are what faiss's flat kernel measures for the same rows (bit for bit), nearest first, ties by key."""
    import faiss

    from mlsearch.engine.vectors import SearchOptions, space
    from tests.unit.test_vectors import _clustered, _segment

    data = _clustered(3000, 24, seed=5)
    seg = _segment(data, graph=True, name=name)
    sp = space(name)
    flat = faiss.IndexFlat(24, sp.faiss_metric)
    flat.add(np.ascontiguousarray(seg.data))
    for q in sp.prepare(data[[3, 1500, 2999]] + 0.25):
        rows, dists = seg.search_rows(sp, q, 10, seg.live, SearchOptions(ef_search=64), False)
        measured = np.empty((1, 10), dtype=np.float32)
        flat.compute_distance_subset(1, faiss.swig_ptr(q), 10, faiss.swig_ptr(measured), faiss.swig_ptr(rows.copy()))
        assert dists.tolist() == sp.from_faiss(measured[0]).tolist()
        pairs = list(zip(dists.tolist(), rows.tolist(), strict=True))
        assert pairs == sorted(pairs)


def test_field_search_says_where_it_found_the_documents() -> None:
    """One segment with one row per document: the rows come back with the keys (the hits' `_id`s are read by row);
    several segments: no rows, the keys alone."""
    from mlsearch.engine.vectors import FieldSpec, FieldVectors, SearchOptions, space
    from mlsearch.engine.vectors.segment import GraphSpec
    from tests.unit.test_vectors import _clustered, _segment

    data = _clustered(600, 8, seed=7)
    keys = np.arange(0, 1800, 3, dtype=np.int64)
    seg = _segment(data, keys=keys, graph=True)
    spec = FieldSpec("v", 8, "float", space("l2"), "faiss", GraphSpec(), None, True)
    field = FieldVectors(spec, (seg,))
    found_keys, dists, where = field.search_found(data[5], 10, None, SearchOptions())
    assert where is not None and where[0] is seg and keys[where[1]].tolist() == found_keys.tolist()
    assert (found_keys.tolist(), dists.tolist()) == tuple(
        x.tolist() for x in field.search(data[5], 10, None, SearchOptions())
    )
    two = FieldVectors(spec, (seg, _segment(data[:5] + 100, keys=np.arange(5000, 5005, dtype=np.int64))))
    assert two.search_found(data[5], 10, None, SearchOptions())[2] is None


@pytest.mark.parametrize(
    "vector",
    [[1, True], [False, 0.5], [0.5, "1"], [0.5, None], [[0.5], 1.0], [0.5, {}], [1e40, 0.5], [10**400, 0.5]],
)
def test_packed_query_vectors_keep_opensearch_errors(vector: list[Any]) -> None:
    body = {"query": {"knn": {"v": {"vector": vector, "k": 1}}}}
    with pytest.raises(IllegalArgumentError, match="requires to be an array of finite numbers"):
        parse_request(body)


@pytest.mark.parametrize("vector", [[0, 1, 2], [1.0, 0.0, -0.0], [0.5, 2.0, 3], [3.4e38, -3.4e38, 1e-45]])
def test_packed_query_vectors_are_float32(vector: list[Any]) -> None:
    got = parse_request({"query": {"knn": {"v": {"vector": vector, "k": 1}}}}).query.vector  # type: ignore[attr-defined]
    assert got.dtype == np.float32 and got.tolist() == np.asarray(vector, dtype=np.float32).tolist()
