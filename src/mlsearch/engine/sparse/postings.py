"""Feature postings of one rank_features / rank_feature field: immutable segments (token -> doc ordinals and weights,
CSR-like) with a live mask, plus the buffer of changes waiting for the next refresh.

Weights are stored as Lucene's FeatureField stores them: the float32 bits shifted right by 15, so 9 significant
bits survive. Scores then match OpenSearch's to the last bit that counts."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

# A rank_feature field (one value per document) is a rank_features field with this single token.
SINGLE = ""


def lucene_weights(weights: np.ndarray) -> np.ndarray:
    """Weights rounded down to what FeatureField keeps (float32 bits >> 15 << 15)."""
    bits = np.asarray(weights, dtype=np.float32).view(np.uint32)
    return ((bits >> np.uint32(15)) << np.uint32(15)).view(np.float32)


@dataclass(frozen=True, slots=True, eq=False)
class SparseSegment:
    """Postings of the documents one refresh (or merge) saw. `keys[ord]` is a document's key, sorted."""

    id: int
    tokens: Mapping[str, int]  # token -> its row in offsets
    offsets: np.ndarray  # int64, len(tokens) + 1
    ords: np.ndarray  # int32 document ordinals, grouped by token
    weights: np.ndarray  # float32, aligned with ords
    keys: np.ndarray  # int64 document keys by ordinal
    live: np.ndarray  # bool by ordinal

    @property
    def live_count(self) -> int:
        return int(self.live.sum())

    def postings(self, token: str) -> tuple[np.ndarray, np.ndarray]:
        row = self.tokens.get(token)
        if row is None:
            return _NO_ORDS, _NO_WEIGHTS
        start, end = int(self.offsets[row]), int(self.offsets[row + 1])
        return self.ords[start:end], self.weights[start:end]

    def without(self, keys: np.ndarray) -> SparseSegment:
        """This segment with `keys` (sorted) marked dead; itself when none of them is here."""
        hit = _present(self.keys, keys)
        if len(hit) == 0 or not self.live[hit].any():
            return self
        live = self.live.copy()
        live[hit] = False
        return replace(self, live=live)

    def docs(self) -> dict[int, dict[str, float]]:
        """The live documents' features (for merges)."""
        names = _token_names(self.tokens)
        out: dict[int, dict[str, float]] = {}
        for row, name in enumerate(names):
            start, end = int(self.offsets[row]), int(self.offsets[row + 1])
            for o, w in zip(self.ords[start:end].tolist(), self.weights[start:end].tolist(), strict=True):
                if self.live[o]:
                    out.setdefault(int(self.keys[o]), {})[name] = w
        return out

    def save(self, path: Path) -> None:
        names = np.asarray(_token_names(self.tokens), dtype=np.str_)
        with path.open("wb") as f:
            np.savez(f, names=names, offsets=self.offsets, ords=self.ords, weights=self.weights, keys=self.keys)

    @classmethod
    def load(cls, seg_id: int, path: Path, live: np.ndarray) -> SparseSegment:
        with np.load(path, allow_pickle=False) as data:
            names = data["names"].tolist()
            return cls(
                seg_id,
                {n: i for i, n in enumerate(names)},
                data["offsets"],
                data["ords"],
                data["weights"],
                data["keys"],
                live,
            )


_NO_ORDS = np.empty(0, dtype=np.int32)
_NO_WEIGHTS = np.empty(0, dtype=np.float32)


def _present(haystack: np.ndarray, needles: np.ndarray) -> np.ndarray:
    pos = np.searchsorted(haystack, needles)
    ok = pos < len(haystack)
    pos = pos[ok]
    return pos[haystack[pos] == needles[ok]]


def _token_names(tokens: Mapping[str, int]) -> list[str]:
    names = [""] * len(tokens)
    for name, row in tokens.items():
        names[row] = name
    return names


def build_segment(seg_id: int, docs: Mapping[int, Mapping[str, float]]) -> SparseSegment:
    """A segment holding `docs` (key -> token -> weight, weights already rounded)."""
    keys = np.asarray(sorted(docs), dtype=np.int64)
    vocab: dict[str, int] = {}
    tids: list[int] = []
    ords: list[int] = []
    weights: list[float] = []
    for o, key in enumerate(keys.tolist()):
        for token, weight in docs[key].items():
            tids.append(vocab.setdefault(token, len(vocab)))
            ords.append(o)
            weights.append(weight)
    tid = np.asarray(tids, dtype=np.int64)
    order = np.lexsort((np.asarray(ords, dtype=np.int64), tid))
    offsets = np.searchsorted(tid[order], np.arange(len(vocab) + 1)).astype(np.int64)
    return SparseSegment(
        seg_id,
        vocab,
        offsets,
        np.asarray(ords, dtype=np.int32)[order],
        np.asarray(weights, dtype=np.float32)[order],
        keys,
        np.ones(len(keys), dtype=bool),
    )


