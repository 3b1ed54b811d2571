"""`_cat/plugins`, `_cat/count`, `_cat/aliases`, `_nodes` plugins and index `_stats`."""

from __future__ import annotations

import pytest
from opensearchpy import NotFoundError, OpenSearch

from tests.conftest import RawHttp


def test_plugins_name_the_ml_search_plugins(client: OpenSearch, http: RawHttp) -> None:
    rows = client.cat.plugins(format="json")
    components = {r["component"] for r in rows}
    assert {"opensearch-knn", "opensearch-ml", "opensearch-neural-search"} <= components
    assert all(r["version"].startswith(client.info()["version"]["number"]) for r in rows)
    status, text = http.request("GET", "/_cat/plugins?v")
    assert status == 200 and text.splitlines()[0].split() == ["name", "component", "version"]
    [info] = client.nodes.info()["nodes"].values()
    assert {p["name"] for p in info["plugins"]} == components


def test_cat_count_and_index_stats(client: OpenSearch, index_name: str) -> None:
    client.indices.create(index=index_name, body={"aliases": {f"{index_name}-read": {}}})
    for i in range(3):
        client.index(index=index_name, id=str(i), body={"n": i})
    client.indices.refresh(index=index_name)
    [row] = client.cat.count(index=index_name, format="json")
    assert row["count"] == "3"
    stats = client.indices.stats(index=index_name)
    assert stats["_all"]["primaries"]["docs"]["count"] == 3
    assert stats["indices"][index_name]["primaries"]["store"]["size_in_bytes"] > 0
    client.delete(index=index_name, id="0", refresh=True)
    assert client.indices.stats(index=index_name)["indices"][index_name]["total"]["docs"]["count"] == 2
    aliases = client.cat.aliases(name=f"{index_name}-read", format="json")
    assert aliases == [
        {
            "alias": f"{index_name}-read",
            "index": index_name,
            "filter": "-",
            "routing.index": "-",
            "routing.search": "-",
            "is_write_index": "-",
        }
    ]
    with pytest.raises(NotFoundError):
        client.indices.stats(index="no-such-index")
