"""Classic algorithms against known answers, their JSON state round trips, and data-frame errors."""

from __future__ import annotations

import random

import numpy as np
import orjson
import pytest

from mlsearch.errors import IllegalArgumentError
from mlsearch.ml.algorithms import algorithms
from mlsearch.ml.algorithms._forest import Forest, RandomCutTree, batch_forest, batch_samples
from mlsearch.ml.algorithms.frame import Frame, frame_from_sources, parse_frame


def _make(name: str, params: dict | None = None):
    return algorithms.get(name).factory(params)


def _numeric_frame(names: list[str], x: np.ndarray) -> Frame:
    return Frame(tuple(names), ("DOUBLE",) * len(names), tuple(tuple(c) for c in x.T.tolist()))


def _blobs(centres: list[tuple[float, ...]], n: int = 60, spread: float = 0.2, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.vstack([rng.normal(c, spread, (n, len(c))) for c in centres])


def _pure(labels: np.ndarray, n: int, k: int) -> bool:
    """Each block of n rows is one cluster and the k blocks are k different clusters."""
    blocks = [set(labels[i * n : (i + 1) * n].tolist()) for i in range(k)]
    return all(len(b) == 1 for b in blocks) and len(set().union(*blocks)) == k


@pytest.mark.parametrize("distance", ["EUCLIDEAN", "COSINE", "L1"])
def test_kmeans_recovers_blobs_deterministically(distance: str) -> None:
    # Blobs apart in direction as well as position, so that cosine similarity separates them too.
    x = _blobs([(10, 0), (0, 10), (-10, -10)], spread=0.5)
    params = {"centroids": 3, "iterations": 20, "distance_type": distance, "seed": 7}
    first = _make("kmeans", params).fit_array(x).predict_array(x)
    second = _make("KMeans", params).fit_array(x).predict_array(x)
    assert _pure(first, 60, 3)
    assert np.array_equal(first, second)


@pytest.mark.parametrize("distance", ["COSINE", "L1"])
def test_kmeans_centroids_are_the_mean_of_their_raw_rows_whatever_the_distance(distance: str) -> None:
    # As in ML Commons (Tribuo): the distance assigns rows, the centroid is the plain mean. The far row in each
    # cluster pulls the mean away from the median, and the rows' different lengths move it off the mean direction.
    x = np.array([[10.0, 1.0], [11.0, 1.0], [14.0, 1.5], [1.0, 10.0], [1.0, 12.0], [1.5, 16.0]])
    assert not np.allclose(x[:3].mean(axis=0), np.median(x[:3], axis=0))
    model = _make("KMEANS", {"centroids": 2, "iterations": 10, "distance_type": distance, "seed": 3}).fit_array(x)
    labels = model.predict_array(x)
    assert _pure(labels, 3, 2)
    assert model.cluster_centers is not None
    for label in (labels[0], labels[3]):
        np.testing.assert_allclose(model.cluster_centers[label], x[labels == label].mean(axis=0))


def test_kmeans_state_round_trip_and_more_centroids_than_rows() -> None:
    x = _blobs([(0, 0), (5, 5)], n=10)
    model = _make("KMEANS", {"centroids": 2}).fit(_numeric_frame(["a", "b"], x))
    restored = _make("KMEANS", {"centroids": 2})
    restored.load_state(orjson.loads(orjson.dumps(model.state())))
    frame = _numeric_frame(["a", "b"], x)
    assert restored.predict(frame) == model.predict(frame)
    tiny = _make("KMEANS", {"centroids": 3, "distance_type": "COSINE"}).fit(
        _numeric_frame(["a"], np.array([[1.0], [2.0]]))
    )
    assert len(tiny.predict(_numeric_frame(["a"], np.array([[1.0], [2.0]])))["rows"]) == 2


@pytest.mark.parametrize("optimiser", ["SIMPLE_SGD", "ADA_GRAD", "ADAM", "RMS_PROP", "LINEAR_DECAY_SGD"])
def test_linear_regression_recovers_coefficients(optimiser: str) -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(400, 3))
    y = x @ np.array([2.0, -1.0, 0.5]) + 3.0
    lr = {"SIMPLE_SGD": 0.05, "ADA_GRAD": 0.5, "ADAM": 0.05, "RMS_PROP": 0.01, "LINEAR_DECAY_SGD": 0.5}[optimiser]
    model = _make(
        "LINEAR_REGRESSION", {"target": "y", "optimiser": optimiser, "learning_rate": lr, "epochs": 30, "batch_size": 4}
    )
    model.fit_array(x, y)
    tolerance = 0.3 if optimiser == "LINEAR_DECAY_SGD" else 0.05
    assert model.coef_ == pytest.approx([2.0, -1.0, 0.5], abs=tolerance)
    assert model.intercept_ == pytest.approx(3.0, abs=tolerance)


