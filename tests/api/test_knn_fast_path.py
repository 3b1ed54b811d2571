"""A top-level `knn` query is executed by a fast path (vector segments straight to hits, no tantivy query); every
response must equal the general path's. A `post_filter` of `match_all` changes no result but sends the same request
down the general path, so each case below runs both ways on the same snapshot and compares the whole responses."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import orjson
import pytest
from opensearchpy import OpenSearch, helpers

from mlsearch.engine.knn_search import is_plain_knn
from mlsearch.engine.search import parse_request
from tests.conftest import RawHttp

DIM = 8
N = 600  # under the smallest graph size: exact segments, so both runs search deterministically


def _clustered(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 3, size=(12, DIM))
    return (centers[rng.integers(0, 12, n)] + rng.normal(0, 1, size=(n, DIM))).astype(np.float32)


def _make(client: OpenSearch, name: str, seed: int, space: str = "l2") -> np.ndarray:
    client.indices.create(
        index=name,
        body={
            # No periodic refresh: the "deleted since the last refresh" case must stay put between the two runs.
            "settings": {"index.knn": True, "index.refresh_interval": "-1"},
            "mappings": {
                "properties": {
                    "vec": {"type": "knn_vector", "dimension": DIM, "space_type": space},
                    "tag": {"type": "integer"},
                    "color": {"type": "keyword"},
                    "title": {"type": "text"},
                }
            },
        },
    )
    data = _clustered(N, seed)
    actions = [
        {
            "_index": name,
            "_id": f"{name}-{i}",
            "_source": {"vec": v.tolist(), "tag": i % 10, "color": ["red", "blue"][i % 2], "title": f"doc {i}"},
        }
        for i, v in enumerate(data)
    ]
    helpers.bulk(client, actions, refresh=True)
    return data


@pytest.fixture(scope="module")
def pair(client: OpenSearch) -> Iterator[str]:
    """Two indices (`<name>-a`, `<name>-b`) with refreshed and unrefreshed deletes and an unrefreshed update, and
    `<name>-c` and `<name>-d` (the documents of `-a` and `-b`) with every change refreshed: there hits of requests
    without `_source` take their ids from the store's id cache."""
    index_name = "knn-fast-path"  # read-only for the tests of this module: built once
    for suffix, seed in (("c", 1), ("d", 2)):
        name = f"{index_name}-{suffix}"
        _make(client, name, seed)
        for i in range(0, 60, 10):
            client.delete(index=name, id=f"{name}-{i}")
        client.indices.refresh(index=name)
    for suffix, seed in (("a", 1), ("b", 2)):
        name = f"{index_name}-{suffix}"
        _make(client, name, seed)
        for i in range(0, 60, 10):  # deleted and refreshed
            client.delete(index=name, id=f"{name}-{i}")
        client.indices.refresh(index=name)
        for i in range(5, 60, 10):  # deleted since the last refresh: still in the snapshot, gone from the store
            client.delete(index=name, id=f"{name}-{i}")
        client.index(index=name, id=f"{name}-3", body={"vec": [9.0] * DIM, "tag": 3, "color": "red", "title": "new"})
    yield index_name
    client.indices.delete(index=f"{index_name}-a,{index_name}-b,{index_name}-c,{index_name}-d", ignore_unavailable=True)


def _both(client: OpenSearch, target: str, body: dict[str, Any], **params: Any) -> tuple[dict, dict]:
    fast = client.search(index=target, body=body, params=params)
    general = client.search(index=target, body={**body, "post_filter": {"match_all": {}}}, params=params)
    for response in (fast, general):
        response.pop("took")
    return fast, general


def _queries(seed: int, count: int) -> list[list[float]]:
    """Points near documents of index `-a` (seed 1): queries with real neighbours."""
    rng = np.random.default_rng(seed)
    near = _clustered(N, 1)[rng.integers(0, N, count)]
    return (near + rng.normal(0, 0.5, size=near.shape)).astype(np.float32).tolist()


CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("plain", {"k": 10}, {"size": 10}),
    ("from and size inside k", {"k": 25}, {"from": 5, "size": 10}),
    ("size beyond k", {"k": 5}, {"size": 20}),
    ("from beyond k", {"k": 5}, {"from": 8, "size": 5}),
    ("size zero", {"k": 10}, {"size": 0}),
    ("default size", {"k": 30}, {}),
    ("source excluded", {"k": 10}, {"_source": False}),
    ("source includes", {"k": 10}, {"_source": ["tag", "title"]}),
    ("source excludes", {"k": 10}, {"_source": {"excludes": ["vec"]}}),
    ("version and seq_no", {"k": 10}, {"version": True, "seq_no_primary_term": True, "_source": False}),
    ("no total", {"k": 10}, {"track_total_hits": False}),
    ("total capped", {"k": 20}, {"track_total_hits": 5}),
    ("efficient filter", {"k": 10, "filter": {"range": {"tag": {"lt": 3}}}}, {}),
    ("keyword filter", {"k": 15, "filter": {"term": {"color": "blue"}}}, {"from": 3, "size": 7}),
    ("filter matching nothing", {"k": 10, "filter": {"term": {"color": "green"}}}, {}),
    ("boost", {"k": 10, "boost": 2.5}, {}),
    ("radial max_distance", {"max_distance": 30.0}, {"size": 15}),
    ("radial min_score", {"min_score": 0.05}, {"size": 15}),
    ("ef_search", {"k": 10, "method_parameters": {"ef_search": 20}}, {}),
]


@pytest.mark.parametrize(
    ("suffix", "source"), [("a", None), ("c", None), ("c", False)], ids=["unrefreshed", "refreshed", "refreshed-ids"]
)
@pytest.mark.parametrize(("label", "spec", "extra"), CASES, ids=[c[0] for c in CASES])
def test_fast_path_equals_general_path(
    client: OpenSearch, pair: str, label: str, spec: dict, extra: dict, suffix: str, source: bool | None
) -> None:
    target = f"{pair}-{suffix}"
    if source is not None:
        extra = {**extra, "_source": source}
    for q in _queries(11, 4):
        body = {"query": {"knn": {"vec": {"vector": q, **spec}}}, **extra}
        fast, general = _both(client, target, body)
        assert fast == general, label
    if extra.get("size", 10) > 0 and extra.get("from", 0) < spec.get("k", N) and "green" not in str(spec):
        assert fast["hits"]["hits"], "the case should find documents"
    assert fast["hits"].get("total", {"value": 1})["value"] > 0 or "green" in str(spec)


