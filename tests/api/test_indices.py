"""Index administration: create (settings, mappings, aliases), names, delete, exists, get, _mapping, _settings,
_refresh, _flush and _aliases."""

from __future__ import annotations

import pytest
from opensearchpy import OpenSearch
from opensearchpy.exceptions import NotFoundError, RequestError

from tests.conftest import RawHttp, assert_error


def test_create_with_settings_mappings_aliases(client: OpenSearch, index_name: str) -> None:
    answer = client.indices.create(
        index=index_name,
        body={
            "settings": {"number_of_replicas": 0, "index": {"refresh_interval": "5s"}, "index.max_result_window": 50},
            "mappings": {"properties": {"title": {"type": "text"}, "n": {"type": "integer"}}},
            "aliases": {f"{index_name}-alias": {}},
        },
    )
    assert answer == {"acknowledged": True, "shards_acknowledged": True, "index": index_name}
    got = client.indices.get(index=index_name)[index_name]
    assert got["mappings"]["properties"]["n"] == {"type": "integer"}
    assert got["aliases"] == {f"{index_name}-alias": {}}
    settings = got["settings"]["index"]
    assert settings["number_of_replicas"] == "0" and settings["refresh_interval"] == "5s"
    assert settings["max_result_window"] == "50" and settings["provided_name"] == index_name
    assert {"uuid", "creation_date"} <= set(settings)
    assert client.indices.exists(index=index_name) is True
    assert client.indices.exists(index=f"{index_name}-nope") is False


def test_tutorial_knn_settings(client: OpenSearch, index_name: str) -> None:
    client.indices.create(
        index=index_name, body={"settings": {"index.knn": True, "default_pipeline": "nlp-ingest-pipeline"}}
    )
    settings = client.indices.get_settings(index=index_name)[index_name]["settings"]["index"]
    assert settings["knn"] == "true" and settings["default_pipeline"] == "nlp-ingest-pipeline"
    flat = client.indices.get_settings(index=index_name, flat_settings=True)[index_name]["settings"]
    assert flat["index.knn"] == "true"


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("UPPER", "must be lowercase"),
        ("_under", "must not start with '_', '-', or '+'"),
        ("-dash", "must not start with '_', '-', or '+'"),
        ("a*b", "must not contain the following characters"),
        ("a%5Cb", "must not contain the following characters"),
        ("a:b", "must not contain ':'"),
    ],
)
def test_invalid_names(http: RawHttp, name: str, reason: str) -> None:
    _, body = http.request("PUT", f"/{name}")
    assert_error(body, 400, "invalid_index_name_exception", reason)
    assert body["error"]["index"] == name.replace("%5C", "\\")


def test_create_errors(client: OpenSearch, http: RawHttp, index_name: str) -> None:
    client.indices.create(index=index_name)
    _, body = http.request("PUT", f"/{index_name}")
    assert_error(body, 400, "resource_already_exists_exception", f"index [{index_name}/")
    _, body = http.request("PUT", f"/{index_name}-x", {"settings": {"index.bogus": 1}})
    assert_error(body, 400, "illegal_argument_exception", "unknown setting [index.bogus]")
    _, body = http.request("PUT", f"/{index_name}-x", {"mappings": {"properties": {"f": {"type": "nope"}}}})
    assert_error(body, 400, "mapper_parsing_exception", "No handler for type [nope] declared on field [f]")
    _, body = http.request(
        "PUT", f"/{index_name}-x", {"mappings": {"properties": {"f": {"type": "keyword", "bogus_param": 1}}}}
    )
    assert_error(body, 400, "mapper_parsing_exception", "unknown parameter [bogus_param]")
    assert client.indices.exists(index=f"{index_name}-x") is False


def test_delete_lists_wildcards_and_missing(client: OpenSearch, http: RawHttp) -> None:
    for name in ("del-a", "del-b", "del-c"):
        client.indices.create(index=name)
    assert client.indices.delete(index="del-a,del-b") == {"acknowledged": True}
    assert client.indices.delete(index="del-*") == {"acknowledged": True}
    assert not client.indices.exists(index="del-c")
    _, body = http.request("DELETE", "/del-missing")
    assert_error(body, 404, "index_not_found_exception", "no such index [del-missing]")
    error = body["error"]
    assert error["index"] == "del-missing" and error["resource.id"] == "del-missing"
    assert error["resource.type"] == "index_or_alias" and error["index_uuid"] == "_na_"
    assert client.indices.delete(index="del-missing", ignore_unavailable=True) == {"acknowledged": True}