def test_linear_regression_robust_objectives_and_frames() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(300, 1))
    y = 4.0 * x[:, 0] - 2.0
    y[:5] += 200.0  # outliers pull squared loss, not the robust ones
    for objective in ("ABSOLUTE_LOSS", "HUBER"):
        model = _make(
            "LINEAR_REGRESSION",
            {
                "target": "y",
                "objective": objective,
                "optimiser": "ADAM",
                "learning_rate": 0.05,
                "epochs": 60,
                "batch_size": 8,
            },
        )
        model.fit(_numeric_frame(["x", "y"], np.column_stack([x, y])))
        assert model.coef_[0] == pytest.approx(4.0, abs=0.3)
        out = model.predict(_numeric_frame(["x"], np.array([[1.0]])))
        assert out["column_metas"] == [{"name": "y", "column_type": "DOUBLE"}]
        assert out["rows"][0]["values"][0]["value"] == pytest.approx(2.0, abs=0.4)


@pytest.mark.parametrize("objective", ["LOGMULTICLASS", "HINGE"])
def test_logistic_regression_separates_classes(objective: str) -> None:
    x = _blobs([(0, 0), (4, 4), (0, 6)], n=50, spread=0.5)
    labels = ["a"] * 50 + ["b"] * 50 + ["c"] * 50
    frame = Frame(
        ("x1", "x2", "label"),
        ("DOUBLE", "DOUBLE", "STRING"),
        (tuple(x[:, 0].tolist()), tuple(x[:, 1].tolist()), tuple(labels)),
    )
    model = _make("LOGISTIC_REGRESSION", {"target": "label", "objective": objective, "epochs": 10})
    model.fit(frame)
    out = model.predict(frame.without("label"))
    predicted = [r["values"][0]["value"] for r in out["rows"]]
    assert out["column_metas"] == [{"name": "result", "column_type": "STRING"}]
    assert np.mean(np.array(predicted) == np.array(labels)) > 0.95


def test_batch_rcf_scores_planted_anomalies_highest() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(1000, 3))
    planted = [10, 500, 900]
    x[planted] += np.array([8.0, -8.0, 8.0])
    model = _make("BATCH_RCF", {"number_of_trees": 20})
    out = model.fit(_numeric_frame(["a", "b", "c"], x)).predict(_numeric_frame(["a", "b", "c"], x))
    scores = np.array([r["values"][0]["value"] for r in out["rows"]])
    flagged = [r["values"][1]["value"] for r in out["rows"]]
    assert set(np.argsort(scores)[-3:].tolist()) == set(planted)
    assert all(flagged[i] for i in planted)
    assert np.median(scores) < 1.0
    restored = _make("BATCH_RCF", {"number_of_trees": 20})
    restored.load_state(orjson.loads(orjson.dumps(model.state())))
    again = restored.predict(_numeric_frame(["a", "b", "c"], x))
    assert [r["values"][0]["value"] for r in again["rows"]] == pytest.approx(scores.tolist())


