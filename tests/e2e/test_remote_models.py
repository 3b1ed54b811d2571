"""A remote embedding model under a 429 storm: concurrent predicts all succeed, every text embedded, none lost."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from tests.api.ml_support import trusted_fixture  # noqa: F401
from tests.api.test_connectors import ML, cleanup, openai_embedding, predict, provider, register  # noqa: F401
from tests.conftest import RawHttp
from tests.providers import Provider, vector


def test_429_storm_slows_but_loses_nothing(http: RawHttp, provider: Provider) -> None:  # noqa: F811
    provider.fail_rate = 0.4
    provider.retry_after = "0.01"
    config = {"retry_backoff_policy": "exponential_full_jitter", "retry_backoff_millis": 10, "max_connection": 4}
    model_id = register(http, connector=openai_embedding(provider.url, client_config=config))
    batches = [[f"doc {b} {i}" for i in range(5)] for b in range(24)]
    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(lambda texts: predict(http, model_id, {"text_docs": texts}), batches))
    assert all(status == 200 for status, _ in answers), [a for a in answers if a[0] != 200][:1]
    for texts, (_, out) in zip(batches, answers, strict=True):
        tensors = out["inference_results"][0]["output"]
        assert len(tensors) == len(texts)
        assert tensors[-1]["data"][0] == vector(texts[-1])[0]
    assert len(provider.requests) > len(batches)  # the provider did throttle, and retries absorbed it
    cleanup(http, model_id)
