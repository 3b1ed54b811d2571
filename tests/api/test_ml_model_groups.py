"""Model groups: register / get / update / search / delete, unique names, access modes, auto-created groups."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opensearchpy import OpenSearch

from tests.api.ml_support import ml, pretrained_zip, wait_task  # noqa: F401
from tests.conftest import RawHttp, ServerProcess, assert_error

GROUPS = "/_plugins/_ml/model_groups"


@pytest.fixture(scope="module")
def mlc(ml: ServerProcess) -> OpenSearch:  # noqa: F811
    return OpenSearch(hosts=[{"host": ml.host, "port": ml.port}], timeout=60)


@pytest.fixture
def raw(ml: ServerProcess) -> RawHttp:  # noqa: F811
    return RawHttp(ml.url)


@pytest.fixture
def access_control(mlc: OpenSearch) -> Iterator[None]:
    mlc.cluster.put_settings(body={"persistent": {"plugins.ml_commons.model_access_control_enabled": "true"}})
    yield
    mlc.cluster.put_settings(body={"persistent": {"plugins.ml_commons.model_access_control_enabled": None}})


def test_register_and_get(mlc: OpenSearch) -> None:
    created = mlc.plugins.ml.register_model_group(body={"name": "test_group", "description": "A group"})
    assert created["status"] == "CREATED"
    assert len(created["model_group_id"]) == 20
    group = mlc.plugins.ml.get_model_group(model_group_id=created["model_group_id"])
    assert group["name"] == "test_group"
    assert group["latest_version"] == 0
    assert group["description"] == "A group"
    assert group["access"] == "public"
    assert group["created_time"] == group["last_updated_time"] > 1_600_000_000_000


def test_names_are_unique(mlc: OpenSearch, raw: RawHttp) -> None:
    first = mlc.plugins.ml.register_model_group(body={"name": "unique_group"})
    _status, body = raw.request("POST", f"{GROUPS}/_register", {"name": "unique_group"})
    assert_error(
        body,
        400,
        "illegal_argument_exception",
        f"The name you provided is already being used by a model group with ID: {first['model_group_id']}.",
    )


def test_a_name_is_required(raw: RawHttp) -> None:
    _status, body = raw.request("POST", f"{GROUPS}/_register", {"description": "no name"})
    assert_error(body, 400, "illegal_argument_exception", "name")


def test_access_fields_are_refused_without_access_control(raw: RawHttp) -> None:
    for extra in ({"access_mode": "public"}, {"backend_roles": ["ml"]}, {"add_all_backend_roles": "true"}):
        _status, body = raw.request("POST", f"{GROUPS}/_register", {"name": "acl_off", **extra})
        assert_error(
            body,
            400,
            "illegal_argument_exception",
            "You cannot specify model access control parameters because the Security plugin or model "
            "access control is disabled on your cluster.",
        )


@pytest.mark.usefixtures("access_control")
def test_access_modes_are_validated_and_recorded(mlc: OpenSearch, raw: RawHttp) -> None:
    public = mlc.plugins.ml.register_model_group(body={"name": "acl_public", "access_mode": "public"})
    assert mlc.plugins.ml.get_model_group(model_group_id=public["model_group_id"])["access"] == "public"
    private = mlc.plugins.ml.register_model_group(body={"name": "acl_private"})
    assert mlc.plugins.ml.get_model_group(model_group_id=private["model_group_id"])["access"] == "private"
    restricted = mlc.plugins.ml.register_model_group(body={"name": "acl_restricted", "backend_roles": ["ml_team"]})
    group = mlc.plugins.ml.get_model_group(model_group_id=restricted["model_group_id"])
    assert (group["access"], group["backend_roles"]) == ("restricted", ["ml_team"])
    cases = [
        ({"access_mode": "restricted"}, "You must specify one or more backend roles or add all backend roles"),
        ({"backend_roles": ["a"], "add_all_backend_roles": True}, "You cannot specify backend roles and add all"),
        ({"access_mode": "public", "backend_roles": ["a"]}, "only for a model group with the restricted access"),
        ({"access_mode": "secret"}, "Invalid access mode"),
    ]
    for extra, message in cases:
        _status, body = raw.request("POST", f"{GROUPS}/_register", {"name": "acl_bad", **extra})
        assert_error(body, 400, "illegal_argument_exception", message)


def test_update(mlc: OpenSearch, raw: RawHttp) -> None:
    group_id = mlc.plugins.ml.register_model_group(body={"name": "to_update"})["model_group_id"]
    other = mlc.plugins.ml.register_model_group(body={"name": "taken_name"})["model_group_id"]
    status, body = raw.request("PUT", f"{GROUPS}/{group_id}", {"name": "updated_name", "description": "new"})
    assert (status, body) == (200, {"status": "Updated"})
    group = mlc.plugins.ml.get_model_group(model_group_id=group_id)
    assert (group["name"], group["description"]) == ("updated_name", "new")
    status, body = raw.request("PUT", f"{GROUPS}/{group_id}", {"name": "taken_name"})
    assert_error(body, 400, "illegal_argument_exception", f"model group with ID: {other}.")
    status, body = raw.request("PUT", f"{GROUPS}/nosuchgroup", {"name": "x"})
    assert_error(body, 404, "status_exception", "Failed to find model group")


def test_get_unknown(raw: RawHttp) -> None:
    _status, body = raw.request("GET", f"{GROUPS}/nosuchgroup")
    assert_error(
        body, 404, "status_exception", "Failed to find model group with the provided model group id: nosuchgroup"
    )


def test_search_takes_the_query_dsl(mlc: OpenSearch) -> None:
    group_id = mlc.plugins.ml.register_model_group(body={"name": "searchable_group", "description": "find me"})[
        "model_group_id"
    ]
    found = mlc.plugins.ml.search_model_group(body={"query": {"term": {"name.keyword": "searchable_group"}}})
    assert [h["_id"] for h in found["hits"]["hits"]] == [group_id]
    hit = found["hits"]["hits"][0]
    assert hit["_index"] == ".plugins-ml-model-group"
    assert {"_version", "_seq_no", "_primary_term"} <= set(hit)
    by_id = mlc.plugins.ml.search_model_group(body={"query": {"terms": {"_id": [group_id]}}})
    assert by_id["hits"]["total"]["value"] == 1
    matched = mlc.plugins.ml.search_model_group(body={"query": {"match": {"description": "find"}}, "size": 1})
    assert matched["hits"]["hits"][0]["_source"]["name"] == "searchable_group"


def test_delete(mlc: OpenSearch) -> None:
    group_id = mlc.plugins.ml.register_model_group(body={"name": "to_delete"})["model_group_id"]
    deleted = mlc.plugins.ml.delete_model_group(model_group_id=group_id)
    assert deleted["_index"] == ".plugins-ml-model-group"
    assert (deleted["_id"], deleted["result"]) == (group_id, "deleted")
    again = mlc.plugins.ml.delete_model_group(model_group_id=group_id, ignore=404)
    assert again["result"] == "not_found"


def test_a_group_with_models_cannot_be_deleted_and_goes_with_its_last_model(mlc: OpenSearch, raw: RawHttp) -> None:
    from tests.api.ml_support import PRETRAINED

    group_id = mlc.plugins.ml.register_model_group(body={"name": "with_models"})["model_group_id"]
    body = {"name": PRETRAINED, "version": "1.0.1", "model_format": "ONNX", "model_group_id": group_id}
    ids = [wait_task(mlc, mlc.plugins.ml.register_model(body=body)["task_id"])["model_id"] for _ in range(2)]
    versions = [mlc.plugins.ml.get_model(model_id=i)["model_version"] for i in ids]
    assert versions == ["1", "2"]
    assert mlc.plugins.ml.get_model_group(model_group_id=group_id)["latest_version"] == 2
    status, err = raw.request("DELETE", f"{GROUPS}/{group_id}")
    assert_error(err, 409, "status_exception", "Cannot delete the model group when it has associated model versions")
    mlc.plugins.ml.delete_model(model_id=ids[0])
    assert mlc.plugins.ml.get_model_group(model_group_id=group_id)["name"] == "with_models"
    mlc.plugins.ml.delete_model(model_id=ids[1])
    status, err = raw.request("GET", f"{GROUPS}/{group_id}")
    assert status == 404