def test_vectorised_and_per_point_rcf_scores_agree() -> None:
    x = np.random.default_rng(6).normal(size=(300, 4))
    samples = batch_samples(x, 3, 64, seed=1)
    forest = batch_forest(samples, seed=1)
    queries = np.vstack([x, samples[0]])  # unseen rows and the first tree's own (seen) points
    vectorised = forest.tree_scores(queries)
    for t in range(3):
        tree = forest.tree(t, random.Random(t))
        assert vectorised[t] == pytest.approx([tree.score_one(tuple(row)) for row in queries.tolist()])
    assert forest.score(queries) == pytest.approx(vectorised.mean(axis=0))
    grown = RandomCutTree(random.Random(2))  # a tree grown by insertion, scored through the array layout
    for row in samples[1].tolist():
        grown.insert(tuple(row))
    compiled = Forest.from_trees([grown]).tree_scores(queries)[0]
    assert compiled == pytest.approx([grown.score_one(tuple(row)) for row in queries.tolist()])


def test_compiled_forest_build_keeps_the_tree_invariants() -> None:
    """The compiled top-down builder: every cut lies in its node's box and splits it, children's boxes nest in their
    parent's and their masses add up, leaves are single (possibly repeated) points, and each tree holds its sample."""
    x = np.round(np.random.default_rng(8).normal(size=(400, 3)), 1)  # rounded: repeated points make heavy leaves
    samples = batch_samples(x, 4, 128, seed=3)
    forest = batch_forest(samples, seed=3)
    nodes = np.flatnonzero(forest.mass > 0)
    inner = nodes[forest.child[nodes] != nodes]
    leaves = nodes[forest.child[nodes] == nodes]
    kids = forest.child[inner]
    at = forest.dim[inner]
    assert (forest.lo[inner, at] <= forest.cut[inner]).all() and (forest.cut[inner] < forest.hi[inner, at]).all()
    assert (forest.hi[kids, at] <= forest.cut[inner]).all() and (forest.lo[kids + 1, at] > forest.cut[inner]).all()
    for side in (kids, kids + 1):
        assert (forest.parent[side] == inner).all() and (forest.depth[side] == forest.depth[inner] + 1).all()
        assert (forest.lo[side] >= forest.lo[inner]).all() and (forest.hi[side] <= forest.hi[inner]).all()
    assert (forest.mass[inner] == forest.mass[kids] + forest.mass[kids + 1]).all()
    assert (forest.lo[leaves] == forest.hi[leaves]).all()
    for t in range(forest.trees):
        mine = leaves[[_root(forest, leaf) == forest.roots[t] for leaf in leaves]]
        held = sorted((tuple(forest.lo[leaf]), int(forest.mass[leaf])) for leaf in mine)
        points, counts = np.unique(samples[t], axis=0, return_counts=True)
        assert held == sorted(zip(map(tuple, points.tolist()), counts.tolist(), strict=True))


def _root(forest: Forest, node: int) -> int:
    while forest.parent[node] >= 0:
        node = int(forest.parent[node])
    return node


def test_compiled_forest_scores_check_their_rows() -> None:
    forest = batch_forest(batch_samples(np.random.default_rng(9).normal(size=(200, 2)), 3, 32, seed=1), seed=1)
    with pytest.raises(ValueError, match="rows of 2 values"):
        forest.score(np.zeros((5, 3)))  # the compiled loop would read past each row
    scores = forest.score(np.array([[0.0, np.nan], [0.0, 0.0], [50.0, 50.0]]))
    assert np.isnan(scores[0]) and 0 < scores[1] < scores[2]


def test_top_down_and_inserted_trees_cut_alike() -> None:
    """Theorem 4 of the paper, on points 0, 1 and 3: the root cut isolates 3 with probability 2/3 whether the tree
    is cut top-down (batch) or grown by inserting the points one by one (streaming)."""
    points = [(0.0,), (1.0,), (3.0,)]
    n = 3000
    forest = Forest.build([np.array(points)] * n, np.random.default_rng(0))
    top_down = np.mean(forest.mass[forest.child[forest.roots]] == 2)
    inserted = 0
    for seed in range(n):
        tree = RandomCutTree(random.Random(seed))
        for point in random.Random(-seed).sample(points, 3):
            tree.insert(point)
        inserted += tree.root.left.mass == 2
    assert abs(top_down - 2 / 3) < 0.04
    assert abs(inserted / n - 2 / 3) < 0.04


