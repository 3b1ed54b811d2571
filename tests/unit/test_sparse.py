"""Feature postings: Lucene's weight rounding, dot-product scoring against a brute-force sum, deletes and updates
through refreshes, merges, and the projection's persistence and catch-up."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from mlsearch.engine.mapping import Mappings
from mlsearch.engine.sparse import FieldPostings, SparseIndex, lucene_weights, top
from mlsearch.engine.store import Store, Write

TOKENS = ["a", "b", "c", "d", "e"]
docs_strategy = st.dictionaries(
    st.integers(0, 40),
    st.one_of(st.none(), st.dictionaries(st.sampled_from(TOKENS), st.floats(0.01, 50.0), min_size=1)),
    max_size=30,
)


def test_weights_keep_nine_significant_bits() -> None:
    w = lucene_weights(np.asarray([1.0, 1.2345, 3.999, 1e-3], dtype=np.float32))
    assert w[0] == 1.0
    assert w[1] == np.float32(1.234375)  # 1 + 60/256
    assert np.all(w <= np.asarray([1.0, 1.2345, 3.999, 1e-3], dtype=np.float32))
    assert np.all(np.abs(w - [1.0, 1.2345, 3.999, 1e-3]) / w < 2**-8)


@settings(max_examples=60, deadline=None)
@given(st.lists(docs_strategy, min_size=1, max_size=4), st.dictionaries(st.sampled_from(TOKENS), st.floats(0.1, 5)))
def test_dot_matches_brute_force_over_refreshes(batches: list[dict], query: dict[str, float]) -> None:
    postings = FieldPostings("f")
    truth: dict[int, dict[str, float]] = {}
    for batch in batches:
        for key, features in batch.items():
            postings.put(key, features)
            if features:
                truth[key] = {t: float(lucene_weights(np.float32([w]))[0]) for t, w in features.items()}
            else:
                truth.pop(key, None)
        postings.refresh(max_segments=2)
    keys, scores = postings.dot(query)
    got = dict(zip(keys.tolist(), scores.tolist(), strict=True))
    want = {
        k: sum(np.float32(query[t]) * w for t, w in f.items() if t in query)
        for k, f in truth.items()
        if any(t in query for t in f)
    }
    assert set(got) == set(want)
    for k, v in want.items():
        assert abs(got[k] - v) <= 1e-5 * max(1.0, v)


def test_top_orders_by_score_then_key() -> None:
    keys, scores = top(np.asarray([5, 3, 9, 1]), np.asarray([1.0, 2.0, 2.0, 0.5], dtype=np.float32), 3)
    assert keys.tolist() == [3, 9, 5] and scores.tolist() == [2.0, 2.0, 1.0]


def _mappings() -> Mappings:
    return Mappings.parse({"properties": {"sp": {"type": "rank_features"}, "pr": {"type": "rank_feature"}}})


def _write(store: Store, doc_id: str, source: dict | None) -> int:
    encoded = None if source is None else orjson.dumps(source)
    return store.apply([Write(doc_id, encoded, 1)])[0].key


def test_projection_persists_and_catches_up(tmp_path: Path) -> None:
    store = Store(tmp_path / "store.db")
    sparse = SparseIndex(tmp_path / "sparse", _mappings())
    sparse.recover(store)
    k1 = _write(store, "1", {"sp": {"a": 2.0, "b": 1.0}, "pr": 3.0})
    sparse.project(k1, {"sp": {"a": 2.0, "b": 1.0}, "pr": 3.0})
    sparse.refresh(store.max_seq_no)
    # written after the last refresh: only the store's operations log knows about these
    k2 = _write(store, "2", {"sp": {"a": 1.0}})
    _write(store, "1", None)
    reopened = SparseIndex(tmp_path / "sparse", _mappings())
    reopened.recover(store)
    keys, scores = reopened.field("sp").dot({"a": 1.0, "b": 1.0})
    assert keys.tolist() == [k2] and scores.tolist() == [1.0]
    assert reopened.field("pr").values("")[0].tolist() == []
    assert reopened.checkpoint == store.max_seq_no
    store.close()


def test_damaged_files_are_rebuilt_from_the_store(tmp_path: Path) -> None:
    store = Store(tmp_path / "store.db")
    sparse = SparseIndex(tmp_path / "sparse", _mappings())
    sparse.recover(store)
    key = _write(store, "1", {"sp": {"a": 2.0}})
    sparse.project(key, {"sp": {"a": 2.0}})
    sparse.refresh(store.max_seq_no)
    for f in sparse.path.glob("live_*.npz"):
        f.write_bytes(b"garbage")
    reopened = SparseIndex(tmp_path / "sparse", _mappings())
    reopened.recover(store)
    assert reopened.field("sp").dot({"a": 0.5})[1].tolist() == [1.0]
    store.close()
