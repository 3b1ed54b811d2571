"""Ingest pipeline API and the write path, without models: CRUD and its errors, `_simulate` (plain and verbose),
the common processors, `if` / `on_failure` / `ignore_failure`, `?pipeline=` on `_doc` and `_bulk`,
`default_pipeline` / `final_pipeline` / `_none`, `_reindex` with `dest.pipeline` and `_update_by_query?pipeline=`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opensearchpy import NotFoundError, OpenSearch, RequestError

from tests.conftest import RawHttp, assert_error


@pytest.fixture
def pipelines(client: OpenSearch) -> Iterator[list[str]]:
    """Pipeline ids a test creates; deleted afterwards."""
    made: list[str] = []
    yield made
    for pipeline_id in made:
        client.ingest.delete_pipeline(id=pipeline_id, ignore=[404])


def _put(client: OpenSearch, made: list[str], pipeline_id: str, *processors: dict[str, Any], **extra: Any) -> None:
    assert client.ingest.put_pipeline(id=pipeline_id, body={"processors": list(processors), **extra}) == {
        "acknowledged": True
    }
    made.append(pipeline_id)


def _simulate(client: OpenSearch, processors: list[dict[str, Any]], *sources: dict[str, Any]) -> list[Any]:
    body = {
        "pipeline": {"processors": processors},
        "docs": [{"_index": "i", "_id": str(n), "_source": s} for n, s in enumerate(sources)],
    }
    return client.ingest.simulate(body=body)["docs"]


def _one(client: OpenSearch, processor: dict[str, Any], source: dict[str, Any]) -> Any:
    [doc] = _simulate(client, [processor], source)
    return doc["doc"]["_source"] if "doc" in doc else doc


# ---- CRUD ------------------------------------------------------------------------------------------------------


def test_put_get_delete_round_trip(client: OpenSearch, pipelines: list[str]) -> None:
    body = {"description": "An NLP ingest pipeline", "processors": [{"set": {"field": "a", "value": 1}}]}
    assert client.ingest.put_pipeline(id="crud-one", body=body) == {"acknowledged": True}
    pipelines.append("crud-one")
    _put(client, pipelines, "crud-two", {"lowercase": {"field": "x"}})
    assert client.ingest.get_pipeline(id="crud-one") == {"crud-one": body}
    assert set(client.ingest.get_pipeline(id="crud-*")) == {"crud-one", "crud-two"}
    assert set(client.ingest.get_pipeline(id="crud-one,crud-two")) == {"crud-one", "crud-two"}
    assert {"crud-one", "crud-two"} <= set(client.ingest.get_pipeline())
    assert client.ingest.delete_pipeline(id="crud-*") == {"acknowledged": True}
    with pytest.raises(NotFoundError):
        client.ingest.get_pipeline(id="crud-one")


def test_get_unknown_is_404_empty_and_delete_unknown_is_404(http: RawHttp) -> None:
    assert http.request("GET", "/_ingest/pipeline/nope-nope") == (404, {})
    _, body = http.request("DELETE", "/_ingest/pipeline/nope-nope")
    assert_error(body, 404, "resource_not_found_exception", "pipeline [nope-nope] is missing")


@pytest.mark.parametrize(
    ("body", "reason", "header"),
    [
        ({"processors": [{"nope": {}}]}, "No processor type exists with name [nope]", {"processor_type": "nope"}),
        (
            {"processors": [{"set": {"value": 1}}]},
            "[field] required property is missing",
            {"processor_type": "set", "property_name": "field"},
        ),
        (
            {"processors": [{"set": {"field": "a", "value": 1, "bogus": 2}}]},
            "processor [set] doesn't support one or more provided configuration parameters [bogus]",
            {"processor_type": "set"},
        ),
        ({"description": "x"}, "[processors] required property is missing", {"property_name": "processors"}),
        (
            {"processors": [{"text_embedding": {"model_id": "m"}}]},
            "[field_map] required property is missing",
            {"processor_type": "text_embedding", "property_name": "field_map"},
        ),
        (
            {"processors": [{"set": {"field": "a", "value": 1, "on_failure": []}}]},
            "[on_failure] processors list is empty",
            {"processor_type": "set"},
        ),
        (
            {"processors": [{"sparse_encoding": {"model_id": "m", "field_map": {"a": "b"}, "prune_type": "top_k"}}]},
            "[prune_ratio] prune ratio must be provided",
            {"processor_type": "sparse_encoding"},
        ),
    ],
)
def test_put_validates_configuration(http: RawHttp, body: dict[str, Any], reason: str, header: dict[str, str]) -> None:
    _, resp = http.request("PUT", "/_ingest/pipeline/bad", body)
    assert_error(resp, 400, "parse_exception", reason)
    assert header.items() <= resp["error"].get("header", {}).items(), resp  # type: ignore[index]
    assert http.request("GET", "/_ingest/pipeline/bad")[0] == 404  # nothing stored


def test_unsupported_condition_is_refused_at_put(http: RawHttp) -> None:
    _, resp = http.request(
        "PUT", "/_ingest/pipeline/bad", {"processors": [{"set": {"field": "a", "value": 1, "if": "Math.max(1)"}}]}
    )
    assert_error(resp, 400, "script_exception", "unknown variable [Math]")


# ---- simulate --------------------------------------------------------------------------------------------------


def test_simulate_inline_and_stored(client: OpenSearch, pipelines: list[str]) -> None:
    _put(client, pipelines, "sim-stored", {"uppercase": {"field": "name"}})
    docs = [{"_index": "idx", "_id": "7", "_source": {"name": "ann"}}]
    out = client.ingest.simulate(id="sim-stored", body={"docs": docs})["docs"]
    doc = out[0]["doc"]
    assert (doc["_index"], doc["_id"], doc["_source"]) == ("idx", "7", {"name": "ANN"})
    assert doc["_ingest"]["timestamp"].endswith("Z") and "pipeline" not in doc["_ingest"]
    inline = client.ingest.simulate(
        body={"pipeline": {"processors": [{"trim": {"field": "name"}}]}, "docs": [{"_source": {"name": " x "}}]}
    )
    assert inline["docs"][0]["doc"]["_source"] == {"name": "x"}


def test_simulate_verbose_reports_each_processor(client: OpenSearch) -> None:
    processors = [
        {"set": {"field": "a", "value": "one", "tag": "first"}},
        {"set": {"field": "b", "value": 2, "if": "ctx.a == 'two'"}},
        {"fail": {"message": "boom {{a}}", "ignore_failure": True}},
        {"rename": {"field": "a", "target_field": "c"}},
    ]
    body = {"pipeline": {"processors": processors}, "docs": [{"_index": "i", "_id": "1", "_source": {}}]}
    [doc] = client.ingest.simulate(body=body, params={"verbose": "true"})["docs"]
    results = doc["processor_results"]
    assert [(r["processor_type"], r["status"]) for r in results] == [
        ("set", "success"),
        ("set", "skipped"),
        ("fail", "error_ignored"),
        ("rename", "success"),
    ]
    assert results[0]["tag"] == "first" and results[0]["doc"]["_source"] == {"a": "one"}
    assert results[0]["doc"]["_ingest"]["pipeline"] == "_simulate_pipeline"
    assert results[1]["if"] == {"condition": "ctx.a == 'two'", "result": False}
    assert results[2]["ignored_error"]["error"]["type"] == "fail_processor_exception"
    assert results[2]["ignored_error"]["error"]["reason"] == "boom one"
    assert results[3]["doc"]["_source"] == {"c": "one"}


def test_simulate_reports_errors_and_drops(client: OpenSearch) -> None:
    out = _simulate(
        client, [{"drop": {"if": "ctx.kind == 'junk'"}}, {"fail": {"message": "no"}}], {"kind": "junk"}, {"kind": "ok"}
    )
    assert out[0] is None
    assert out[1]["error"]["type"] == "fail_processor_exception" and out[1]["error"]["reason"] == "no"


def test_simulate_requires_docs(http: RawHttp) -> None:
    _, body = http.request("POST", "/_ingest/pipeline/_simulate", {"pipeline": {"processors": []}})
    assert_error(body, 400, "parse_exception", "[docs] required property is missing")


# ---- processors ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("processor", "source", "expected"),
    [
        (
            {"set": {"field": "greeting", "value": "hi {{name}} at {{{where.city}}}"}},
            {"name": "ann", "where": {"city": "Oslo"}},
            {"name": "ann", "where": {"city": "Oslo"}, "greeting": "hi ann at Oslo"},
        ),
        ({"set": {"field": "a", "value": 2, "override": False}}, {"a": 1}, {"a": 1}),
        ({"set": {"field": "x.y", "copy_from": "a"}}, {"a": [1]}, {"a": [1], "x": {"y": [1]}}),
        ({"remove": {"field": ["a", "b"], "ignore_missing": True}}, {"a": 1, "c": 3}, {"c": 3}),
        ({"rename": {"field": "a.b", "target_field": "c"}}, {"a": {"b": 1}}, {"a": {}, "c": 1}),
        (
            {"append": {"field": "tags", "value": ["x", "{{k}}"]}},
            {"tags": "a", "k": "z"},
            {"tags": ["a", "x", "z"], "k": "z"},
        ),
        ({"append": {"field": "tags", "value": "a", "allow_duplicates": False}}, {"tags": ["a"]}, {"tags": ["a"]}),
        ({"lowercase": {"field": "s"}}, {"s": "AbC"}, {"s": "abc"}),
        ({"uppercase": {"field": "s", "target_field": "t"}}, {"s": ["a", "b"]}, {"s": ["a", "b"], "t": ["A", "B"]}),
        ({"trim": {"field": "s"}}, {"s": "  a b "}, {"s": "a b"}),
        ({"split": {"field": "s", "separator": "\\s*,\\s*"}}, {"s": "a , b,c,,"}, {"s": ["a", "b", "c"]}),
        ({"join": {"field": "s", "separator": "-"}}, {"s": ["a", "b", 3]}, {"s": "a-b-3"}),
        ({"convert": {"field": "n", "type": "integer"}}, {"n": "42"}, {"n": 42}),
        ({"convert": {"field": "n", "type": "float"}}, {"n": ["1.5", "2"]}, {"n": [1.5, 2.0]}),
        ({"convert": {"field": "b", "type": "boolean"}}, {"b": "TRUE"}, {"b": True}),
        ({"convert": {"field": "n", "type": "auto"}}, {"n": "7"}, {"n": 7}),
        ({"convert": {"field": "n", "type": "string"}}, {"n": 7}, {"n": "7"}),
        ({"json": {"field": "j"}}, {"j": '{"a": [1, 2]}'}, {"j": {"a": [1, 2]}}),
        ({"json": {"field": "j", "add_to_root": True}}, {"j": '{"k": 1}'}, {"j": '{"k": 1}', "k": 1}),
        (
            {"date": {"field": "d", "formats": ["dd/MM/yyyy"]}},
            {"d": "25/12/2023"},
            {"d": "25/12/2023", "@timestamp": "2023-12-25T00:00:00.000Z"},
        ),
        (
            {"date": {"field": "d", "formats": ["UNIX_MS"], "target_field": "t"}},
            {"d": 1700000000000},
            {"d": 1700000000000, "t": "2023-11-14T22:13:20.000Z"},
        ),
        ({"copy": {"source_field": "a", "target_field": "b"}}, {"a": {"x": 1}}, {"a": {"x": 1}, "b": {"x": 1}}),
        ({"copy": {"source_field": "a", "target_field": "b", "remove_source": True}}, {"a": 1}, {"b": 1}),
        (
            {"foreach": {"field": "xs", "processor": {"uppercase": {"field": "_ingest._value"}}}},
            {"xs": ["a", "b"]},
            {"xs": ["A", "B"]},
        ),
        (
            {"text_chunking": {"field_map": {"t": "c"}, "algorithm": {"delimiter": {"delimiter": "."}}}},
            {"t": "a. b. c"},
            {"t": "a. b. c", "c": ["a.", " b.", " c"]},
        ),
    ],
)
def test_common_processors(
    client: OpenSearch, processor: dict[str, Any], source: dict[str, Any], expected: Any
) -> None:
    assert _one(client, processor, source) == expected


@pytest.mark.parametrize(
    ("processor", "source", "error_type", "reason"),
    [
        (
            {"rename": {"field": "a", "target_field": "b"}},
            {"a": 1, "b": 2},
            "illegal_argument_exception",
            "field [b] already exists",
        ),
        (
            {"lowercase": {"field": "a"}},
            {"a": 1},
            "illegal_argument_exception",
            "field [a] of type [java.lang.Integer] cannot be cast to [java.lang.String]",
        ),
        (
            {"convert": {"field": "a", "type": "integer"}},
            {"a": "x"},
            "illegal_argument_exception",
            "unable to convert [x] to integer",
        ),
        ({"remove": {"field": "zz"}}, {}, "illegal_argument_exception", "field [zz] not present as part of path [zz]"),
        (
            {"copy": {"source_field": "a", "target_field": "b"}},
            {"a": 1, "b": 1},
            "illegal_argument_exception",
            "target field [b] already exists",
        ),
        ({"fail": {"message": "bad {{a}}"}}, {"a": "doc"}, "fail_processor_exception", "bad doc"),
    ],
)
def test_processor_errors(
    client: OpenSearch, processor: dict[str, Any], source: dict[str, Any], error_type: str, reason: str
) -> None:
    error = _one(client, processor, source)["error"]
    assert (error["type"], error["reason"]) == (error_type, reason)
    assert error["header"]["processor_type"] == next(iter(processor))


@pytest.mark.parametrize(
    ("condition", "applies"),
    [
        ("ctx.a != null", True),
        ("ctx.missing != null", False),
        ("ctx.a == 'x' && ctx.n > 2", True),
        ("ctx.a == 'y' || ctx.n >= 4", False),
        ("!ctx.containsKey('missing')", True),
        ("ctx.obj?.inner?.deep == null", True),
        ("ctx['obj']['k'].startsWith('v') && ctx.tags.contains('t')", True),
        ("ctx.a.toUpperCase() == 'X' && ctx.tags.size() == 1 && !ctx.tags.isEmpty()", True),
    ],
)
def test_if_conditions(client: OpenSearch, condition: str, applies: bool) -> None:
    source = {"a": "x", "n": 3, "obj": {"k": "v1"}, "tags": ["t"]}
    out = _one(client, {"set": {"field": "hit", "value": True, "if": condition}}, source)
    assert ("hit" in out) is applies


def test_on_failure_at_processor_and_pipeline_level(client: OpenSearch) -> None:
    step = {
        "rename": {
            "field": "missing",
            "target_field": "x",
            "tag": "r1",
            "on_failure": [
                {
                    "set": {
                        "field": "why",
                        "value": "{{_ingest.on_failure_message}} by "
                        "{{_ingest.on_failure_processor_type}}/"
                        "{{_ingest.on_failure_processor_tag}}",
                    }
                }
            ],
        }
    }
    after = {"set": {"field": "after", "value": 1}}
    out = _simulate(client, [step, after], {})[0]["doc"]
    assert out["_source"] == {"why": "field [missing] doesn't exist by rename/r1", "after": 1}
    assert "on_failure_message" not in out["_ingest"]
    body = {
        "pipeline": {
            "processors": [{"fail": {"message": "stop"}}, after],
            "on_failure": [{"set": {"field": "failed", "value": "{{_ingest.on_failure_message}}"}}],
        },
        "docs": [{"_source": {}}],
    }
    [doc] = client.ingest.simulate(body=body)["docs"]
    assert doc["doc"]["_source"] == {"failed": "stop"}  # the pipeline stops; later processors do not run


# ---- the write path --------------------------------------------------------------------------------------------


def test_pipeline_param_on_doc_create_and_bulk(client: OpenSearch, index_name: str, pipelines: list[str]) -> None:
    _put(client, pipelines, "wp-upper", {"uppercase": {"field": "s"}}, {"set": {"field": "via", "value": "{{_id}}"}})
    client.index(index=index_name, id="1", body={"s": "a"}, params={"pipeline": "wp-upper"})
    client.create(index=index_name, id="2", body={"s": "b"}, params={"pipeline": "wp-upper"})
    bulk = (
        f'{{"index": {{"_index": "{index_name}", "_id": "3", "pipeline": "wp-upper"}}}}\n{{"s": "c"}}\n'
        f'{{"index": {{"_index": "{index_name}", "_id": "4"}}}}\n{{"s": "d"}}\n'
    )
    assert not client.bulk(body=bulk, params={"refresh": "true"})["errors"]
    got = {d["_id"]: d["_source"] for d in client.mget(index=index_name, body={"ids": ["1", "2", "3", "4"]})["docs"]}
    assert got == {
        "1": {"s": "A", "via": "1"},
        "2": {"s": "B", "via": "2"},
        "3": {"s": "C", "via": "3"},
        "4": {"s": "d"},
    }
    client.bulk(
        body=f'{{"index": {{"_index": "{index_name}", "_id": "5"}}}}\n{{"s": "e"}}\n', params={"pipeline": "wp-upper"}
    )
    assert client.get(index=index_name, id="5")["_source"]["s"] == "E"


def test_missing_pipeline_is_refused(client: OpenSearch, http: RawHttp, index_name: str) -> None:
    _, body = http.request("PUT", f"/{index_name}/_doc/1?pipeline=ghost", {"a": 1})
    assert_error(body, 400, "illegal_argument_exception", "pipeline with id [ghost] does not exist")
    out = client.bulk(body=f'{{"index": {{"_index": "{index_name}", "_id": "1", "pipeline": "ghost"}}}}\n{{"a": 1}}\n')
    item = out["items"][0]["index"]
    assert out["errors"] and item["status"] == 400
    assert item["error"]["reason"] == "pipeline with id [ghost] does not exist"


def test_bulk_failure_and_drop_are_per_item(client: OpenSearch, index_name: str, pipelines: list[str]) -> None:
    _put(
        client,
        pipelines,
        "wp-picky",
        {"drop": {"if": "ctx.kind == 'junk'"}},
        {"convert": {"field": "n", "type": "integer"}},
    )
    lines = []
    for i, src in enumerate([{"n": "1"}, {"n": "x"}, {"kind": "junk", "n": "3"}, {"n": "4"}]):
        lines.append(f'{{"index": {{"_index": "{index_name}", "_id": "{i}"}}}}')
        lines.append(__import__("json").dumps(src))
    out = client.bulk(body="\n".join(lines) + "\n", params={"pipeline": "wp-picky", "refresh": "true"})
    items = [i["index"] for i in out["items"]]
    assert out["errors"] is True
    assert [i["status"] for i in items] == [201, 400, 200, 201]
    assert items[1]["error"]["type"] == "illegal_argument_exception"
    assert items[1]["error"]["reason"] == "unable to convert [x] to integer"
    assert items[2]["result"] == "noop"
    assert client.count(index=index_name)["count"] == 2
    assert client.get(index=index_name, id="3")["_source"] == {"n": 4}


def test_default_and_final_pipelines_and_none(client: OpenSearch, index_name: str, pipelines: list[str]) -> None:
    _put(client, pipelines, "wp-default", {"set": {"field": "d", "value": 1}})
    _put(client, pipelines, "wp-final", {"set": {"field": "f", "value": "{{d}}"}})
    _put(client, pipelines, "wp-other", {"set": {"field": "o", "value": 1}})
    client.indices.create(
        index=index_name, body={"settings": {"default_pipeline": "wp-default", "index.final_pipeline": "wp-final"}}
    )
    client.index(index=index_name, id="1", body={})
    client.index(index=index_name, id="2", body={}, params={"pipeline": "wp-other"})
    client.index(index=index_name, id="3", body={}, params={"pipeline": "_none"})
    got = {d["_id"]: d["_source"] for d in client.mget(index=index_name, body={"ids": ["1", "2", "3"]})["docs"]}
    assert got == {"1": {"d": 1, "f": "1"}, "2": {"o": 1, "f": ""}, "3": {"f": ""}}
    client.indices.put_settings(index=index_name, body={"index.default_pipeline": "ghost"})
    with pytest.raises(RequestError) as err:
        client.index(index=index_name, id="4", body={})
    assert err.value.info["error"]["reason"] == "pipeline with id [ghost] does not exist"


def test_reindex_dest_pipeline_and_update_by_query(client: OpenSearch, index_name: str, pipelines: list[str]) -> None:
    _put(client, pipelines, "wp-stamp", {"set": {"field": "stamped", "value": "{{_index}}"}})
    source, dest = index_name, index_name + "-dest"
    client.indices.delete(index=dest, ignore_unavailable=True)
    try:
        client.bulk(
            body="".join(f'{{"index": {{"_index": "{source}", "_id": "{i}"}}}}\n{{"n": {i}}}\n' for i in range(3)),
            params={"refresh": "true"},
        )
        out = client.reindex(
            body={"source": {"index": source}, "dest": {"index": dest, "pipeline": "wp-stamp"}},
            params={"refresh": "true"},
        )
        assert out["created"] == 3
        assert client.get(index=dest, id="1")["_source"] == {"n": 1, "stamped": dest}
        out = client.update_by_query(index=source, params={"pipeline": "wp-stamp", "refresh": "true"})
        assert out["updated"] == 3
        assert client.get(index=source, id="2")["_source"] == {"n": 2, "stamped": source}
        with pytest.raises(RequestError):
            client.reindex(body={"source": {"index": source}, "dest": {"index": dest, "pipeline": "ghost"}})
    finally:
        client.indices.delete(index=dest, ignore_unavailable=True)


def test_pipelines_survive_a_restart(tmp_path: Any) -> None:
    from mlsearch.launcher import ServerProcess

    proc = ServerProcess(tmp_path).start()
    try:
        c = OpenSearch(hosts=[{"host": proc.host, "port": proc.port}])
        c.ingest.put_pipeline(id="kept", body={"processors": [{"set": {"field": "a", "value": 1}}]})
    finally:
        proc.stop()
    proc = ServerProcess(tmp_path).start()
    try:
        c = OpenSearch(hosts=[{"host": proc.host, "port": proc.port}])
        assert c.ingest.get_pipeline(id="kept") == {"kept": {"processors": [{"set": {"field": "a", "value": 1}}]}}
    finally:
        proc.stop()