def test_fit_rcf_grades_planted_anomalies() -> None:
    n = 400
    rng = np.random.default_rng(7)
    values = np.sin(np.arange(n) / 8.0) + rng.normal(0, 0.05, n)
    values[300] += 6.0
    frame = Frame(
        ("timestamp", "value"), ("LONG", "DOUBLE"), (tuple(range(0, n * 60_000, 60_000)), tuple(values.tolist()))
    )
    model = _make("FIT_RCF", {"number_of_trees": 10, "shingle_size": 4, "sample_size": 128})
    out = model.fit_predict(frame)
    assert [m["name"] for m in out["column_metas"]] == ["timestamp", "score", "anomaly_grade"]
    scores = np.array([r["values"][1]["value"] for r in out["rows"]])
    grades = np.array([r["values"][2]["value"] for r in out["rows"]])
    assert int(np.argmax(scores)) in range(300, 304)  # the point and the shingles holding it
    assert grades[300] > 0
    assert (grades[50:300] > 0).mean() < 0.05
    assert (scores[:35] == 0).all()  # nothing before the shingle is full and output_after points were seen


def test_fit_rcf_state_is_json_and_keeps_streaming() -> None:
    frame = Frame(
        ("ts", "v"),
        ("STRING", "DOUBLE"),
        (tuple(f"2024-01-01 00:{m:02d}:00" for m in range(60)), tuple(float(m % 5) for m in range(60))),
    )
    model = _make("FIT_RCF", {"time_field": "ts", "number_of_trees": 5, "shingle_size": 2, "output_after": 8})
    model.fit(frame)
    restored = _make("FIT_RCF", {"time_field": "ts", "number_of_trees": 5, "shingle_size": 2, "output_after": 8})
    restored.load_state(orjson.loads(orjson.dumps(model.state())))
    out = restored.predict(frame)
    assert out["rows"][0]["values"][0] == {"column_type": "LONG", "value": 1704067200000}
    assert out["rows"][0]["values"][1]["value"] > 0  # the restored forest scores at once


def test_rcf_summarize_finds_the_groups() -> None:
    x = _blobs([(0, 0), (8, 8), (0, 8)], n=40)
    for distance in ("L1", "L2", "LInfinity"):
        model = _make("RCF_SUMMARIZE", {"max_k": 3, "distance_type": distance}).fit_array(x)
        assert _pure(model.predict_array(x), 40, 3)


def test_anomaly_localization_finds_the_contributing_entity() -> None:
    day = 86_400_000
    docs = [{"ts": t * day + 1000, "attr": a, "value": 1.0} for t in range(3) for a in ("x", "y", "z")]
    docs.append({"ts": 2 * day + 5000, "attr": "y", "value": 50.0})
    seen: list = []

    def read(index, query, limit):
        seen.append((index, query, limit))
        return docs

    body = {
        "index_name": "logs",
        "attribute_field_names": ["attr"],
        "aggregations": [{"total": {"sum": {"field": "value"}}}],
        "time_field_name": "ts",
        "start_time": 0,
        "end_time": 3 * day,
        "min_time_interval": day,
        "num_outputs": 1,
    }
    out = _make("anomaly_localization").execute(body, read)
    [result] = out["results"]
    assert result["name"] == "total"
    buckets = result["result"]["buckets"]
    assert [b["overall_aggregate_value"] for b in buckets] == [3.0, 3.0, 53.0]
    assert "entities" not in buckets[0]
    assert buckets[2]["entities"] == [{"key": ["y"], "contribution_value": 50.0, "base_value": 1.0, "new_value": 51.0}]
    assert seen[0][0] == "logs"


