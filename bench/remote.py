"""10k texts through an embedding connector to a local OpenAI-like provider with 20 ms latency.

Reports texts/s against the ideal (max_connection / latency x batch), then the same with the provider answering 429
to 20% of requests: every text must come back embedded, none lost. The provider runs in its own process (asyncio,
raw HTTP/1.1 keep-alive, precomputed answers per batch size) so that it is not the bottleneck and does not compete with
the client for the GIL; the client is the connector's RemotePredictor, as a deployed model uses it. The baseline is bare
httpx posting prebuilt bodies over the same pool size, in the same run.

    PYTHONPATH=src:. python bench/remote.py [--texts 10000] [--batch 32] [--connections 8]"""

from __future__ import annotations

import argparse
import multiprocessing
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import numpy as np
import orjson

from mlsearch.ml.connectors.model import parse_connector
from mlsearch.ml.connectors.remote import RemoteConnector, RemotePredictor
from mlsearch.ml.predictor import PredictInput

LATENCY = 0.020
SECRET = "sk-test-secret-123"


def _serve(port_queue: Any, fail_rate: float, latency: float) -> None:
    """The bench's provider: asyncio with raw HTTP/1.1 keep-alive and precomputed answers per batch size, so the
    provider side costs microseconds per request and the measurement is of the client (tests keep their own provider)."""
    import asyncio

    asyncio.run(_provider_main(port_queue, fail_rate, latency))


async def _provider_main(port_queue: Any, fail_rate: float, latency: float) -> None:
    import asyncio
    import random

    answers: dict[int, bytes] = {}
    rng = random.Random(7)
    throttled = _http(429, b'{"error": {"message": "Rate limit reached", "type": "requests"}}')

    def answer(count: int) -> bytes:
        if count not in answers:
            data = [{"object": "embedding", "index": i, "embedding": [0.01 * (i % 97)] * 8} for i in range(count)]
            answers[count] = _http(200, orjson.dumps({"object": "list", "data": data, "model": "m"}))
        return answers[count]

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = _content_length(head)
                body = await reader.readexactly(length) if length else b""
                await asyncio.sleep(latency)
                if fail_rate and rng.random() < fail_rate:
                    writer.write(throttled)
                else:
                    writer.write(answer(len(orjson.loads(body)["input"])))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port_queue.put(server.sockets[0].getsockname()[1])
    async with server:
        await server.serve_forever()


def _http(status: int, body: bytes) -> bytes:
    reason = {200: "OK", 429: "Too Many Requests"}[status]
    extra = "Retry-After: 0\r\n" if status == 429 else ""
    head = f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
    return head.encode() + body


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            return int(line[15:])
    return 0


def _setting(name: str) -> Any:
    return {
        "plugins.ml_commons.trusted_connector_endpoints_regex": [r"^http://127\.0\.0\.1:.*$"],
        "plugins.ml_commons.connector.private_ip_enabled": True,
    }.get(name)


def _predictor(port: int, connections: int) -> RemotePredictor:
    connector = parse_connector(
        {
            "name": "bench",
            "version": "1",
            "protocol": "http",
            "parameters": {"model": "m"},
            "credential": {"key": SECRET},
            "client_config": {
                "max_connection": connections,
                "retry_backoff_policy": "exponential_full_jitter",
                "retry_backoff_millis": 20,
                "retry_timeout_seconds": 60,
            },
            "actions": [
                {
                    "action_type": "predict",
                    "method": "POST",
                    "url": f"http://127.0.0.1:{port}/v1/embeddings",
                    "headers": {"Authorization": "Bearer ${credential.key}"},
                    "request_body": '{"input": ${parameters.input}, "model": "${parameters.model}"}',
                    "pre_process_function": "connector.pre_process.openai.embedding",
                    "post_process_function": "connector.post_process.openai.embedding",
                }
            ],
        }
    )
    remote = RemoteConnector(connector, {"key": SECRET}, lambda c: c, _setting)
    return RemotePredictor(remote, None)


def _provider(fail_rate: float, latency: float = LATENCY) -> tuple[Any, int]:
    ctx = multiprocessing.get_context("spawn")
    ports = ctx.Queue()
    server = ctx.Process(target=_serve, args=(ports, fail_rate, latency), daemon=True)
    server.start()
    return server, ports.get(timeout=30)


def bare(texts: int, batch: int, connections: int) -> float:
    """Baseline: bare httpx posting prebuilt bodies over the same pool size to the same provider."""
    server, port = _provider(0.0)
    url = f"http://127.0.0.1:{port}/v1/embeddings"
    corpus = [f"text number {i} about things" for i in range(texts)]
    bodies = [orjson.dumps({"input": corpus[i : i + batch], "model": "m"}) for i in range(0, texts, batch)]
    headers = {"Authorization": f"Bearer {SECRET}", "content-type": "application/json"}
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    with httpx.Client(limits=limits) as client, ThreadPoolExecutor(max_workers=connections) as pool:
        client.post(url, content=bodies[0], headers=headers)
        started = time.perf_counter()
        list(pool.map(lambda b: orjson.loads(client.post(url, content=b, headers=headers).content), bodies))
        elapsed = time.perf_counter() - started
    server.terminate()
    return texts / elapsed


def run(fail_rate: float, texts: int, batch: int, connections: int) -> tuple[float, int]:
    server, port = _provider(fail_rate)
    predictor = _predictor(port, connections)
    corpus = [f"text number {i} about things" for i in range(texts)]
    batches = [corpus[i : i + batch] for i in range(0, texts, batch)]
    predictor.predict(PredictInput(text_docs=["warm up"]))
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=connections) as pool:
        results = list(pool.map(lambda b: predictor.predict(PredictInput(text_docs=b)), batches))
    elapsed = time.perf_counter() - started
    predictor.close()
    server.terminate()
    embedded = sum(1 for per_batch in results for tensors in per_batch if tensors and np.asarray(tensors[0].data).size)
    return texts / elapsed, embedded


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--texts", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args()
    ideal = args.connections / LATENCY * args.batch
    print(f"provider latency {LATENCY * 1000:.0f} ms, batch {args.batch}, max_connection {args.connections}")
    print(f"ideal: {ideal:,.0f} texts/s")
    baseline = bare(args.texts, args.batch, args.connections)
    print(f"{'scenario':<24}{'texts/s':>10}{'vs ideal':>10}{'vs bare':>9}{'embedded':>14}")
    print(f"{'bare httpx (baseline)':<24}{baseline:>10,.0f}{baseline / ideal:>10.2f}{1:>9.2f}{'-':>14}")
    for label, rate in (("connector", 0.0), ("connector, 20% 429s", 0.2)):
        speed, embedded = run(rate, args.texts, args.batch, args.connections)
        print(f"{label:<24}{speed:>10,.0f}{speed / ideal:>10.2f}{speed / baseline:>9.2f}{embedded:>9}/{args.texts}")


if __name__ == "__main__":
    main()
