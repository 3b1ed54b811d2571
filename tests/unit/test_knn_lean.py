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
    for f in (tmp_path / "vectors").rglob("id_offsets.npy"):
        f.write_bytes(b"garbage")  # damaged: rebuilt from the store
    rebuilt = _projection(tmp_path)
    rebuilt.recover(store)
    _ids_everywhere(rebuilt, store)
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
