"""Connector request building (spec §3.4), JSONPath and the built-in pre/post functions."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from mlsearch.errors import IllegalArgumentError
from mlsearch.ml.connectors import functions, jsonpath, templates
from mlsearch.ml.predictor import PredictInput


def test_escape_json_like_apache() -> None:
    assert templates.escape_json('a "b" \\ / \n\té') == 'a \\"b\\" \\\\ \\/ \\n\\t\\u00E9'


def test_normalise_escapes_strings_keeps_containers() -> None:
    out = templates.normalise({"s": 'he said "hi"', "n": 7, "l": ["a", "b"], "o": {"k": 1}, "raw": '"q"'}, ["raw"])
    assert out == {"s": 'he said \\"hi\\"', "n": "7", "l": '["a","b"]', "o": '{"k":1}', "raw": '"q"'}


def test_substitute_defaults_null_and_tostring() -> None:
    template = '{"a": "${parameters.a}", "b": ${parameters.b:-3}, "c": "${parameters.c:-null}", "d": "${parameters.d.toString()}"}'
    body = templates.substitute(template, {"a": "x", "d": 'q"q'})
    assert orjson.loads(body) == {"a": "x", "b": 3, "c": None, "d": 'q"q'}


def test_payload_checks() -> None:
    with pytest.raises(IllegalArgumentError, match="Some parameter placeholder not filled in payload: x, y"):
        templates.build_payload('{"a": ${parameters.x}, "b": "${parameters.y}"}', {})
    assert templates.build_payload('{"a": ${parameters.x}}', {"x": "1", "skip_validating_missing_parameters": "true"})
    with pytest.raises(IllegalArgumentError, match="Invalid payload"):
        templates.build_payload('{"a": ${parameters.x}', {"x": "1"})
    ndjson = templates.build_payload('{"a": 1}\n{"b": ${parameters.x}}', {"x": "2"})
    assert ndjson is not None and ndjson.endswith('{"b": 2}')
    assert templates.build_payload(None, {"http_body": "{}"}) == "{}"


def test_credentials_only_where_asked() -> None:
    assert templates.substitute_credentials("Bearer ${credential.k}", {"k": "s3"}) == "Bearer s3"


def test_jsonpath() -> None:
    doc = {"data": [{"embedding": [1, 2]}, {"embedding": [3, 4]}], "content": [{"text": "hi"}]}
    assert jsonpath.read(doc, "$.data[*].embedding") == [[1, 2], [3, 4]]
    assert jsonpath.read(doc, "$.content[0].text") == "hi"
    assert jsonpath.read(doc, "$..text") == ["hi"]
    assert jsonpath.read([[1], [2]], "$[*]") == [[1], [2]]
    assert jsonpath.read(doc, "$['data'][1].embedding") == [3, 4]
    with pytest.raises(IllegalArgumentError):
        jsonpath.read(doc, "data")


def test_pre_process_builtins() -> None:
    docs = PredictInput(text_docs=["a", "b"], query_text="q")
    assert functions.PRE["connector.pre_process.openai.embedding"](docs) == {"input": ["a", "b"]}
    assert functions.PRE["connector.pre_process.cohere.embedding"](docs) == {"texts": ["a", "b"]}
    assert functions.PRE["connector.pre_process.bedrock.embedding"](docs) == {"inputText": "a"}
    assert functions.PRE["connector.pre_process.cohere.rerank"](docs) == {
        "query": "q",
        "documents": ["a", "b"],
        "top_n": 2,
    }
    bedrock = functions.PRE["connector.pre_process.bedrock.rerank"](docs)
    assert bedrock["numberOfResults"] == 2 and bedrock["queries"][0]["textQuery"]["text"] == "q"


def test_post_process_builtins() -> None:
    tensors = functions.run_post("connector.post_process.openai.embedding", {"data": [{"embedding": [0.5, 1]}]}, None)
    assert tensors[0].name == "sentence_embedding" and tensors[0].data.dtype == np.float32
    int8 = functions.run_post(
        "connector.post_process.cohere_v2.embedding.int8", {"embeddings": {"int8": [[1, -2]]}}, None
    )
    assert int8[0].data.dtype == np.int8
    ranked = functions.run_post(
        "connector.post_process.cohere.rerank",
        {"results": [{"index": 1, "relevance_score": 0.9}, {"index": 0, "relevance_score": 0.1}]},
        None,
    )
    assert [float(t.data[0]) for t in ranked] == pytest.approx([0.1, 0.9])
    with pytest.raises(IllegalArgumentError, match="non-empty List containing Float values"):
        functions.run_post("connector.post_process.bedrock.embedding", {"embedding": []}, None)
    with pytest.raises(IllegalArgumentError, match="index and relevance_score"):
        functions.run_post("connector.post_process.cohere.rerank", {"results": [{"score": 1}]}, None)


def test_raw_and_mapped_output() -> None:
    assert functions.raw_output({"a": 1}, None)[0].data_as_map == {"a": 1}
    assert functions.raw_output({"a": {"b": "x"}}, "$.a.b")[0].data_as_map == {"response": "x"}
    mapped = functions.mapped_output({"v": [[1, 2], [3, 4]], "m": "x"}, {"sentence_embedding": "$.v", "meta": "$.m"})
    assert [t.name for t in mapped] == ["sentence_embedding", "sentence_embedding", "meta"]
