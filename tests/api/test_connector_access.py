"""Connector access-control fields (`backend_roles`, `add_all_backend_roles`, `access_mode`): refused while
`plugins.ml_commons.connector_access_control_enabled` is false, validated with ML Commons' messages and recorded when
it is true, returned by get and search (never enforced: there is no authentication yet)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opensearchpy import OpenSearch

from tests.conftest import RawHttp, assert_error

ML = "/_plugins/_ml"
P = "plugins.ml_commons."
DISABLED = "You cannot specify connector access control parameters because the Security plugin or connector access"


def connector(**extra: Any) -> dict[str, Any]:
    return {
        "name": "access test",
        "description": "d",
        "version": "1",
        "protocol": "http",
        "parameters": {"model": "m"},
        "credential": {"key": "secret"},
        "actions": [
            {
                "action_type": "predict",
                "method": "POST",
                "url": "https://api.openai.com/v1/embeddings",
                "request_body": '{"input": ${parameters.input}}',
            }
        ],
        **extra,
    }


@pytest.fixture
def access_control(client: OpenSearch) -> Iterator[None]:
    client.cluster.put_settings(body={"persistent": {P + "connector_access_control_enabled": True}})
    yield
    client.cluster.put_settings(body={"persistent": {P + "connector_access_control_enabled": None}})


def create(http: RawHttp, body: dict[str, Any]) -> tuple[int, Any]:
    return http.request("POST", f"{ML}/connectors/_create", body)


def get(http: RawHttp, connector_id: str) -> dict[str, Any]:
    status, out = http.request("GET", f"{ML}/connectors/{connector_id}")
    assert status == 200, out
    return out


@pytest.mark.parametrize(
    "fields",
    [{"backend_roles": ["ml"]}, {"add_all_backend_roles": False}, {"access_mode": "public"}],
)
def test_access_fields_refused_when_access_control_is_off(http: RawHttp, fields: dict[str, Any]) -> None:
    _, out = create(http, connector(**fields))
    assert_error(out, 400, "illegal_argument_exception", DISABLED)


def test_without_access_control_nothing_is_recorded(http: RawHttp) -> None:
    status, out = create(http, connector(backend_roles=[]))  # an empty list is not a request for access control
    assert status == 200, out
    doc = get(http, out["connector_id"])
    assert "access" not in doc and "backend_roles" not in doc
    _, out = http.request("PUT", f"{ML}/connectors/{out['connector_id']}", {"access_mode": "private"})
    assert_error(out, 400, "illegal_argument_exception", DISABLED)


def test_modes_recorded_and_returned(http: RawHttp, access_control: None) -> None:
    status, out = create(http, connector())
    assert status == 200, out
    assert get(http, out["connector_id"])["access"] == "private"  # ML Commons' default with access control

    status, out = create(http, connector(access_mode="public"))
    assert status == 200 and get(http, out["connector_id"])["access"] == "public"

    status, out = create(http, connector(backend_roles=["ml_team", "search"]))
    assert status == 200, out
    restricted = out["connector_id"]
    doc = get(http, restricted)
    assert doc["access"] == "restricted" and doc["backend_roles"] == ["ml_team", "search"]
    assert "access_mode" not in doc and "add_all_backend_roles" not in doc and "credential" not in doc

    query = {"query": {"bool": {"filter": [{"term": {"access": "restricted"}}, {"term": {"_id": restricted}}]}}}
    status, found = http.request("POST", f"{ML}/connectors/_search", query)
    assert status == 200 and found["hits"]["total"]["value"] == 1, found
    source = found["hits"]["hits"][0]["_source"]
    assert source["backend_roles"] == ["ml_team", "search"] and "credential" not in source


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"access_mode": "public", "backend_roles": ["a"]}, "You can specify backend roles only for a connector with"),
        (
            {"access_mode": "private", "add_all_backend_roles": True},
            "You can specify backend roles only for a connector",
        ),
        ({"access_mode": "restricted"}, "You must specify at least one backend role or make the connector public/priv"),
        (
            {"backend_roles": ["a"], "add_all_backend_roles": True},
            "You can't specify backend roles and add all backend",
        ),
        ({"add_all_backend_roles": True}, "You must have at least one backend role to create a connector."),
        ({"access_mode": "shared"}, "Wrong access value"),
    ],
)
def test_invalid_access_fields(http: RawHttp, access_control: None, fields: dict[str, Any], message: str) -> None:
    _, out = create(http, connector(**fields))
    assert_error(out, 400, "illegal_argument_exception", message)


def test_update_changes_access(http: RawHttp, access_control: None) -> None:
    status, out = create(http, connector(backend_roles=["ml_team"]))
    assert status == 200, out
    connector_id = out["connector_id"]
    url = f"{ML}/connectors/{connector_id}"

    status, out = http.request("PUT", url, {"backend_roles": ["ml_team", "ops"], "description": "new"})
    assert status == 200 and out["result"] == "updated", out
    doc = get(http, connector_id)
    assert doc["access"] == "restricted" and doc["backend_roles"] == ["ml_team", "ops"] and doc["description"] == "new"

    _, out = http.request("PUT", url, {"access_mode": "public", "backend_roles": ["x"]})
    assert_error(out, 400, "illegal_argument_exception", "You can specify backend roles only for a connector with")
    assert get(http, connector_id)["backend_roles"] == ["ml_team", "ops"]  # a rejected update changes nothing

    status, out = http.request("PUT", url, {"access_mode": "public"})
    assert status == 200, out
    doc = get(http, connector_id)
    assert doc["access"] == "public" and "backend_roles" not in doc

    status, out = http.request("PUT", url, {"name": "renamed"})  # an update without access fields keeps them
    assert status == 200 and get(http, connector_id)["access"] == "public"
