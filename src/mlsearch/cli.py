"""Command line: `mlsearch serve --host H --port P --data-dir D`, `mlsearch model export DIR --format F --out Z`."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from types import FrameType

import uvicorn

from mlsearch.app import build_app, build_node
from mlsearch.config import Settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mlsearch", description="A search engine with ML built in.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the server")
    serve.add_argument("--host", help="address to bind (env MLSEARCH_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port, 0 picks a free one (env MLSEARCH_PORT, default 9200)")
    serve.add_argument("--data-dir", help="where data lives (env MLSEARCH_DATA_DIR, default ./data)")
    serve.add_argument("--log-level", help="debug, info, warning or error")
    _add_model_commands(sub)
    args = parser.parse_args(argv)
    if args.command == "model":
        return export_command(args)
    if args.command == "serve":
        return serve_forever(
            Settings.load(
                {"host": args.host, "port": args.port, "data_dir": args.data_dir, "log_level": args.log_level}
            )
        )
    return 2


def _add_model_commands(sub: argparse._SubParsersAction) -> None:
    model = sub.add_parser("model", help="model artefacts")
    model_sub = model.add_subparsers(dest="model_command", required=True)
    export = model_sub.add_parser(
        "export", help="write an OpenSearch-compatible model zip (model file, tokenizer.json, config.json)"
    )
    export.add_argument("src", metavar="HF_MODEL_DIR", help="a Hugging Face / sentence-transformers model directory")
    export.add_argument("--format", type=str.lower, choices=["onnx", "torch_script"], default="onnx")
    export.add_argument("--out", required=True, metavar="FILE.zip")
    export.add_argument("--name", help="model file name inside the zip (default: the directory name)")
    export.add_argument("--pooling-mode", help="mean, mean_sqrt_len, max, weightedmean, cls or lasttoken")
    export.add_argument("--normalize", action=argparse.BooleanOptionalAction, default=None, help="L2-normalise")
    export.add_argument("--max-length", type=int, help="truncation length (default: the model's max_seq_length)")
    export.add_argument(
        "--quantize", choices=["int8"], help="ONNX only: dynamic int8 weights (faster; embeddings cosine ~0.99)"
    )


def export_command(args: argparse.Namespace) -> int:
    """`mlsearch model export`: convert, then print the hash, size and a `_register` body for the zip."""
    from mlsearch.errors import MLSearchError
    from mlsearch.ml.export import export_model

    try:
        result = export_model(
            args.src,
            args.format,
            args.out,
            name=args.name,
            pooling_mode=args.pooling_mode,
            normalize=args.normalize,
            max_length=args.max_length,
            quantize=args.quantize,
        )
    except MLSearchError as exc:
        print(f"mlsearch model export: {exc.reason}", file=sys.stderr)
        return 2
    print(f"wrote {result.path} ({result.size} bytes)")
    print(f"model_content_hash_value: {result.sha256}")
    print("suggested body for POST /_plugins/_ml/models/_register:")
    print(json.dumps(result.register_body(), indent=2))
    return 0


def serve_forever(settings: Settings) -> int:
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets whose proto says TCP, and without it every
    # response waited ~40 ms for the client's delayed ACK (Nagle).
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((settings.host, settings.port))
    sock.listen(2048)  # listening before the port is printed, so a reader can connect at once
    port = sock.getsockname()[1]
    # Tests and scripts read this line to learn a port chosen with --port 0.
    print(f"mlsearch listening on http://{settings.host}:{port}", flush=True)
    node = build_node(settings)
    config = uvicorn.Config(build_app(node), log_level=settings.log_level, access_log=False, lifespan="on")
    server = _Server(config, on_stop=node.stopping)
    server.run(sockets=[sock])  # uvicorn's loop factory: uvloop when installed (asyncio.run never uses it)
    return 0


class _Server(uvicorn.Server):
    """uvicorn's server, but a SIGTERM / SIGINT ends the process with status 0 once shutdown completed, and first
    tells the node (`on_stop`) so that requests waiting on remote calls end before uvicorn drains them."""

    def __init__(self, config: uvicorn.Config, on_stop: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_stop = on_stop
        self._stop_started = False

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if not self._stop_started:
            self._stop_started = True
            # A thread, not the signal handler itself: cancelling takes locks the interrupted code may hold.
            threading.Thread(target=self._on_stop, name="stopping", daemon=True).start()
        super().handle_exit(sig, frame)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # uvicorn re-raises the captured signal after a graceful shutdown, which makes the exit status
        # look like a crash to supervisors and CI; the shutdown (lifespan: indices committed and closed)
        # has already run, so exiting normally is the truthful answer.
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


if __name__ == "__main__":
    sys.exit(main())
