"""Projection directories are named by a signature of what they index; a new signature is a new generation."""

from __future__ import annotations

import shutil
from pathlib import Path


def drop_other_generations(root: Path, keep: str) -> None:
    """Remove every generation directory under `root` but `keep` (left over from an older mapping)."""
    if not root.exists():
        return
    for child in root.iterdir():
        if child.is_dir() and child.name != keep:
            shutil.rmtree(child, ignore_errors=True)
