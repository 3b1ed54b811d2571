"""Dynamic batching: concurrent predict calls to one model are merged into larger batches on one worker thread.

Callers block on their own future; the worker takes the oldest request, adds every compatible request that arrives
within `max_wait_ms` until `max_batch_size` texts are gathered, runs one predict, and hands each caller its slice.
Requests are compatible when they ask the same thing of each text (same query_text, target_response, parameters),
so a cross-encoder call is only merged with calls for the same query. One worker per model keeps the model's
intra-op threads from competing with a second copy of themselves."""

from __future__ import annotations

import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from mlsearch.errors import StatusError
from mlsearch.ml.predictor import PredictInput, Predictor, Tensor


@dataclass(slots=True)
class _Request:
    inputs: PredictInput
    key: Any
    future: Future[list[list[Tensor]]] = field(default_factory=Future)

    @property
    def size(self) -> int:
        return len(self.inputs.text_docs)


@dataclass(frozen=True, slots=True)
class BatchStats:
    requests: int
    batches: int
    texts: int


class DynamicBatcher:
    """A Predictor that batches concurrent calls to an inner Predictor. Thread-safe; `close()` drains and stops."""

    def __init__(
        self,
        predictor: Predictor,
        *,
        max_batch_size: int = 32,
        max_wait_ms: float = 2.0,
        name: str = "model",
        close_inner: bool = True,
    ) -> None:
        self.function_name = predictor.function_name
        self._inner = predictor
        self._max_batch = max(1, max_batch_size)
        self._max_wait = max(0.0, max_wait_ms) / 1000.0
        self._close_inner = close_inner
        self._queue: deque[_Request] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._requests = self._batches = self._texts = 0
        self._worker = threading.Thread(target=self._run, name=f"predict-{name}", daemon=True)
        self._worker.start()

    def predict(self, inputs: PredictInput) -> list[list[Tensor]]:
        if not inputs.text_docs:
            return []
        request = _Request(inputs, _compat_key(inputs))
        with self._cond:
            if self._closed:
                raise StatusError("Model is being undeployed; predict request rejected.", status=503)
            self._queue.append(request)
            self._cond.notify()
        return request.future.result()

    def close(self) -> None:
        """Stop accepting calls, finish the ones already queued, stop the worker, then close the inner predictor."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
        self._worker.join()
        if self._close_inner:
            self._inner.close()

    def stats(self) -> BatchStats:
        with self._cond:
            return BatchStats(self._requests, self._batches, self._texts)

    # -- worker ----------------------------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            self._execute(batch)

    def _next_batch(self) -> list[_Request] | None:
        with self._cond:
            while not self._queue:
                if self._closed:
                    return None
                self._cond.wait()
            first = self._queue.popleft()
            batch, size = [first], first.size
            deadline = time.monotonic() + self._max_wait
            while size < self._max_batch:
                size += self._take_compatible(first.key, batch, self._max_batch - size)
                if size >= self._max_batch or self._closed:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            return batch

    def _take_compatible(self, key: Any, batch: list[_Request], room: int) -> int:
        """Move queued requests with `key` that fit in `room` texts into `batch`; others keep their place."""
        taken = 0
        kept: deque[_Request] = deque()
        while self._queue:
            request = self._queue.popleft()
            if request.key == key and request.size <= room - taken:
                batch.append(request)
                taken += request.size
            else:
                kept.append(request)
        self._queue = kept
        return taken

    def _execute(self, batch: list[_Request]) -> None:
        with self._cond:
            self._requests += len(batch)
            self._batches += 1
            self._texts += sum(r.size for r in batch)
        if len(batch) == 1:
            self._deliver(batch[0])
            return
        first = batch[0].inputs
        merged = PredictInput(
            text_docs=[doc for r in batch for doc in r.inputs.text_docs],
            query_text=first.query_text,
            target_response=first.target_response,
            parameters=first.parameters,
        )
        try:
            results = self._inner.predict(merged)
        except BaseException:
            # One bad request must not fail its neighbours: run each alone so the error reaches its own caller.
            for request in batch:
                self._deliver(request)
            return
        start = 0
        for request in batch:
            request.future.set_result(results[start : start + request.size])
            start += request.size

    def _deliver(self, request: _Request) -> None:
        try:
            request.future.set_result(self._inner.predict(request.inputs))
        except BaseException as exc:
            request.future.set_exception(exc)


def _compat_key(inputs: PredictInput) -> Any:
    target = tuple(inputs.target_response) if inputs.target_response is not None else None
    try:
        params = tuple(sorted((k, repr(v)) for k, v in inputs.parameters.items()))
    except TypeError:
        params = id(inputs)  # unorderable parameters: never merged
    return (inputs.query_text, target, params)
