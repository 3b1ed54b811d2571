"""The `_id`s of knn hits come from beside the vector segments (no store read) on the usual ids-only search: they
must match the store's after deletes, re-indexing of the same `_id`, updates, merges, restarts and kill -9."""

from __future__ import annotations

import numpy as np
from opensearchpy import OpenSearch, helpers

from tests.api.test_knn import _client, _clustered, _create, own_server  # noqa: F401  (a fixture)
from tests.conftest import ServerProcess

_DIM = 6


def _doc_id(i: int) -> str:
    return f"doc-{i}-é"  # not numeric, not ASCII: ids are UTF-8 bytes beside the vectors


def _load(client: OpenSearch, name: str, data: np.ndarray, start: int, stop: int, refresh: bool = True) -> None:
    actions = [{"_index": name, "_id": _doc_id(i), "_source": {"vec": data[i].tolist()}} for i in range(start, stop)]
    helpers.bulk(client, actions, refresh=refresh)


def _hits(client: OpenSearch, name: str, q: np.ndarray, *, source: bool, k: int = 10) -> list[tuple[str, float]]:
    body = {"size": k, "_source": source, "query": {"knn": {"vec": {"vector": q.tolist(), "k": k}}}}
    return [(h["_id"], h["_score"]) for h in client.search(index=name, body=body)["hits"]["hits"]]


def _agree(client: OpenSearch, name: str, queries: np.ndarray) -> list[list[tuple[str, float]]]:
    """Ids-only hits (ids beside the vectors) equal the hits read with their documents (ids from the store)."""
    lean = [_hits(client, name, q, source=False) for q in queries]
    assert lean == [_hits(client, name, q, source=True) for q in queries]
    return lean


def test_ids_after_delete_reindex_update_and_merge(client: OpenSearch, index_name: str) -> None:
    data = _clustered(1300, _DIM, seed=5)
    _create(client, index_name, _DIM, settings={"index.knn.advanced.approximate_threshold": 0})
    for start in range(0, 1200, 300):  # four refreshes: four segments
        _load(client, index_name, data, start, start + 300)
    _agree(client, index_name, data[[0, 5, 7, 640]])
    assert _hits(client, index_name, data[640], source=False)[0][0] == _doc_id(640)
    # delete, then index the same `_id` again with another vector (its key stays; its old row is dead)
    client.delete(index=index_name, id=_doc_id(5), refresh=True)
    assert _doc_id(5) not in {i for i, _ in _hits(client, index_name, data[5], source=False)}
    client.index(index=index_name, id=_doc_id(5), body={"vec": data[1250].tolist()}, refresh=True)
    client.index(index=index_name, id=_doc_id(7), body={"vec": data[1260].tolist()}, refresh=True)  # an update
    assert _hits(client, index_name, data[1250], source=False)[0][0] == _doc_id(5)
    assert _hits(client, index_name, data[1260], source=False)[0][0] == _doc_id(7)
    before = _agree(client, index_name, data[[5, 7, 640, 1250, 1260]])
    # warmup runs the pending merges: one segment with a graph, ids carried over from the merged ones
    client.transport.perform_request("GET", f"/_plugins/_knn/warmup/{index_name}")
    assert _agree(client, index_name, data[[5, 7, 640, 1250, 1260]]) == before


def test_ids_survive_restart_and_kill(own_server: ServerProcess) -> None:  # noqa: F811  (the fixture)
    client = _client(own_server)
    data = _clustered(1400, _DIM, seed=8)
    _create(client, "ids", _DIM, settings={"index.knn.advanced.approximate_threshold": 0})
    _load(client, "ids", data, 0, 1100)
    client.transport.perform_request("GET", "/_plugins/_knn/warmup/ids")
    queries = data[[1, 500, 1099]]
    before = _agree(client, "ids", queries)
    own_server.stop()
    own_server.start()
    client = _client(own_server)
    assert _agree(client, "ids", queries) == before
    # acknowledged, never refreshed: new documents, a delete and a re-index of the same `_id`; then kill -9
    client.indices.put_settings(index="ids", body={"index.refresh_interval": "-1"})
    _load(client, "ids", data, 1100, 1400, refresh=False)
    client.delete(index="ids", id=_doc_id(1))
    client.delete(index="ids", id=_doc_id(500))
    client.index(index="ids", id=_doc_id(500), body={"vec": data[1399].tolist()})
    own_server.kill()
    own_server.start()
    client = _client(own_server)
    after = _agree(client, "ids", data[[1, 1200, 1399]])
    assert _doc_id(1) not in {i for i, _ in after[0]}
    assert after[1][0][0] == _doc_id(1200)
    assert {after[2][0][0], after[2][1][0]} == {_doc_id(500), _doc_id(1399)}  # the same vector, twice
