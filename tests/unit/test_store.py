"""The SQLite store: sequence numbers, versions kept in tombstones, replay of changes, atomic batches."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from mlsearch.engine.store import Store, StoredDoc, Write


def _store(tmp_path: Path) -> Store:
    return Store(tmp_path / "store.db")


def test_seq_nos_are_consecutive_and_survive_reopen(tmp_path: Path) -> None:
    store = _store(tmp_path)
    results = store.apply([Write("a", b'{"x":1}', 1), Write("b", b'{"x":2}', 1)])
    assert [r.seq_no for r in results] == [0, 1]
    store.close()
    reopened = _store(tmp_path)
    assert reopened.max_seq_no == 1
    assert [r.seq_no for r in reopened.apply([Write("c", b"{}", 1)])] == [2]


def test_delete_leaves_a_tombstone_and_count_excludes_it(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.apply([Write("a", b"{}", 1), Write("b", b"{}", 1)])
    store.apply([Write("a", None, 2)])
    assert store.count() == 1
    tomb = store.get("a")
    assert tomb is not None and not tomb.live and tomb.version == 2


def test_changes_since_gives_current_state_of_touched_docs(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.apply([Write("a", b'{"v":1}', 1), Write("b", b'{"v":1}', 1)])
    checkpoint = store.max_seq_no
    store.apply([Write("a", b'{"v":2}', 2), Write("b", None, 2), Write("c", b'{"v":1}', 1)])
    changes = store.changes_since(checkpoint)
    live = {c.id: orjson.loads(c.source) for c in changes if isinstance(c, StoredDoc)}
    deleted = {c[1] for c in changes if isinstance(c, tuple)}
    assert live == {"a": {"v": 2}, "c": {"v": 1}}
    assert deleted == {"b"}
    assert store.changes_since(store.max_seq_no) == []


def test_a_failing_batch_changes_nothing(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.apply([Write("a", b"{}", 1)])

    class Boom(Exception):
        pass

    def writes():
        yield Write("b", b"{}", 1)
        raise Boom

    with pytest.raises(Boom):
        store.apply(writes())
    assert store.get("b") is None
    assert store.count() == 1
    assert [r.seq_no for r in store.apply([Write("c", b"{}", 1)])] == [1]


def test_meta_round_trip_and_iter_live(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.put_meta({"settings": {"index.knn": True}})
    assert store.get_meta("settings") == {"index.knn": True}
    assert store.get_meta("missing", 7) == 7
    store.apply([Write(str(i), b"{}", 1) for i in range(5)] + [Write("2", None, 2)])
    ids = [d.id for batch in store.iter_live(batch=2) for d in batch]
    assert ids == ["0", "1", "3", "4"]
