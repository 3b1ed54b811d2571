"""The sparse projection of one index: the feature postings of every rank_features / rank_feature field.

Like the vector projection it records the last `_seq_no` it made durable (manifest.json, replaced atomically after
the segment files), catches up from the store's operations log at start-up, and is rebuilt from the store when its
files are missing or damaged. Segment files are written once; the live masks get one file per generation."""

from __future__ import annotations

import hashlib
import logging
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from mlsearch.engine._generations import drop_other_generations
from mlsearch.engine.mapping import Mappings
from mlsearch.engine.sparse.postings import SINGLE, FieldPostings, SparseSegment
from mlsearch.engine.store import Store, StoredDoc

log = logging.getLogger(__name__)

_MANIFEST = "manifest.json"
FEATURE_TYPES = ("rank_features", "rank_feature")


def feature_fields(mappings: Mappings) -> dict[str, tuple[str, bool]]:
    """path -> (type, inverse) of every feature field."""
    return {
        p: (f.type, str(f.params.get("positive_score_impact", True)).lower() == "false")
        for p, f in sorted(mappings.fields.items())
        if f.type in FEATURE_TYPES
    }


def _signature(fields: Mapping[str, tuple[str, bool]]) -> str:
    return hashlib.sha256(orjson.dumps(sorted(fields.items()))).hexdigest()[:16]


