"""Whether a model fits in memory before it is deployed, with a reason that names the figures.

OpenSearch's native-memory circuit breaker answers a bare "Memory Circuit Breaker is open" that users find
misleading; here the refusal says how much the model needs, how much is available and which setting decides."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mlsearch.errors import StatusError

# A loaded ONNX / TorchScript model takes its weights plus the runtime's working buffers.
LOAD_FACTOR = 1.5
_MB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class MemoryInfo:
    total: int
    available: int


def read_meminfo(path: Path = Path("/proc/meminfo")) -> MemoryInfo | None:
    """Total and available memory in bytes, or None where /proc/meminfo cannot be read."""
    try:
        fields = dict(line.split(":", 1) for line in path.read_text().splitlines() if ":" in line)
        return MemoryInfo(_kb(fields["MemTotal"]), _kb(fields["MemAvailable"]))
    except (OSError, KeyError, ValueError):
        return None


def _kb(value: str) -> int:
    return int(value.strip().split()[0]) * 1024


def model_bytes(model_dir: Path) -> int:
    """The size of a model's files on disk (weights dominate)."""
    return sum(p.stat().st_size for p in model_dir.rglob("*") if p.is_file())


def check_fits(model_id: str, needed_files: int, memory: MemoryInfo | None, threshold_percent: float) -> None:
    """Refuse a deploy that would take used memory over `plugins.ml_commons.native_memory_threshold`."""
    if memory is None or memory.total <= 0:
        return
    needed = int(needed_files * LOAD_FACTOR)
    used_after = memory.total - memory.available + needed
    if used_after * 100.0 / memory.total <= threshold_percent:
        return
    allowed = max(0, int(memory.total * threshold_percent / 100.0) - (memory.total - memory.available))
    raise StatusError(
        f"Memory circuit breaker: deploying model {model_id} needs about {needed // _MB} MB; "
        f"{memory.available // _MB} MB of {memory.total // _MB} MB are available and "
        f"plugins.ml_commons.native_memory_threshold ({threshold_percent:g}%) allows {allowed // _MB} MB more",
        status=429,
    )
