"""Train / predict / train_predict / execute of ML Commons' classic algorithms, over the real server.

The KMEANS and execute requests are those of opensearch-api-specification `tests/plugins/ml/ml/{train,predict,
train_predict,execute}.yaml`, sent as written. Trained models are ordinary model records (get / search / delete through
`/_plugins/_ml/models`), async training is a task of the tasks API, and the ML stats count the classic APIs.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from opensearchpy import OpenSearch

from tests.conftest import RawHttp, ServerProcess, assert_error

BOOKS = [
    {"pages": 320, "price": 24.99, "sales_first_month": 15000, "average_rating": 4.5, "publication_year": 2022},
    {"pages": 450, "price": 29.99, "sales_first_month": 45000, "average_rating": 4.8, "publication_year": 2022},
    {"pages": 280, "price": 19.99, "sales_first_month": 8000, "average_rating": 3.9, "publication_year": 2022},
    {"pages": 380, "price": 27.99, "sales_first_month": 25000, "average_rating": 4.2, "publication_year": 2022},
]
BOOKS_K1 = [{**{k: v for k, v in b.items() if k != "price"}, "k1": b["price"]} for b in BOOKS]
KMEANS_PARAMS = {"centroids": 3, "iterations": 10, "distance_type": "COSINE"}
BOOKS_QUERY = {"_source": ["average_rating", "price", "sales_first_month"], "size": 10000}


def _bulk(client: OpenSearch, index: str, docs: list[dict]) -> None:
    lines = []
    for doc in docs:
        lines += [{"index": {"_index": index}}, doc]
    client.bulk(body=lines)
    client.indices.refresh(index=index)


@pytest.fixture
def books(client: OpenSearch) -> Iterator[str]:
    client.indices.delete(index="books_data", ignore_unavailable=True)
    _bulk(client, "books_data", BOOKS)
    yield "books_data"
    client.indices.delete(index="books_data", ignore_unavailable=True)


def _frame(names: list[str], rows: list[list[float]]) -> dict:
    return {
        "column_metas": [{"name": n, "column_type": "DOUBLE"} for n in names],
        "rows": [{"values": [{"column_type": "DOUBLE", "value": v} for v in row]} for row in rows],
    }


def _train(http: RawHttp, algorithm: str, body: dict) -> str:
    status, response = http.request("POST", f"/_plugins/_ml/_train/{algorithm}", body)
    assert status == 200, response
    assert response["status"] == "COMPLETED"
    assert len(response["model_id"]) == 20
    return response["model_id"]


def test_train_then_predict_spec_stories(books: str, http: RawHttp, client: OpenSearch) -> None:
    body = {"parameters": KMEANS_PARAMS, "input_query": BOOKS_QUERY, "input_index": [books]}
    model_id = _train(http, "KMEANS", body)
    status, response = http.request(
        "POST", f"/_plugins/_ml/_predict/KMEANS/{model_id}", {"input_query": BOOKS_QUERY, "input_index": [books]}
    )
    assert status == 200, response
    assert response["status"] == "COMPLETED"
    result = response["prediction_result"]
    assert result["column_metas"] == [{"name": "ClusterID", "column_type": "INTEGER"}]
    assert len(result["rows"]) == 4
    for row in result["rows"]:
        [cell] = row["values"]
        assert cell["column_type"] == "INTEGER" and 0 <= cell["value"] < 3
    record = client.get(index=".plugins-ml-model", id=model_id)["_source"]
    assert record["algorithm"] == "KMEANS" and record["model_state"] == "TRAINED"


def test_train_predict_spec_story_with_query_and_inline_frame(client: OpenSearch, http: RawHttp) -> None:
    client.indices.delete(index="books_data", ignore_unavailable=True)
    _bulk(client, "books_data", BOOKS_K1)
    try:
        query = {"query": {"bool": {"filter": [{"range": {"k1": {"gte": 15.99, "lte": 25.99}}}]}}, "size": 10}
        status, response = http.request(
            "POST",
            "/_plugins/_ml/_train_predict/KMEANS",
            {"parameters": KMEANS_PARAMS, "input_query": query, "input_index": ["books_data"]},
        )
        assert status == 200, response
        assert response["status"] == "COMPLETED"
        assert len(response["prediction_result"]["rows"]) == 2  # k1 24.99 and 19.99
    finally:
        client.indices.delete(index="books_data", ignore_unavailable=True)
    inline = _frame(["k1", "average_rating"], [[24.99, 29.99], [4.5, 4.8]])
    status, response = http.request(
        "POST", "/_plugins/_ml/_train_predict/kmeans", {"parameters": KMEANS_PARAMS, "input_data": inline}
    )
    assert status == 200, response
    assert response["status"] == "COMPLETED"
    assert [r["values"][0]["column_type"] for r in response["prediction_result"]["rows"]] == ["INTEGER"] * 2


def test_kmeans_train_predict_separates_blobs(http: RawHttp) -> None:
    rows = [[x + dx, y + dy] for x, y in ((0, 0), (10, 10)) for dx, dy in ((0, 0), (0.1, 0), (0, 0.1))]
    status, response = http.request(
        "POST",
        "/_plugins/_ml/_train_predict/KMEANS",
        {"parameters": {"centroids": 2}, "input_data": _frame(["a", "b"], rows)},
    )
    assert status == 200, response
    labels = [r["values"][0]["value"] for r in response["prediction_result"]["rows"]]
    assert len(set(labels[:3])) == 1 and len(set(labels[3:])) == 1 and labels[0] != labels[3]


def test_execute_spec_stories(client: OpenSearch, http: RawHttp) -> None:
    status, response = http.request(
        "POST", "/_plugins/_ml/_execute/local_sample_calculator", {"operation": "max", "input_data": [1, 2, 3]}
    )
    assert (status, response) == (200, {"result": 3.0})
    client.indices.delete(index="test-index", ignore_unavailable=True)
    client.indices.create(
        index="test-index",
        body={
            "mappings": {
                "properties": {
                    "timestamp": {"type": "date"},
                    "attribute": {"type": "keyword"},
                    "value": {"type": "float"},
                }
            }
        },
    )
    try:
        status, response = http.request(
            "POST",
            "/_plugins/_ml/_execute/anomaly_localization",
            {
                "index_name": "test-index",
                "attribute_field_names": ["attribute"],
                "aggregations": [{"max": {"max": {"field": "value"}}}],
                "time_field_name": "timestamp",
                "start_time": 1620630000000,
                "end_time": 1620975600000,
                "min_time_interval": 86400000,
                "num_outputs": 10,
            },
        )
        assert status == 200, response
        assert response["results"][0]["name"] == "max"
    finally:
        client.indices.delete(index="test-index", ignore_unavailable=True)


def test_linear_regression_train_and_predict(http: RawHttp) -> None:
    rows = [[x, 2.0 * x + 1.0] for x in (0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0)]
    params = {"target": "y", "optimiser": "ADAM", "learning_rate": 0.1, "epochs": 200}
    model_id = _train(http, "linear_regression", {"parameters": params, "input_data": _frame(["x", "y"], rows)})
    status, response = http.request(
        "POST", f"/_plugins/_ml/_predict/LINEAR_REGRESSION/{model_id}", {"input_data": _frame(["x"], [[4.0]])}
    )
    assert status == 200, response
    assert response["prediction_result"]["column_metas"] == [{"name": "y", "column_type": "DOUBLE"}]
    assert response["prediction_result"]["rows"][0]["values"][0]["value"] == pytest.approx(9.0, abs=0.2)


def _wait_task(http: RawHttp, task_id: str, timeout: float = 30.0) -> dict:
    """The task once COMPLETED or FAILED, polled through `GET /_plugins/_ml/tasks/{id}`."""
    deadline = time.monotonic() + timeout
    task: dict = {}
    while time.monotonic() < deadline:
        status, task = http.request("GET", f"/_plugins/_ml/tasks/{task_id}")
        assert status == 200, task
        if task.get("state") in ("COMPLETED", "FAILED"):
            return task
        time.sleep(0.05)
    raise AssertionError(f"task {task_id} did not finish: {task}")


def test_async_train_completes_through_a_task(http: RawHttp) -> None:
    rows = [[0.0, 0.0], [0.1, 0.1], [5.0, 5.0], [5.1, 5.1]]
    status, response = http.request(
        "POST",
        "/_plugins/_ml/_train/kmeans?async=true",
        {"parameters": {"centroids": 2}, "input_data": _frame(["a", "b"], rows)},
    )
    assert status == 200, response
    assert response["status"] == "CREATED"
    task_id = response["task_id"]
    task = _wait_task(http, task_id)
    assert task["state"] == "COMPLETED", task
    assert task["task_type"] == "TRAINING" and task["function_name"] == "KMEANS"
    assert task["input_type"] == "DATA_FRAME" and task["is_async"] is True
    assert len(task["worker_node"]) == 1 and task["last_update_time"] >= task["create_time"]
    status, found = http.request(
        "POST",
        "/_plugins/_ml/tasks/_search",
        {
            "query": {
                "bool": {"filter": [{"term": {"task_type": "TRAINING"}}, {"term": {"model_id": task["model_id"]}}]}
            }
        },
    )
    assert status == 200, found
    assert [h["_id"] for h in found["hits"]["hits"]] == [task_id]
    status, model = http.request("GET", f"/_plugins/_ml/models/{task['model_id']}")
    assert status == 200 and model["model_state"] == "TRAINED", model
    status, response = http.request(
        "POST", f"/_plugins/_ml/_predict/kmeans/{task['model_id']}", {"input_data": _frame(["a", "b"], [[0.0, 0.05]])}
    )
    assert status == 200, response


def test_async_train_failure_is_a_failed_task(http: RawHttp) -> None:
    strings = {
        "column_metas": [{"name": "s", "column_type": "STRING"}],
        "rows": [{"values": [{"column_type": "STRING", "value": "x"}]}],
    }
    status, response = http.request("POST", "/_plugins/_ml/_train/KMEANS?async=true", {"input_data": strings})
    assert status == 200 and response["status"] == "CREATED", response
    task = _wait_task(http, response["task_id"])
    assert task["state"] == "FAILED" and task["task_type"] == "TRAINING", task
    assert "STRING" in task["error"] and "model_id" not in task
    _, body = http.request("POST", "/_plugins/_ml/_train/KMEANS?async=true", {"parameters": {"distance_type": "X"}})
    assert_error(body, 400, "illegal_argument_exception", "distance_type")


def test_trained_model_is_an_ordinary_model_record(http: RawHttp) -> None:
    frame = _frame(["a", "b"], [[0.0, 0.0], [0.1, 0.0], [9.0, 9.0], [9.1, 9.0]])
    model_id = _train(http, "KMEANS", {"parameters": {"centroids": 2, "seed": 7}, "input_data": frame})
    status, model = http.request("GET", f"/_plugins/_ml/models/{model_id}")
    assert status == 200, model
    assert (model["name"], model["algorithm"], model["model_version"], model["model_state"]) == (
        "KMEANS",
        "KMEANS",
        "1",
        "TRAINED",
    )
    assert "model_group_id" not in model and "model_content" not in model  # no group; content only when asked for
    assert isinstance(model["created_time"], int) and model["last_updated_time"] >= model["created_time"]
    status, full = http.request("GET", f"/_plugins/_ml/models/{model_id}?return_content=true")
    assert status == 200
    content = json.loads(full["model_content"])
    assert content["parameters"]["centroids"] == 2 and content["state"]

    status, found = http.request(
        "POST",
        "/_plugins/_ml/models/_search",
        {
            "query": {
                "bool": {"filter": [{"term": {"algorithm": {"value": "KMEANS"}}}, {"ids": {"values": [model_id]}}]}
            }
        },
    )
    assert status == 200, found
    [hit] = found["hits"]["hits"]
    assert hit["_index"] == ".plugins-ml-model" and hit["_id"] == model_id
    assert hit["_source"]["model_state"] == "TRAINED" and "model_content" not in hit["_source"]

    # The model-centric predict API finds the algorithm in the record.
    status, by_model = http.request("POST", f"/_plugins/_ml/models/{model_id}/_predict", {"input_data": frame})
    assert status == 200, by_model
    _, by_algorithm = http.request("POST", f"/_plugins/_ml/_predict/kmeans/{model_id}", {"input_data": frame})
    assert by_model["prediction_result"] == by_algorithm["prediction_result"]
    _, body = http.request("POST", f"/_plugins/_ml/models/{model_id}/_deploy")
    assert_error(body, 400, "illegal_argument_exception", "trained KMEANS model")
    _, model = http.request("GET", f"/_plugins/_ml/models/{model_id}")
    assert model["model_state"] == "TRAINED"


def test_deleted_trained_model_cannot_predict(http: RawHttp) -> None:
    frame = _frame(["a", "b"], [[0.0, 0.0], [1.0, 1.0]])
    model_id = _train(http, "KMEANS", {"parameters": {"centroids": 2}, "input_data": frame})
    status, deleted = http.request("DELETE", f"/_plugins/_ml/models/{model_id}")
    assert status == 200, deleted
    assert (deleted["_index"], deleted["_id"], deleted["result"]) == (".plugins-ml-model", model_id, "deleted")
    _, body = http.request("POST", f"/_plugins/_ml/_predict/KMEANS/{model_id}", {"input_data": frame})
    assert_error(body, 404, "status_exception", "Failed to find model")
    _, body = http.request("GET", f"/_plugins/_ml/models/{model_id}")
    assert_error(body, 404, "status_exception", "Failed to find model")
    _, body = http.request("DELETE", f"/_plugins/_ml/models/{model_id}")
    assert_error(body, 404, "status_exception", "Failed to find model")


def _node_stats(http: RawHttp) -> dict:
    status, body = http.request("GET", "/_plugins/_ml/stats")
    assert status == 200, body
    [node] = body["nodes"].values()
    return node


def _action_count(node: dict, algorithm: str, action: str, counter: str = "ml_action_request_count") -> int:
    return int(node.get("algorithms", {}).get(algorithm, {}).get(action, {}).get(counter, 0))


def test_stats_count_classic_requests(http: RawHttp) -> None:
    frame = _frame(["a", "b"], [[0.0, 0.0], [0.1, 0.0], [9.0, 9.0], [9.1, 9.0]])
    before = _node_stats(http)
    model_id = _train(http, "kmeans", {"parameters": {"centroids": 2}, "input_data": frame})
    for _ in range(2):
        status, _body = http.request("POST", f"/_plugins/_ml/_predict/KMEANS/{model_id}", {"input_data": frame})
        assert status == 200
    status, _body = http.request(
        "POST", f"/_plugins/_ml/_predict/KMEANS/{model_id}", {"input_data": _frame(["a"], [[0.0]])}
    )
    assert status == 400
    status, _body = http.request(
        "POST", "/_plugins/_ml/_train_predict/KMEANS", {"parameters": {"centroids": 2}, "input_data": frame}
    )
    assert status == 200
    status, _body = http.request(
        "POST", "/_plugins/_ml/_execute/local_sample_calculator", {"operation": "sum", "input_data": [1, 2]}
    )
    assert status == 200
    after = _node_stats(http)
    assert _action_count(after, "kmeans", "train") - _action_count(before, "kmeans", "train") == 1
    assert _action_count(after, "kmeans", "predict") - _action_count(before, "kmeans", "predict") == 3
    failures = _action_count(after, "kmeans", "predict", "ml_action_failure_count")
    assert failures - _action_count(before, "kmeans", "predict", "ml_action_failure_count") == 1
    assert _action_count(after, "kmeans", "train_predict") - _action_count(before, "kmeans", "train_predict") == 1
    executed = _action_count(after, "local_sample_calculator", "execute")
    assert executed - _action_count(before, "local_sample_calculator", "execute") == 1
    assert after["ml_request_count"] - before["ml_request_count"] == 6
    assert after["ml_failure_count"] - before["ml_failure_count"] == 1
    assert after["models"][model_id]["predict"]["ml_action_request_count"] == 3
    assert after["ml_executing_task_count"] == 0  # every request above has finished
    status, only = http.request("GET", "/_plugins/_ml/stats/ml_model_count")
    assert status == 200 and only["ml_model_count"] >= 1, only


def test_errors(http: RawHttp) -> None:
    frame = _frame(["a", "b"], [[0.0, 0.0], [1.0, 1.0]])
    _, body = http.request("POST", "/_plugins/_ml/_train/NOT_AN_ALGO", {"input_data": frame})
    assert_error(body, 400, "illegal_argument_exception", "Wrong function name")
    model_id = _train(http, "KMEANS", {"parameters": {"centroids": 2}, "input_data": frame})
    _, body = http.request("POST", f"/_plugins/_ml/_predict/LINEAR_REGRESSION/{model_id}", {"input_data": frame})
    assert_error(body, 400, "illegal_argument_exception", "KMEANS")
    _, body = http.request("POST", f"/_plugins/_ml/_predict/KMEANS/{model_id}", {"input_data": _frame(["a"], [[0.0]])})
    assert_error(body, 400, "illegal_argument_exception", "[b]")
    _, body = http.request("POST", "/_plugins/_ml/_predict/KMEANS/nosuchmodel00000000", {"input_data": frame})
    assert_error(body, 404, "status_exception", "Failed to find model")
    strings = {
        "column_metas": [{"name": "s", "column_type": "STRING"}],
        "rows": [{"values": [{"column_type": "STRING", "value": "x"}]}],
    }
    _, body = http.request("POST", "/_plugins/_ml/_train/KMEANS", {"input_data": strings})
    assert_error(body, 400, "illegal_argument_exception", "STRING")
    empty = {"column_metas": [{"name": "a", "column_type": "DOUBLE"}], "rows": []}
    _, body = http.request("POST", "/_plugins/_ml/_train/KMEANS", {"input_data": empty})
    assert_error(body, 400, "illegal_argument_exception", "empty")
    _, body = http.request("POST", "/_plugins/_ml/_train/KMEANS", {"parameters": {"distance_type": "HAMMING"}})
    assert_error(body, 400, "illegal_argument_exception", "distance_type")
    _, body = http.request("POST", "/_plugins/_ml/_train/LOCAL_SAMPLE_CALCULATOR", {"input_data": frame})
    assert_error(body, 400, "illegal_argument_exception", "train")


def test_trained_model_survives_restart(tmp_path_factory: pytest.TempPathFactory) -> None:
    data = tmp_path_factory.mktemp("ml-restart")
    frame = _frame(["a", "b"], [[0.0, 0.0], [0.1, 0.0], [9.0, 9.0], [9.1, 9.0]])
    first = ServerProcess(data).start()
    try:
        http = RawHttp(first.url)
        model_id = _train(http, "KMEANS", {"parameters": {"centroids": 2}, "input_data": frame})
        _, before = http.request("POST", f"/_plugins/_ml/_predict/KMEANS/{model_id}", {"input_data": frame})
    finally:
        first.stop()
    second = ServerProcess(data).start()
    try:
        status, after = RawHttp(second.url).request(
            "POST", f"/_plugins/_ml/_predict/KMEANS/{model_id}", {"input_data": frame}
        )
    finally:
        second.stop()
    assert status == 200, after
    assert after["prediction_result"] == before["prediction_result"]


def test_rcf_over_http(http: RawHttp) -> None:
    rows = [[float(i % 7), float(i % 5)] for i in range(120)] + [[60.0, -40.0]]
    body = {"parameters": {"number_of_trees": 10, "sample_size": 64}, "input_data": _frame(["a", "b"], rows)}
    model_id = _train(http, "batch_rcf", body)
    status, response = http.request(
        "POST", f"/_plugins/_ml/_predict/BATCH_RCF/{model_id}", {"input_data": _frame(["a", "b"], rows)}
    )
    assert status == 200, response
    result = response["prediction_result"]
    assert [m["name"] for m in result["column_metas"]] == ["score", "anomalous"]
    assert result["rows"][-1]["values"][1] == {"column_type": "BOOLEAN", "value": True}
    series = {
        "column_metas": [{"name": "timestamp", "column_type": "LONG"}, {"name": "v", "column_type": "DOUBLE"}],
        "rows": [
            {"values": [{"column_type": "LONG", "value": i * 60_000}, {"column_type": "DOUBLE", "value": float(i % 4)}]}
            for i in range(80)
        ],
    }
    params = {"number_of_trees": 5, "shingle_size": 2, "output_after": 16}
    status, response = http.request(
        "POST", "/_plugins/_ml/_train_predict/FIT_RCF", {"parameters": params, "input_data": series}
    )
    assert status == 200, response
    assert [m["name"] for m in response["prediction_result"]["column_metas"]] == ["timestamp", "score", "anomaly_grade"]
    assert len(response["prediction_result"]["rows"]) == 80
