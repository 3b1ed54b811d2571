"""The deploy-time memory check: refuses with the figures, passes when the model fits."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlsearch.errors import StatusError
from mlsearch.ml.memory_guard import MemoryInfo, check_fits, model_bytes, read_meminfo

GB = 1024**3


def test_fits_under_the_threshold() -> None:
    check_fits("m1", needed_files=GB // 10, memory=MemoryInfo(total=16 * GB, available=8 * GB), threshold_percent=90)


def test_refusal_names_needed_available_and_setting() -> None:
    with pytest.raises(StatusError) as caught:
        check_fits("m1", needed_files=4 * GB, memory=MemoryInfo(total=16 * GB, available=5 * GB), threshold_percent=90)
    reason = caught.value.reason
    assert caught.value.status == 429
    assert "needs about 6144 MB" in reason
    assert "5120 MB of 16384 MB are available" in reason
    assert "native_memory_threshold (90%) allows 3481 MB more" in reason


def test_unknown_memory_does_not_block() -> None:
    check_fits("m1", needed_files=100 * GB, memory=None, threshold_percent=90)


def test_meminfo_and_model_size(tmp_path: Path) -> None:
    info = tmp_path / "meminfo"
    info.write_text("MemTotal:       16384 kB\nMemFree:  1 kB\nMemAvailable:    8192 kB\n")
    assert read_meminfo(info) == MemoryInfo(total=16384 * 1024, available=8192 * 1024)
    assert read_meminfo(tmp_path / "missing") is None
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "model.onnx").write_bytes(b"x" * 1000)
    (tmp_path / "m" / "tokenizer.json").write_bytes(b"y" * 24)
    assert model_bytes(tmp_path / "m") == 1024
