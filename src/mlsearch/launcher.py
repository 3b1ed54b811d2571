"""Run `mlsearch serve` as a child process on a free loopback port: for tests, benchmarks and embedding apps."""

from __future__ import annotations

import http.client
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

_LISTENING = re.compile(r"listening on http://([\d.]+):(\d+)")


@dataclass
class ServerProcess:
    """A server child process over `data_dir`; `host` and `port` are set once it printed its address."""

    data_dir: Path
    proc: subprocess.Popen[str] | None = None
    host: str = "127.0.0.1"
    port: int = 0
    env: dict[str, str] | None = None  # extra environment, e.g. MLSEARCH_* settings
    log_level: str = "warning"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 60.0) -> ServerProcess:
        env = dict(os.environ, PYTHONUNBUFFERED="1", **(self.env or {}))
        # Run the code of this checkout even when another copy of the package is installed.
        src = str(Path(__file__).resolve().parents[1])
        env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
        command = [sys.executable, "-m", "mlsearch", "serve", "--host", self.host, "--port", "0",
                   "--data-dir", str(self.data_dir), "--log-level", self.log_level]  # fmt: skip
        self.proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        deadline = time.monotonic() + timeout
        self._read_address(deadline)
        threading.Thread(target=self._pump, daemon=True).start()
        self._wait_ready(deadline)
        return self

    def _read_address(self, deadline: float) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"server exited with status {self.proc.wait()}")
            match = _LISTENING.search(line)
            if match:
                self.host, self.port = match.group(1), int(match.group(2))
                return
        raise RuntimeError("server did not print its address in time")

    def _pump(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            sys.stderr.write(f"[server] {line}")

    def _wait_ready(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=1.0)
            try:
                conn.request("GET", "/")
                if conn.getresponse().status == 200:
                    return
            except OSError:
                time.sleep(0.05)
            finally:
                conn.close()
        raise RuntimeError("server did not answer in time")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        """Send `sig` (SIGTERM: clean shutdown) and wait; returns the exit status."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
