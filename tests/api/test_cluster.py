"""Cluster-level APIs: `/`, health, cluster settings (persistent across restarts), `_cat`, `_nodes`."""

from __future__ import annotations

from pathlib import Path

import pytest
from opensearchpy import OpenSearch
from opensearchpy.exceptions import RequestError

from tests.conftest import RawHttp, ServerProcess, assert_error


def test_root_and_head(client: OpenSearch, http: RawHttp) -> None:
    info = client.info()
    assert info["version"]["number"] == "3.1.0"
    assert info["version"]["distribution"] == "mlsearch"
    assert {"name", "cluster_name", "cluster_uuid", "tagline"} <= set(info)
    assert client.ping() is True
    status, body = http.request("HEAD", "/")
    assert status == 200 and not body


def test_health(client: OpenSearch, index_name: str) -> None:
    client.indices.create(index=index_name, body={"settings": {"number_of_replicas": 0}})
    health = client.cluster.health()
    assert health["status"] in ("green", "yellow") and health["number_of_nodes"] == 1
    one = client.cluster.health(index=index_name)
    assert one["status"] == "green" and one["active_primary_shards"] == 1
    levels = client.cluster.health(index=index_name, params={"level": "indices"})
    assert levels["indices"][index_name]["status"] == "green"
    with pytest.raises(Exception) as info:
        client.cluster.health(index="no-such-index-health")
    assert getattr(info.value, "status_code", None) == 404


def test_cluster_settings_round_trip(client: OpenSearch, http: RawHttp) -> None:
    tutorial = {
        "persistent": {
            "plugins.ml_commons.only_run_on_ml_node": "false",
            "plugins.ml_commons.native_memory_threshold": "99",
        }
    }
    answer = client.cluster.put_settings(body=tutorial)
    assert answer == {
        "acknowledged": True,
        "persistent": {"plugins": {"ml_commons": {"only_run_on_ml_node": "false", "native_memory_threshold": "99"}}},
        "transient": {},
    }
    nested = client.cluster.put_settings(
        body={"transient": {"search": {"max_buckets": 1000}}, "persistent": {"action.auto_create_index": False}}
    )
    assert nested["transient"] == {"search": {"max_buckets": "1000"}}
    got = client.cluster.get_settings()
    assert got["transient"]["search"]["max_buckets"] == "1000"
    assert got["persistent"]["plugins"]["ml_commons"]["native_memory_threshold"] == "99"
    flat = client.cluster.get_settings(flat_settings=True)
    assert flat["persistent"]["plugins.ml_commons.only_run_on_ml_node"] == "false"
    assert flat["persistent"]["action.auto_create_index"] == "false"
    defaults = client.cluster.get_settings(include_defaults=True, flat_settings=True)
    assert defaults["defaults"]["search.allow_expensive_queries"] == "true"
    client.cluster.put_settings(
        body={"transient": {"search.max_buckets": None}, "persistent": {"action.auto_create_index": None}}
    )
    got = client.cluster.get_settings(flat_settings=True)
    assert "search.max_buckets" not in got["transient"]
    assert "action.auto_create_index" not in got["persistent"]
    # booleans given as strings are coerced; bad values and unknown keys are refused and change nothing
    client.cluster.put_settings(body={"persistent": {"plugins.ml_commons.only_run_on_ml_node": "true"}})
    with pytest.raises(RequestError) as info:
        client.cluster.put_settings(body={"persistent": {"no.such.setting": 1}})
    assert info.value.error == "illegal_argument_exception"
    assert (
        "unknown setting [no.such.setting] please check that any required plugins are installed"
        in info.value.info["error"]["reason"]
    )
    for bad in (
        {"plugins.ml_commons.only_run_on_ml_node": "maybe"},
        {"plugins.ml_commons.native_memory_threshold": "abc"},
        {"plugins.ml_commons.native_memory_threshold": 101},
    ):
        with pytest.raises(RequestError) as info:
            client.cluster.put_settings(body={"persistent": bad})
        assert info.value.status_code == 400
    got = client.cluster.get_settings(flat_settings=True)["persistent"]
    assert got["plugins.ml_commons.only_run_on_ml_node"] == "true"
    status, body = http.request("PUT", "/_cluster/settings", {})
    assert status == 400 and body["error"]["type"] == "action_request_validation_exception"
    client.cluster.put_settings(body={"persistent": {"plugins.ml_commons.*": None}})
    assert (
        "plugins.ml_commons.native_memory_threshold"
        not in client.cluster.get_settings(flat_settings=True)["persistent"]
    )


def test_persistent_settings_survive_restart(tmp_path: Path) -> None:
    first = ServerProcess(tmp_path).start()
    try:
        c = OpenSearch(hosts=[first.url])
        c.cluster.put_settings(
            body={
                "persistent": {"plugins.ml_commons.native_memory_threshold": 97},
                "transient": {"search.max_buckets": 10},
            }
        )
    finally:
        first.stop()
    second = ServerProcess(tmp_path).start()
    try:
        got = OpenSearch(hosts=[second.url]).cluster.get_settings(flat_settings=True)
        assert got["persistent"]["plugins.ml_commons.native_memory_threshold"] == "97"
        assert got["transient"] == {}
    finally:
        second.stop()


def test_cat_indices_and_health(client: OpenSearch, http: RawHttp, index_name: str) -> None:
    client.indices.create(index=index_name, body={"settings": {"number_of_replicas": 0}})
    client.index(index=index_name, id="1", body={"a": 1}, refresh=True)
    text = client.cat.indices(index=index_name, v=True)
    lines = text.strip().splitlines()
    assert lines[0].split()[:3] == ["health", "status", "index"]
    assert lines[1].split()[:3] == ["green", "open", index_name]
    assert client.cat.indices(index=index_name, h="index,docs.count").split() == [index_name, "1"]
    rows = client.cat.indices(index=index_name, format="json")
    assert rows[0]["index"] == index_name and rows[0]["docs.count"] == "1"
    health = client.cat.health(format="json")
    assert health[0]["status"] in ("green", "yellow") and health[0]["node.total"] == "1"
    status, text = http.request("GET", "/_cat/health?v&h=cluster,status")
    assert status == 200 and text.splitlines()[0].split() == ["cluster", "status"]


def test_nodes(client: OpenSearch) -> None:
    info = client.nodes.info()
    assert info["_nodes"]["total"] == 1
    node = next(iter(info["nodes"].values()))
    assert node["version"] == "3.1.0" and "ml" in node["roles"]
    stats = client.nodes.stats()
    assert next(iter(stats["nodes"].values()))["indices"]["docs"]["count"] >= 0


def test_unknown_setting_envelope(http: RawHttp) -> None:
    status, body = http.request("PUT", "/_cluster/settings", {"transient": {"x.y": 1}})
    assert status == 400
    assert_error(body, 400, "illegal_argument_exception", "unknown setting [x.y]")
