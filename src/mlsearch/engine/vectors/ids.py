"""The `_id` of every row of a segment, kept beside its vectors: hits become `_id`s without a store read.

A document's key never changes its `_id` (the store keeps a tombstone row for a deleted document, and re-indexing the
same `_id` reuses its key), so a segment's ids stay true for as long as the segment lives, whatever happens to the
documents later. Stored as one UTF-8 blob and row offsets into it (no Python object per row, no pickle)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

_BLOB = "ids.bin"
_OFFSETS = "id_offsets.npy"


@dataclass(frozen=True, slots=True)
class SegmentIds:
    blob: bytes
    offsets: np.ndarray  # int64 [rows + 1]: row r's `_id` is blob[offsets[r]:offsets[r + 1]]
    # (start, end) of each row: a view of `offsets`, so a handful of rows' bounds are one fancy index
    bounds: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "bounds", np.lib.stride_tricks.sliding_window_view(self.offsets, 2))

    @classmethod
    def of(cls, ids: Sequence[str]) -> SegmentIds:
        encoded = [i.encode() for i in ids]
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum(np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded)), out=offsets[1:])
        return cls(b"".join(encoded), offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def at(self, rows: np.ndarray) -> list[str]:
        """The `_id`s of `rows` (the query path asks for a handful)."""
        blob = self.blob
        return [blob[s:e].decode() for s, e in self.bounds[rows].tolist()]

    def take(self, rows: np.ndarray) -> SegmentIds:
        """The ids of `rows`, in that order (a merge)."""
        starts, ends = self.offsets[rows].tolist(), self.offsets[rows + 1].tolist()
        view = memoryview(self.blob)
        return SegmentIds.of_bytes([view[s:e] for s, e in zip(starts, ends, strict=True)])

    @classmethod
    def of_bytes(cls, parts: Sequence[bytes | memoryview]) -> SegmentIds:
        offsets = np.zeros(len(parts) + 1, dtype=np.int64)
        np.cumsum(np.fromiter(map(len, parts), dtype=np.int64, count=len(parts)), out=offsets[1:])
        return cls(b"".join(parts), offsets)

    @classmethod
    def concat(cls, parts: Sequence[SegmentIds]) -> SegmentIds:
        blobs, offsets, base = [], [np.zeros(1, dtype=np.int64)], 0
        for part in parts:
            blobs.append(part.blob)
            offsets.append(part.offsets[1:] + base)
            base += len(part.blob)
        return cls(b"".join(blobs), np.concatenate(offsets))

    def save(self, directory: Path) -> None:
        (directory / _BLOB).write_bytes(self.blob)
        np.save(directory / _OFFSETS, self.offsets)

    @classmethod
    def load(cls, directory: Path, rows: int) -> SegmentIds | None:
        """The saved ids, or None for a segment written before ids were kept (hits then read the store)."""
        if not (directory / _OFFSETS).exists():
            return None
        blob = (directory / _BLOB).read_bytes()
        offsets = np.load(directory / _OFFSETS)
        if len(offsets) != rows + 1 or int(offsets[-1]) != len(blob):
            raise ValueError(f"segment {directory} has inconsistent ids")
        return cls(blob, offsets)