def test_min_score_of_the_request(client: OpenSearch, pair: str) -> None:
    target = f"{pair}-a"
    for q in _queries(12, 4):
        probe = client.search(index=target, body={"query": {"knn": {"vec": {"vector": q, "k": 20}}}, "size": 20})
        scores = [h["_score"] for h in probe["hits"]["hits"]]
        threshold = scores[len(scores) // 2]  # exactly a hit's score: it must stay (>=)
        body = {"query": {"knn": {"vec": {"vector": q, "k": 20}}}, "min_score": threshold, "size": 20}
        fast, general = _both(client, target, body)
        assert fast == general
        assert fast["hits"]["total"]["value"] == sum(s >= threshold for s in scores)


def test_deleted_and_updated_documents(client: OpenSearch, pair: str) -> None:
    target = f"{pair}-a"
    data = _clustered(N, 1)
    gone = {f"{target}-{i}" for i in (*range(0, 60, 10), *range(5, 60, 10))}
    for i in (0, 5, 10, 15):  # each one's own vector: it would be the top hit were it alive
        body = {"query": {"knn": {"vec": {"vector": data[i].tolist(), "k": 10}}}, "_source": ["title"]}
        fast, general = _both(client, target, body)
        assert fast == general
        ids = [h["_id"] for h in fast["hits"]["hits"]]
        assert not gone & set(ids)
    # The document updated since the last refresh is found by its old vector and shows its new source.
    body = {"query": {"knn": {"vec": {"vector": data[3].tolist(), "k": 3}}}, "_source": ["title"]}
    fast, general = _both(client, target, body)
    assert fast == general
    assert fast["hits"]["hits"][0]["_id"] == f"{target}-3"
    assert fast["hits"]["hits"][0]["_source"] == {"title": "new"}


@pytest.mark.parametrize("source", [True, False])
def test_several_indices(client: OpenSearch, pair: str, source: bool) -> None:
    for target, names in ((f"{pair}-a,{pair}-b", "ab"), (f"{pair}-*", "abcd"), (f"{pair}-c,{pair}-d", "cd")):
        for q in _queries(13, 3):
            body = {"query": {"knn": {"vec": {"vector": q, "k": 12}}}, "from": 4, "size": 30, "_source": source}
            fast, general = _both(client, target, body)
            assert fast == general
            assert {h["_index"] for h in fast["hits"]["hits"]} == {f"{pair}-{n}" for n in names}
            assert fast["hits"]["total"]["value"] == 12 * len(names)


def test_unmapped_field(client: OpenSearch, pair: str) -> None:
    body = {"query": {"knn": {"other": {"vector": [0.0] * DIM, "k": 3, "ignore_unmapped": True}}}}
    fast, general = _both(client, f"{pair}-a", body)
    assert fast == general
    assert fast["hits"] == {"total": {"value": 0, "relation": "eq"}, "max_score": None, "hits": []}


@pytest.mark.parametrize(
    ("spec", "status"),
    [
        ({"vector": [0.0] * (DIM - 1), "k": 3}, 400),
        ({"vector": [0.0, True, *([0.0] * (DIM - 2))], "k": 3}, 400),
        ({"vector": ["1.5", *([0.0] * (DIM - 1))], "k": 3}, 400),
        ({"vector": [1e300, *([0.0] * (DIM - 1))], "k": 3}, 400),
    ],
    ids=["dimension", "boolean", "string", "overflow"],
)
def test_errors_are_the_same(http: RawHttp, pair: str, spec: dict, status: int) -> None:
    path = f"/{pair}-a/_search"
    fast_status, fast = http.request("POST", path, orjson.dumps({"query": {"knn": {"vec": spec}}}))
    general_status, general = http.request(
        "POST", path, orjson.dumps({"query": {"knn": {"vec": spec}}, "post_filter": {"match_all": {}}})
    )
    assert fast_status == general_status == status
    assert fast == general
    assert fast["error"]["type"] == "illegal_argument_exception"


def test_which_requests_take_the_fast_path() -> None:
    knn = {"knn": {"vec": {"vector": [0.0] * DIM, "k": 3}}}
    assert is_plain_knn(parse_request({"query": knn, "size": 3, "_source": False, "min_score": 0.1}))
    for other in (
        {"post_filter": {"match_all": {}}},
        {"sort": ["_score"]},
        {"aggs": {"t": {"terms": {"field": "color"}}}},
        {"explain": True},
        {"search_after": [1.0]},
    ):
        assert not is_plain_knn(parse_request({"query": knn, **other}))
    assert not is_plain_knn(parse_request({"query": {"bool": {"must": [knn]}}}))


def test_a_delete_after_the_ids_were_cached(client: OpenSearch, index_name: str) -> None:
    data = _make(client, index_name, 3)
    body = {"query": {"knn": {"vec": {"vector": data[7].tolist(), "k": 5}}}, "_source": False}
    first = client.search(index=index_name, body=body)["hits"]["hits"]
    assert first[0]["_id"] == f"{index_name}-7"  # its id is in the cache now
    client.delete(index=index_name, id=f"{index_name}-7")  # not refreshed: still in the vector snapshot
    for _ in range(2):
        fast, general = _both(client, index_name, body)
        assert fast == general
        assert f"{index_name}-7" not in [h["_id"] for h in fast["hits"]["hits"]]
        client.indices.refresh(index=index_name)
