"""MLStats: executing jobs and request / failure counts per algorithm and model."""

from __future__ import annotations

import pytest

from mlsearch.ml.stats import MLStats


def test_executing_counts_running_jobs_and_releases_on_failure() -> None:
    stats = MLStats()
    with stats.executing():
        with stats.executing():
            assert stats.executing_count == 2
        assert stats.executing_count == 1
    with pytest.raises(ValueError), stats.executing():
        assert stats.executing_count == 1
        raise ValueError("job failed")
    assert stats.executing_count == 0


def test_record_counts_by_lower_case_algorithm_and_model() -> None:
    stats = MLStats()
    stats.record("train", "KMEANS", None, failed=False)
    stats.record("predict", "KMEANS", "m1", failed=True)
    assert (stats.request_count, stats.failure_count) == (2, 1)
    assert stats.algorithms() == {
        "kmeans": {
            "train": {"ml_action_request_count": 1},
            "predict": {"ml_action_request_count": 1, "ml_action_failure_count": 1},
        }
    }
    assert stats.models() == {"m1": {"predict": {"ml_action_request_count": 1, "ml_action_failure_count": 1}}}
