"""A content-hash embedding cache: unchanged text is not embedded again on update, re-index or a repeated bulk.

Key: (model_id, sha256 of the UTF-8 text). Value: the float32 vector. A model id names one immutable artefact, so a
cached vector stays valid for as long as that id exists. The cache is a bounded LRU in memory (by bytes); given a
`path`, it also persists entries to a SQLite file so that they survive a restart (reads fall back to the file on a
memory miss). The node builds a memory-only cache; persistence is opt-in for deployments that re-index often."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def text_key(model_id: str, text: str) -> tuple[str, bytes]:
    return model_id, hashlib.sha256(text.encode()).digest()


class EmbeddingCache:
    """Bounded LRU of (model_id, sha256(text)) -> float32 vector; thread-safe."""

    def __init__(self, max_bytes: int = 64 * 1024 * 1024, path: Path | None = None) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[tuple[str, bytes], np.ndarray] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self._db: sqlite3.Connection | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS vectors (model_id TEXT, digest BLOB, vector BLOB, "
                "PRIMARY KEY (model_id, digest))"
            )

    def __len__(self) -> int:
        return len(self._entries)

    def get_many(self, model_id: str, texts: Sequence[str]) -> list[np.ndarray | None]:
        """The cached vector of each text, or None."""
        keys = [text_key(model_id, t) for t in texts]
        with self._lock:
            found = [self._touch(k) for k in keys]
            missing = [i for i, v in enumerate(found) if v is None]
            if missing and self._db is not None:
                for i in missing:
                    found[i] = self._load(keys[i])
            hit = sum(v is not None for v in found)
            self.hits += hit
            self.misses += len(found) - hit
        return found

    def put_many(self, model_id: str, texts: Sequence[str], vectors: Sequence[np.ndarray]) -> None:
        rows = []
        with self._lock:
            for text, vector in zip(texts, vectors, strict=True):
                key = text_key(model_id, text)
                vec = np.ascontiguousarray(vector, dtype=np.float32)
                self._insert(key, vec)
                rows.append((key[0], key[1], vec.tobytes()))
            if self._db is not None and rows:
                self._db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?, ?)", rows)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def _touch(self, key: tuple[str, bytes]) -> np.ndarray | None:
        vector = self._entries.get(key)
        if vector is not None:
            self._entries.move_to_end(key)
        return vector

    def _load(self, key: tuple[str, bytes]) -> np.ndarray | None:
        assert self._db is not None
        row = self._db.execute("SELECT vector FROM vectors WHERE model_id = ? AND digest = ?", key).fetchone()
        if row is None:
            return None
        vector = np.frombuffer(row[0], dtype=np.float32)
        self._insert(key, vector)
        return vector

    def _insert(self, key: tuple[str, bytes], vector: np.ndarray) -> None:
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= old.nbytes
        self._entries[key] = vector
        self._bytes += vector.nbytes
        while self._bytes > self.max_bytes and self._entries:
            _, dropped = self._entries.popitem(last=False)
            self._bytes -= dropped.nbytes