class SparseIndex:
    """All feature fields of an index; writes and refreshes run under the index's write lock."""

    def __init__(self, root: Path, mappings: Mappings) -> None:
        self.root = root
        self._configure(mappings)

    def _configure(self, mappings: Mappings) -> None:
        self.specs = feature_fields(mappings)
        self.signature = _signature(self.specs)
        self.path = self.root / self.signature
        self.fields = {p: FieldPostings(p, inverse) for p, (_, inverse) in self.specs.items()}
        self.checkpoint = -1
        self.generation = 0
        self._saved: dict[tuple[str, int], SparseSegment] = {}

    def field(self, path: str) -> FieldPostings | None:
        return self.fields.get(path)

    @property
    def pending(self) -> bool:
        return any(f.pending for f in self.fields.values())

    # ---- writes --------------------------------------------------------------------------------------------

    def project(self, key: int, source: Mapping[str, Any] | None) -> None:
        """Record a document's features (or their absence) for the next refresh."""
        for path, postings in self.fields.items():
            value = None if source is None else _value_at(source, path)
            postings.put(key, _features(value, self.specs[path][0]))

    def refresh(self, seq_no: int) -> None:
        """Make buffered features searchable and durable up to `seq_no`."""
        changed = [f.refresh() for f in self.fields.values()]
        if any(changed) or (self.fields and self.checkpoint < seq_no):
            self._persist(seq_no)
        self.checkpoint = seq_no

    # ---- persistence ---------------------------------------------------------------------------------------

    def _persist(self, seq_no: int) -> None:
        self.generation += 1
        self.path.mkdir(parents=True, exist_ok=True)
        manifest: dict[str, Any] = {
            "signature": self.signature,
            "seq_no": seq_no,
            "generation": self.generation,
            "fields": {},
        }
        live: dict[str, np.ndarray] = {}
        saved: dict[tuple[str, int], SparseSegment] = {}
        for i, (path, postings) in enumerate(self.fields.items()):
            for seg in postings.segments:
                name = f"f{i}_s{seg.id}"
                if (path, seg.id) not in self._saved:
                    seg.save(self.path / f"{name}.npz")
                saved[(path, seg.id)] = seg
                live[name] = seg.live
            manifest["fields"][path] = {"next_id": postings.next_id, "segments": [s.id for s in postings.segments]}
        live_name = f"live_{self.generation}.npz"
        with (self.path / live_name).open("wb") as f:
            np.savez(f, **live)
        manifest["live"] = live_name
        tmp = self.path / (_MANIFEST + ".tmp")
        tmp.write_bytes(orjson.dumps(manifest))
        tmp.replace(self.path / _MANIFEST)
        self._saved = saved
        self.checkpoint = seq_no
        self._collect_garbage(manifest)

    def _collect_garbage(self, manifest: Mapping[str, Any]) -> None:
        keep = {manifest["live"], _MANIFEST}
        for i, entry in enumerate(manifest["fields"].values()):
            keep.update(f"f{i}_s{seg_id}.npz" for seg_id in entry["segments"])
        for child in self.path.iterdir():
            if child.name not in keep:
                child.unlink(missing_ok=True)

    def _load(self) -> bool:
        """Open the segments the manifest names; False when there is none or it is damaged."""
        try:
            manifest = orjson.loads((self.path / _MANIFEST).read_bytes())
            if manifest.get("signature") != self.signature:
                return False
            with np.load(self.path / manifest["live"], allow_pickle=False) as live:
                for i, (path, postings) in enumerate(self.fields.items()):
                    entry = manifest["fields"][path]
                    segments = []
                    for seg_id in entry["segments"]:
                        name = f"f{i}_s{seg_id}"
                        seg = SparseSegment.load(int(seg_id), self.path / f"{name}.npz", live[name])
                        segments.append(seg)
                        self._saved[(path, seg.id)] = seg
                    postings.segments = tuple(segments)
                    postings.next_id = int(entry["next_id"])
            self.checkpoint = int(manifest["seq_no"])
            self.generation = int(manifest["generation"])
            return True
        except (OSError, ValueError, KeyError, TypeError) as exc:
            if (self.path / _MANIFEST).exists():
                log.warning("sparse segments in %s are damaged (%s); rebuilding from the store", self.path, exc)
            return False

    # ---- recovery ------------------------------------------------------------------------------------------

    def recover(self, store: Store) -> None:
        """Catch up from the store's operations log, or rebuild from the store when the files can't be used."""
        drop_other_generations(self.root, self.signature)
        if not self.fields:
            return
        if not self._load():
            self.rebuild(store)
            return
        changes = store.changes_since(self.checkpoint)
        for change in changes:
            if isinstance(change, StoredDoc):
                self.project(change.key, orjson.loads(change.source))
            else:
                self.project(change[0], None)
        if changes:
            log.info("sparse postings of %s caught up %d documents from the store", self.path, len(changes))
        self.refresh(store.max_seq_no)

    def rebuild(self, store: Store) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        self.fields = {p: FieldPostings(p, inverse) for p, (_, inverse) in self.specs.items()}
        self._saved = {}
        self.checkpoint = -1
        if not self.fields:
            return
        for batch in store.iter_live():
            for doc in batch:
                self.project(doc.key, orjson.loads(doc.source))
        self.refresh(store.max_seq_no)

    def needs_rebuild(self, mappings: Mappings) -> bool:
        return _signature(feature_fields(mappings)) != self.signature

    def set_mappings(self, mappings: Mappings, store: Store) -> bool:
        """Follow a mapping change; True when the feature fields changed and the projection was rebuilt."""
        if not self.needs_rebuild(mappings):
            return False
        self._configure(mappings)
        drop_other_generations(self.root, self.signature)
        self.rebuild(store)
        return True


def _features(value: Any, field_type: str) -> dict[str, float] | None:
    """The features of one field value (the mapping already checked them: positive finite numbers)."""
    if value is None:
        return None
    if field_type == "rank_feature":
        return {SINGLE: float(value)} if isinstance(value, int | float) and not isinstance(value, bool) else None
    if not isinstance(value, Mapping):
        return None
    return {str(t): float(w) for t, w in value.items()} or None


def _value_at(source: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path, through objects or dotted keys ({"a.b": ...} is {"a": {"b": ...}})."""
    if path in source:
        return source[path]
    parts = path.split(".")
    for i in range(1, len(parts)):
        inner = source.get(".".join(parts[:i]))
        if isinstance(inner, Mapping):
            found = _value_at(inner, ".".join(parts[i:]))
            if found is not None:
                return found
    return None
