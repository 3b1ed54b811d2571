"""RAG request latency against its parts: a plain search and one direct call to the LLM.

A local OpenAI-like LLM server (own process, answering at once) sits behind a connector; a
`retrieval_augmented_generation` pipeline runs over a small index. Prints p50 / p99 of: the plain search, one direct
LLM call (same HTTP client, same size of prompt), the RAG search without memory and with a `memory_id` (history read
+ the exchange recorded), and the RAG overhead = p50(RAG) - p50(search) - p50(LLM call), target <= 20 ms.

    PYTHONPATH=src:. python bench/rag.py [--requests 200] [--quick]"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from bench._common import Server, percentiles, quick, table

P = "plugins.ml_commons."
WORDS = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "epsilon",
    "zeta",
    "eta",
    "theta",
    "iota",
    "kappa",
    "lambda",
    "mu",
    "nu",
    "xi",
    "omicron",
    "pi",
    "rho",
    "sigma",
    "tau",
]


def _serve(port_queue: Any) -> None:
    from tests.llm_server import LlmServer

    server = LlmServer(default="An instant answer.")
    port_queue.put(server.server.server_address[1])
    server.thread.join()


def _llm_process() -> tuple[multiprocessing.Process, int]:
    queue: Any = multiprocessing.Queue()
    proc = multiprocessing.Process(target=_serve, args=(queue,), daemon=True)
    proc.start()
    return proc, int(queue.get(timeout=30))


def _docs(n: int) -> list[dict[str, Any]]:
    return [{"text": " ".join(WORDS[(i + j) % len(WORDS)] for j in range(40)) + f" doc {i}"} for i in range(n)]


def _setup(client: Any, llm_port: int) -> str:
    from tests.llm_server import openai_chat

    client.check(
        "PUT",
        "/_cluster/settings",
        {"persistent": {P + "trusted_connector_endpoints_regex": [r"^http://127\.0\.0\.1:.*$"],
                        P + "connector.private_ip_enabled": True}},
    )  # fmt: skip
    client.check("PUT", "/corpus", {"mappings": {"properties": {"text": {"type": "text"}}}})
    client.bulk("corpus", [(str(i), d) for i, d in enumerate(_docs(500))], refresh=True)
    model = client.check(
        "POST",
        "/_plugins/_ml/models/_register?deploy=true",
        {"name": "llm", "function_name": "remote", "connector": openai_chat(f"http://127.0.0.1:{llm_port}")},
    )
    rag = {"model_id": model["model_id"], "context_field_list": ["text"], "system_prompt": "Be brief"}
    client.check("PUT", "/_search/pipeline/rag", {"response_processors": [{"retrieval_augmented_generation": rag}]})
    return client.check("POST", "/_plugins/_ml/memory", {"name": "bench"})["memory_id"]


def _timed(n: int, call: Callable[[int], None]) -> list[float]:
    for i in range(10):  # warm-up: connections, searchers, the model's predictor
        call(i)
    samples = []
    for i in range(n):
        started = time.perf_counter()
        call(i)
        samples.append(time.perf_counter() - started)
    return samples


def _search_body(i: int, qa: dict[str, Any] | None = None) -> dict[str, Any]:
    question = f"{WORDS[i % len(WORDS)]} {WORDS[(i * 7) % len(WORDS)]}"
    body: dict[str, Any] = {"query": {"match": {"text": question}}, "size": 5}
    if qa is not None:
        body["ext"] = {"generative_qa_parameters": {"llm_question": question, "llm_model": "gpt-4o-mini", **qa}}
    return body


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=50 if quick() else 200)
    args = parser.parse_args()
    llm, llm_port = _llm_process()
    try:
        with tempfile.TemporaryDirectory() as tmp, Server(Path(tmp)) as server:
            client = server.client()
            memory_id = _setup(client, llm_port)
            direct = http.client.HTTPConnection("127.0.0.1", llm_port, timeout=60)
            prompt = orjson.dumps({"model": "gpt-4o-mini", "messages": [
                {"role": "user", "content": [{"type": "text", "text": " ".join(_docs(5)[0]["text"] for _ in range(5))}]}
            ]})  # fmt: skip

            def llm_call(i: int) -> None:
                direct.request(
                    "POST", "/v1/chat/completions", body=prompt, headers={"content-type": "application/json"}
                )
                response = direct.getresponse()
                assert response.status == 200 and orjson.loads(response.read())["choices"]

            def search(i: int) -> None:
                client.check("POST", "/corpus/_search", _search_body(i))

            def rag(i: int) -> None:
                out = client.check("POST", "/corpus/_search?search_pipeline=rag", _search_body(i, {"context_size": 5}))
                assert out["ext"]["retrieval_augmented_generation"]["answer"] == "An instant answer."

            def rag_memory(i: int) -> None:
                qa = {"context_size": 5, "memory_id": memory_id, "message_size": 5}
                out = client.check("POST", "/corpus/_search?search_pipeline=rag", _search_body(i, qa))
                assert out["ext"]["retrieval_augmented_generation"]["message_id"]

            n = args.requests
            results = {name: percentiles(_timed(n, fn)) for name, fn in
                       [("search", search), ("llm call", llm_call), ("rag", rag), ("rag + memory", rag_memory)]}  # fmt: skip
    finally:
        llm.terminate()
    base = results["search"][0] + results["llm call"][0]
    table(
        f"RAG latency ({n} sequential requests, LLM answering at once)",
        ["request", "p50 ms", "p99 ms", "mean ms", "p50 - (search + llm call) ms"],
        [(name, p50, p99, mean, p50 - base if name.startswith("rag") else "") for name, (p50, p99, mean) in
         results.items()],
    )  # fmt: skip
    print()
    for name in ("rag", "rag + memory"):
        overhead = results[name][0] - base
        print(f"{name} overhead p50: {overhead:.2f} ms (target <= 20 ms): {'OK' if overhead <= 20 else 'OVER'}")


if __name__ == "__main__":
    main()