def test_mapping_get_and_put(client: OpenSearch, http: RawHttp, index_name: str) -> None:
    client.indices.create(index=index_name, body={"mappings": {"properties": {"n": {"type": "long"}}}})
    client.index(index=index_name, id="1", body={"n": 1, "title": "old doc"}, refresh=True)
    answer = client.indices.put_mapping(index=index_name, body={"properties": {"extra": {"type": "keyword"}}})
    assert answer == {"acknowledged": True}
    props = client.indices.get_mapping(index=index_name)[index_name]["mappings"]["properties"]
    assert props["n"] == {"type": "long"} and props["extra"] == {"type": "keyword"} and "title" in props
    _, body = http.request("PUT", f"/{index_name}/_mapping", {"properties": {"n": {"type": "text"}}})
    assert_error(body, 400, "illegal_argument_exception", "mapper [n] cannot be changed from type [long] to [text]")
    client.index(index=index_name, id="2", body={"n": 2, "extra": "x"}, refresh=True)
    assert client.search(index=index_name, body={"query": {"term": {"extra": "x"}}})["hits"]["total"]["value"] == 1
    assert client.search(index=index_name, body={"query": {"match": {"title": "old"}}})["hits"]["total"]["value"] == 1


def test_settings_get_and_put(client: OpenSearch, http: RawHttp, index_name: str) -> None:
    client.indices.create(index=index_name)
    assert client.indices.put_settings(index=index_name, body={"index": {"number_of_replicas": 0}}) == {
        "acknowledged": True
    }
    client.indices.put_settings(index=index_name, body={"refresh_interval": "2s"})
    got = client.indices.get_settings(index=index_name)[index_name]["settings"]["index"]
    assert got["number_of_replicas"] == "0" and got["refresh_interval"] == "2s"
    uuid = got["uuid"]
    _, body = http.request("PUT", f"/{index_name}/_settings", {"index.number_of_shards": 2})
    assert_error(
        body,
        400,
        "illegal_argument_exception",
        f"Can't update non dynamic settings [[index.number_of_shards]] for open indices [[{index_name}/{uuid}]]",
    )
    _, body = http.request("PUT", f"/{index_name}/_settings", {"index.bogus": 2})
    assert_error(body, 400, "illegal_argument_exception", "unknown setting [index.bogus]")
    status, body = http.request("PUT", f"/{index_name}/_settings", {"index.number_of_replicas": "x"})
    assert status == 400
    one = client.indices.get_settings(index=index_name, name="index.number_of_replicas", flat_settings=True)
    assert one[index_name]["settings"] == {"index.number_of_replicas": "0"}


def test_refresh_flush_and_aliases(client: OpenSearch, index_name: str) -> None:
    client.indices.create(
        index=index_name,
        body={"settings": {"refresh_interval": "-1"}, "mappings": {"properties": {"tag": {"type": "keyword"}}}},
    )
    client.index(index=index_name, id="1", body={"tag": "x"})
    assert client.count(index=index_name)["count"] == 0
    assert client.indices.refresh(index=index_name)["_shards"]["failed"] == 0
    assert client.count(index=index_name)["count"] == 1
    assert client.indices.flush(index=index_name)["_shards"]["failed"] == 0
    alias = f"{index_name}-al"
    assert client.indices.update_aliases(body={"actions": [{"add": {"index": index_name, "alias": alias}}]}) == {
        "acknowledged": True
    }
    assert client.search(index=alias)["hits"]["total"]["value"] == 1
    assert alias in client.indices.get_alias(index=index_name)[index_name]["aliases"]
    client.indices.update_aliases(body={"actions": [{"remove": {"index": index_name, "alias": alias}}]})
    with pytest.raises(NotFoundError):
        client.search(index=alias)
    with pytest.raises(RequestError):
        client.indices.update_aliases(body={"actions": [{"explode": {"index": index_name, "alias": alias}}]})


def test_open_succeeds_and_close_is_refused_plainly(client: OpenSearch, index_name: str) -> None:
    client.indices.create(index=index_name)
    assert client.indices.open(index=index_name)["acknowledged"] is True
    with pytest.raises(RequestError) as caught:
        client.indices.close(index=index_name)
    assert caught.value.error == "illegal_argument_exception"
    assert "not supported" in caught.value.info["error"]["reason"]
    client.index(index=index_name, id="1", body={"a": 1}, refresh=True)
    assert client.count(index=index_name)["count"] == 1