class FieldPostings:
    """One field's segments and pending changes. Writes and refreshes run under the index's write lock;
    searches read `segments` (a tuple swapped whole) without a lock."""

    def __init__(self, path: str, inverse: bool = False) -> None:
        self.path = path
        self.inverse = inverse  # positive_score_impact: false stores 1 / value, as OpenSearch does
        self.segments: tuple[SparseSegment, ...] = ()
        self.next_id = 0
        self._buffer: dict[int, dict[str, float] | None] = {}
        self._lock = threading.Lock()

    def put(self, key: int, features: Mapping[str, float] | None) -> None:
        """Record a document's features (None: no features, or deleted) for the next refresh."""
        if features is None:
            self._buffer[key] = None
            return
        tokens = list(features)
        values = np.asarray([features[t] for t in tokens], dtype=np.float32)
        if self.inverse:
            values = (1.0 / values).astype(np.float32)
        self._buffer[key] = dict(zip(tokens, lucene_weights(values).tolist(), strict=True))

    @property
    def pending(self) -> bool:
        return bool(self._buffer)

    def refresh(self, max_segments: int = 8) -> bool:
        """Turn the buffer into a segment; merge everything into one when segments pile up. True if changed."""
        if not self._buffer:
            return False
        buffer, self._buffer = self._buffer, {}
        changed = np.asarray(sorted(buffer), dtype=np.int64)
        segments = [s.without(changed) for s in self.segments]
        docs = {k: v for k, v in buffer.items() if v}
        if docs:
            segments.append(build_segment(self._new_id(), docs))
        segments = [s for s in segments if s.live_count > 0]
        if len(segments) > max_segments:
            segments = [self._merged(segments)]
        self.segments = tuple(segments)
        return True

    def _new_id(self) -> int:
        seg_id = self.next_id
        self.next_id += 1
        return seg_id

    def _merged(self, segments: Iterable[SparseSegment]) -> SparseSegment:
        docs: dict[int, dict[str, float]] = {}
        for seg in segments:
            docs.update(seg.docs())
        return build_segment(self._new_id(), docs)

    # ---- scoring -------------------------------------------------------------------------------------------

    def dot(self, query: Mapping[str, float]) -> tuple[np.ndarray, np.ndarray]:
        """(keys, scores) of every live document sharing a token with `query`: sum of query weight * stored weight."""
        found_keys, found_scores = [], []
        for seg in self.segments:
            parts = [(seg.postings(t), w) for t, w in query.items()]
            ords = [o for (o, _), _ in parts if len(o)]
            if not ords:
                continue
            all_ords = np.concatenate(ords)
            contrib = np.concatenate([ws.astype(np.float64) * float(np.float32(w)) for (o, ws), w in parts if len(o)])
            n = len(seg.keys)
            sums = np.bincount(all_ords, weights=contrib, minlength=n)
            hit = (np.bincount(all_ords, minlength=n) > 0) & seg.live
            found_keys.append(seg.keys[hit])
            found_scores.append(sums[hit].astype(np.float32))
        return _joined(found_keys, found_scores)

    def values(self, token: str) -> tuple[np.ndarray, np.ndarray]:
        """(keys, stored values) of the live documents having `token`."""
        keys, values = [], []
        for seg in self.segments:
            ords, weights = seg.postings(token)
            keep = seg.live[ords]
            keys.append(seg.keys[ords[keep]])
            values.append(weights[keep])
        return _joined(keys, values)


def _joined(keys: list[np.ndarray], scores: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    if not keys:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
    return np.concatenate(keys), np.concatenate(scores).astype(np.float32)


def top(keys: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k best (keys, scores), best first; ties by key."""
    if len(keys) > k:
        part = np.argpartition(-scores, k - 1)[:k]
        keys, scores = keys[part], scores[part]
    order = np.lexsort((keys, -scores))
    return keys[order], scores[order]
