"""The dynamic batcher: concurrent calls merge into batches, each caller gets its own rows, errors stay with their owner."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from mlsearch.errors import IllegalArgumentError, StatusError
from mlsearch.ml.batching import DynamicBatcher
from mlsearch.ml.predictor import PredictInput, Tensor


class FakePredictor:
    """Embeds a text as [len(text)]; fails on the text "boom"; can hold its first call until released."""

    function_name = "TEXT_EMBEDDING"

    def __init__(self, hold_first: bool = False) -> None:
        self.calls: list[list[str]] = []
        self.closed = False
        self.entered = threading.Event()
        self.release = threading.Event()
        if not hold_first:
            self.release.set()
        self._lock = threading.Lock()

    def predict(self, inputs: PredictInput) -> list[list[Tensor]]:
        with self._lock:
            self.calls.append(list(inputs.text_docs))
        self.entered.set()
        assert self.release.wait(10)
        if "boom" in inputs.text_docs:
            raise IllegalArgumentError("boom is not a text")
        suffix = inputs.query_text or ""
        return [
            [Tensor("sentence_embedding", data=np.array([len(t + suffix)], dtype=np.float32))] for t in inputs.text_docs
        ]

    def close(self) -> None:
        self.closed = True


def _value(result: list[list[Tensor]]) -> list[float]:
    return [float(tensors[0].data[0]) for tensors in result]


def test_concurrent_calls_are_merged_and_each_caller_gets_its_rows() -> None:
    fake = FakePredictor(hold_first=True)
    batcher = DynamicBatcher(fake, max_batch_size=64, max_wait_ms=50)
    with ThreadPoolExecutor(max_workers=12) as pool:
        first = pool.submit(batcher.predict, PredictInput(text_docs=["a"]))
        assert fake.entered.wait(5)  # the worker is busy with the first call: the others queue up behind it
        texts = [["x" * (i + 1), "y" * (i + 2)] for i in range(10)]
        futures = [pool.submit(batcher.predict, PredictInput(text_docs=t)) for t in texts]
        fake.release.set()
        results = [f.result(timeout=10) for f in futures]
        assert _value(first.result(timeout=10)) == [1.0]
    for t, result in zip(texts, results, strict=True):
        assert _value(result) == [len(t[0]), len(t[1])]
    assert len(fake.calls) < 11  # the ten queued calls ran in fewer than ten batches
    stats = batcher.stats()
    assert stats.requests == 11 and stats.texts == 21 and stats.batches == len(fake.calls)
    batcher.close()
    assert fake.closed


def test_batches_respect_max_batch_size() -> None:
    fake = FakePredictor(hold_first=True)
    batcher = DynamicBatcher(fake, max_batch_size=4, max_wait_ms=20)
    with ThreadPoolExecutor(max_workers=10) as pool:
        pool.submit(batcher.predict, PredictInput(text_docs=["a"]))
        assert fake.entered.wait(5)
        futures = [pool.submit(batcher.predict, PredictInput(text_docs=[str(i)])) for i in range(9)]
        fake.release.set()
        for f in futures:
            f.result(timeout=10)
    assert max(len(c) for c in fake.calls) <= 4
    assert sum(len(c) for c in fake.calls) == 10
    batcher.close()


def test_an_error_reaches_only_its_caller() -> None:
    fake = FakePredictor(hold_first=True)
    batcher = DynamicBatcher(fake, max_batch_size=32, max_wait_ms=50)
    with ThreadPoolExecutor(max_workers=4) as pool:
        pool.submit(batcher.predict, PredictInput(text_docs=["warm"]))
        assert fake.entered.wait(5)
        good = pool.submit(batcher.predict, PredictInput(text_docs=["abc"]))
        bad = pool.submit(batcher.predict, PredictInput(text_docs=["boom"]))
        also_good = pool.submit(batcher.predict, PredictInput(text_docs=["de"]))
        fake.release.set()
        assert _value(good.result(timeout=10)) == [3.0]
        assert _value(also_good.result(timeout=10)) == [2.0]
        with pytest.raises(IllegalArgumentError, match="boom"):
            bad.result(timeout=10)
    batcher.close()


def test_requests_with_different_queries_are_not_merged() -> None:
    fake = FakePredictor(hold_first=True)
    batcher = DynamicBatcher(fake, max_batch_size=32, max_wait_ms=50)
    with ThreadPoolExecutor(max_workers=4) as pool:
        pool.submit(batcher.predict, PredictInput(text_docs=["warm"]))
        assert fake.entered.wait(5)
        q1 = pool.submit(batcher.predict, PredictInput(text_docs=["a"], query_text="qq"))
        q2 = pool.submit(batcher.predict, PredictInput(text_docs=["a"], query_text="qqqq"))
        fake.release.set()
        assert _value(q1.result(timeout=10)) == [3.0]
        assert _value(q2.result(timeout=10)) == [5.0]
    assert all(len(c) == 1 for c in fake.calls)
    batcher.close()


def test_close_drains_queue_then_rejects_new_calls() -> None:
    fake = FakePredictor(hold_first=True)
    batcher = DynamicBatcher(fake, max_batch_size=1, max_wait_ms=0)
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(batcher.predict, PredictInput(text_docs=["t" * n])) for n in (1, 2, 3)]
        assert fake.entered.wait(5)
        deadline = time.monotonic() + 5
        while len(batcher._queue) < 2 and time.monotonic() < deadline:  # the other two calls are queued
            time.sleep(0.001)
        closer = threading.Thread(target=batcher.close)
        closer.start()
        fake.release.set()
        closer.join(10)
        assert not closer.is_alive()
        assert sorted(_value(f.result(timeout=10))[0] for f in futures) == [1.0, 2.0, 3.0]
    with pytest.raises(StatusError):
        batcher.predict(PredictInput(text_docs=["late"]))
    assert fake.closed
    batcher.close()  # idempotent


def test_empty_input_returns_empty_without_work() -> None:
    fake = FakePredictor()
    batcher = DynamicBatcher(fake)
    assert batcher.predict(PredictInput(text_docs=[])) == []
    assert fake.calls == []
    batcher.close()