def test_metrics_correlation_finds_correlated_metrics() -> None:
    rng = np.random.default_rng(8)
    metrics = rng.normal(0, 1, (6, 128))
    metrics[[1, 4], 60:72] += 10.0
    out = _make("METRICS_CORRELATION").execute({"metrics": metrics.tolist()}, None)
    events = out["inference_results"]
    assert any(
        e["suspected_metrics"] == [1, 4] and e["event_window"][0] <= 60 <= 72 <= e["event_window"][1] + 1
        for e in events
    )
    assert len(events[0]["event_pattern"]) == 128


@pytest.mark.parametrize(("operation", "expected"), [("max", 3.0), ("min", -1.0), ("sum", 4.5)])
def test_local_sample_calculator(operation: str, expected: float) -> None:
    calc = _make("LOCAL_SAMPLE_CALCULATOR")
    assert calc.execute({"operation": operation, "input_data": [1, 3, -1, 1.5]}, None) == {"result": expected}
    with pytest.raises(IllegalArgumentError):
        calc.execute({"operation": "median", "input_data": [1]}, None)


def test_registry_names_are_case_insensitive_and_unknown_is_wrong_function_name() -> None:
    assert algorithms.get("batch_rcf").name == "BATCH_RCF"
    with pytest.raises(IllegalArgumentError, match="Wrong function name"):
        algorithms.get("deep_thought")
    with pytest.raises(IllegalArgumentError, match="train"):
        algorithms.for_api("local_sample_calculator", "train")


def test_frames_parse_all_column_types_and_reject_bad_input() -> None:
    frame = parse_frame(
        {
            "column_metas": [
                {"name": n, "column_type": t}
                for n, t in [
                    ("s", "STRING"),
                    ("h", "SHORT"),
                    ("i", "INTEGER"),
                    ("l", "LONG"),
                    ("d", "DOUBLE"),
                    ("b", "BOOLEAN"),
                    ("f", "FLOAT"),
                    ("n", "NULL"),
                ]
            ],
            "rows": [
                {
                    "values": [
                        {"column_type": "STRING", "value": "x"},
                        {"column_type": "SHORT", "value": 1},
                        {"column_type": "INTEGER", "value": 2},
                        {"column_type": "LONG", "value": 3},
                        {"column_type": "DOUBLE", "value": 4.5},
                        {"column_type": "BOOLEAN", "value": True},
                        {"column_type": "FLOAT", "value": 1.5},
                        {"column_type": "NULL"},
                    ]
                }
            ],
        }
    )
    assert frame.numeric(["h", "i", "l", "d", "f"]).tolist() == [[1.0, 2.0, 3.0, 4.5, 1.5]]
    with pytest.raises(IllegalArgumentError, match="STRING"):
        frame.numeric(["s"])
    with pytest.raises(IllegalArgumentError, match="missing"):
        frame.numeric(["n"])
    with pytest.raises(IllegalArgumentError, match="column type"):
        parse_frame({"column_metas": [{"name": "a", "column_type": "DATE"}], "rows": []})
    with pytest.raises(IllegalArgumentError, match="values"):
        parse_frame({"column_metas": [{"name": "a", "column_type": "DOUBLE"}], "rows": [{"values": []}]})
    with pytest.raises(IllegalArgumentError, match="empty"):
        parse_frame({"column_metas": [{"name": "a", "column_type": "DOUBLE"}], "rows": []}).numeric()
    sources = frame_from_sources([{"a": 1, "b": {"c": 2.5}, "s": "x"}, {"a": 2, "b": {"c": 3}}])
    assert sources.names == ("a", "b.c", "s")
    assert sources.types == ("INTEGER", "DOUBLE", "STRING")
    with pytest.raises(IllegalArgumentError, match="missing"):
        frame_from_sources([{"a": 1}, {"b": 2}]).numeric()
