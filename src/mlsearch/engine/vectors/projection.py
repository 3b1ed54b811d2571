"""The vector projection of one index: every knn_vector field's segments, their files, recovery and merges.

Like the lexical projection it records the last `_seq_no` it made durable (in manifest.json, written atomically
after the segment files), catches up from the store's operations log at start-up, and is rebuilt from the store
when missing or damaged. Segment files are written once; live bitmaps get a new file per generation."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import shutil
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import orjson

from mlsearch.engine._generations import drop_other_generations
from mlsearch.engine.mapping import Mappings
from mlsearch.engine.store import Store, StoredDoc
from mlsearch.engine.vectors import merge as merging
from mlsearch.engine.vectors.field import FieldSpec, FieldVectors
from mlsearch.engine.vectors.node import KnnNode
from mlsearch.engine.vectors.quantize import graph_memory
from mlsearch.engine.vectors.segment import Segment, build_graph, mapped
from mlsearch.errors import MapperParsingError

log = logging.getLogger(__name__)

_MANIFEST = "manifest.json"
# Segments smaller than this are searched exactly whatever approximate_threshold says: a graph buys nothing there.
MIN_GRAPH_ROWS = 1000


ModelLookup = Callable[[str], Mapping[str, Any]]


def knn_specs(
    mappings: Mappings, settings: Mapping[str, Any], model: ModelLookup | None = None
) -> dict[str, FieldSpec]:
    enabled = str(settings.get("index.knn", False)).lower() == "true"
    specs = {}
    for p, f in sorted(mappings.fields.items()):
        if f.type != "knn_vector":
            continue
        if "model_id" in f.params and model is not None:
            spec = FieldSpec.from_model(f, enabled, model(str(f.params["model_id"])))
        elif "dimension" in f.params:
            spec = FieldSpec.of(f, enabled)
        else:
            continue
        parent, nested = element_path(mappings, p)
        specs[p] = spec if parent is None else dataclasses.replace(spec, parent=parent, nested=nested)
    return specs


def element_path(mappings: Mappings, path: str) -> tuple[str | None, bool]:
    """The object path whose elements hold the vectors of field `path` (the deepest `nested` ancestor, else the
    deepest object), and whether it is `nested`; (None, False) for a top-level field."""
    parts = path.split(".")
    ancestors = [".".join(parts[:i]) for i in range(len(parts) - 1, 0, -1)]
    kinds = [(a, mappings.object_kind(a)) for a in ancestors]
    for a, kind in kinds:
        if kind == "nested":
            return a, True
    for a, kind in kinds:
        if kind == "object":
            return a, False
    return None, False


def _signature(specs: Mapping[str, FieldSpec]) -> str:
    spec = [
        (
            p,
            s.dimension,
            s.data_type,
            s.space.name,
            s.graph.name,
            s.graph.m,
            s.graph.ef_construction,
            s.graph.nlist,
            s.knn_enabled,
            s.model_id,
            *([s.graph.quant.label] if s.graph.quant.quantized else []),  # unquantized fields keep their old path
            *([s.parent, s.nested] if s.parent is not None else []),  # top-level fields keep their old path
        )
        for p, s in specs.items()
    ]
    return hashlib.sha256(orjson.dumps(spec)).hexdigest()[:16]


class VectorIndex:
    """All knn_vector fields of an index. Writes and refreshes run under the index's write lock; merges take
    this projection's own lock only to swap segments; searches take no lock."""

    def __init__(
        self,
        root: Path,
        mappings: Mappings,
        settings: Callable[[], Mapping[str, Any]],
        searcher: Callable[[], Any],
        knn: KnnNode | None = None,
    ) -> None:
        self.root = root
        self.knn = knn or KnnNode()
        self.stats = self.knn.stats
        # Graphs "in the cache": (field, segment id) -> bytes, as the plugin's native memory cache reports them.
        self._loaded: dict[tuple[str, int], int] = {}
        self.settings = settings
        self.searcher = searcher  # the lexical snapshot, to turn a knn filter into document keys
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._merge_lock = threading.Lock()
        self._stop = threading.Event()
        self._merger: threading.Thread | None = None
        self._configure(mappings)

    def _configure(self, mappings: Mappings) -> None:
        self.specs = knn_specs(mappings, self.settings(), self._model)
        self.signature = _signature(self.specs)
        self.fields = {p: self._field_vectors(s) for p, s in self.specs.items()}
        self.dirs = {p: f"f{i}" for i, p in enumerate(self.specs)}
        self.path = self.root / self.signature
        self.checkpoint = -1
        self.generation = 0
        self.pending = False
        self._saved: dict[str, dict[int, tuple[Segment, str]]] = {p: {} for p in self.specs}

    def field(self, path: str) -> FieldVectors | None:
        return self.fields.get(path)

    def _model(self, model_id: str) -> Mapping[str, Any]:
        """A trained model a field uses: this index's own copy (saved on first use, so the index never depends on
        the model index again), else the node's model registry."""
        local = self.root / "models" / model_id
        if (local / "model.json").exists():
            meta = orjson.loads((local / "model.json").read_bytes())
            return {**meta, "blob": (local / "model.faiss").read_bytes()}
        found = self.knn.model(model_id)
        if found is None:
            raise MapperParsingError(f'Model "{model_id}" does not exist')
        if found.get("state") != "created":
            raise MapperParsingError(f'Model "{model_id}" is not created. Current state: {found.get("state")}')
        local.mkdir(parents=True, exist_ok=True)
        (local / "model.faiss").write_bytes(bytes(found["blob"]))
        meta = {k: v for k, v in found.items() if k not in ("blob", "model_blob")}
        (local / "model.json").write_bytes(orjson.dumps(meta))
        return found

    def _field_vectors(self, spec: FieldSpec) -> FieldVectors:
        vectors = FieldVectors(spec)
        vectors.on_graph = lambda seg, path=spec.path: self._touch(path, seg)
        return vectors

    # ---- graph cache accounting (the k-NN stats API) ---------------------------------------------------------

    def _touch(self, path: str, seg: Segment) -> None:
        key = (path, seg.id)
        if key in self._loaded:
            self.stats.bump_each("graph_query_requests", "hit_count")  # every query: one lock, not two
            return
        self.stats.bump_each("graph_query_requests", "miss_count")
        self._load_graph(key, seg)

    def _load_graph(self, key: tuple[str, int], seg: Segment) -> None:
        started = time.perf_counter_ns()
        self._loaded[key] = graph_bytes(seg)
        self.stats.bump("load_success_count")
        self.stats.bump("total_load_time", time.perf_counter_ns() - started)

    def warmup(self) -> int:
        """Build pending graphs, then page every graph (and its vectors) into memory; returns the graph count."""
        self.settle()
        count = 0
        for path, vectors in list(self.fields.items()):
            for seg in vectors.segments:
                if seg.graph is None:
                    continue
                _touch_pages(self.path / self.dirs[path] / f"seg_{seg.id}", seg)
                if (path, seg.id) not in self._loaded:
                    self._load_graph((path, seg.id), seg)
                count += 1
        return count

    def clear_cache(self) -> int:
        """Forget the loaded graphs (the next search reloads them: a cache miss); returns how many were evicted."""
        evicted = len(self._loaded)
        self._loaded.clear()
        self.stats.bump("eviction_count", evicted)
        return evicted

    def cache_usage(self) -> tuple[int, int]:
        """(bytes, graph count) of the loaded graphs still in use."""
        current = {(p, s.id) for p, v in self.fields.items() for s in v.segments if s.graph is not None}
        for stale in [k for k in self._loaded if k not in current]:
            self._loaded.pop(stale, None)
        loaded = dict(self._loaded)
        return sum(loaded.values()), len(loaded)

    def graph_count(self) -> int:
        return sum(1 for v in self.fields.values() for s in v.segments if s.graph is not None)

    # ---- writes --------------------------------------------------------------------------------------------

    def project(self, key: int, source: Mapping[str, Any] | None, doc_id: str | None = None) -> None:
        """Record a document's vectors (or their absence) for the next refresh; `doc_id` is kept beside them."""
        for path, vectors in self.fields.items():
            if vectors.spec.parent is not None:
                self._project_elements(key, source, vectors, doc_id)
                continue
            value = None if source is None else value_at(source, path)
            row = None if value is None else vectors.spec.to_row(value)
            if row is not None and row.shape != (vectors.spec.width,):
                # Only model-based fields get here (the mapping checks `dimension` otherwise): keep the document
                # without a vector rather than poison the segment.
                log.warning("document %d: vector of [%s] has the wrong dimension; not indexed", key, path)
                row = None
            vectors.put(key, row, doc_id=doc_id)
            self.pending = True

    def _project_elements(
        self, key: int, source: Mapping[str, Any] | None, vectors: FieldVectors, doc_id: str | None
    ) -> None:
        """A field inside objects: one row per element of the parent path that has a vector."""
        spec = vectors.spec
        offsets, rows = [], []
        for offset, value in [] if source is None else _elements(source, spec.path, str(spec.parent)):
            row = spec.to_row(value)
            if row.shape != (spec.width,):
                log.warning("document %d: vector of [%s] has the wrong dimension; not indexed", key, spec.path)
                continue
            offsets.append(offset)
            rows.append(row)
        if not rows:
            vectors.put(key, None)
        else:
            vectors.put(key, np.stack(rows), np.asarray(offsets, dtype=np.int32), doc_id)
        self.pending = True

    def refresh(self, seq_no: int) -> None:
        """Make buffered vectors searchable and durable up to `seq_no`."""
        with self._lock:
            if not self.fields:
                self.checkpoint = seq_no
                return
            for vectors in self.fields.values():
                vectors.refresh(lambda spec, data: None)  # exact until the merger gives it a graph
            self._persist(seq_no)
            self.pending = False
        self._wake_merger()

    def wants_graph(self, spec: FieldSpec, rows: int) -> bool:
        """Whether a segment of `rows` vectors should be searched through a graph (approximate_threshold)."""
        threshold = int(self.settings().get("index.knn.advanced.approximate_threshold", 0))
        if spec.template is not None:  # a trained model: its index takes any segment, cheaply
            return spec.knn_enabled and rows > 0
        return spec.knn_enabled and threshold >= 0 and rows >= max(threshold, MIN_GRAPH_ROWS) and not spec.space.binary

    def _graph(self, spec: FieldSpec, data: np.ndarray) -> faiss.Index | None:
        if not self.wants_graph(spec, len(data)):
            return None
        self.stats.bump("graph_index_requests")
        try:
            if spec.template is not None:
                graph = faiss.deserialize_index(np.frombuffer(spec.template, dtype=np.uint8))
                graph.add(np.ascontiguousarray(data, dtype=np.float32))
                return graph
            return build_graph(spec.space, data, spec.graph)
        except Exception:
            self.stats.bump("graph_index_errors")
            raise

    # ---- persistence ---------------------------------------------------------------------------------------

    def _persist(self, seq_no: int) -> None:
        self.generation += 1
        manifest: dict[str, Any] = {
            "signature": self.signature,
            "seq_no": seq_no,
            "generation": self.generation,
            "fields": {},
        }
        for path, vectors in self.fields.items():
            base = self.path / self.dirs[path]
            saved = self._saved[path]
            entries = []
            remapped = {}
            for seg in vectors.segments:
                known = saved.get(seg.id)
                if known is None:
                    seg.save(base / f"seg_{seg.id}")
                    # From now on read the vectors through the file, as after a restart: they stay on disk (the
                    # page cache), and only the graph (quantized codes + links) is resident.
                    seg = remapped[seg.id] = seg.with_data(mapped(base / f"seg_{seg.id}" / "data.npy"))
                if known is None or known[0] is not seg:
                    live_name = f"live_{self.generation}.npy"
                    np.save(base / f"seg_{seg.id}" / live_name, seg.live)
                    known = (seg, live_name)
                saved[seg.id] = known
                entries.append([seg.id, known[1]])
            if remapped:
                vectors.segments = tuple(remapped.get(seg.id, seg) for seg in vectors.segments)
            self._saved[path] = {seg.id: saved[seg.id] for seg in vectors.segments}
            manifest["fields"][path] = {"next_id": vectors.next_id, "segments": entries}
        self.path.mkdir(parents=True, exist_ok=True)
        tmp = self.path / (_MANIFEST + ".tmp")
        tmp.write_bytes(orjson.dumps(manifest))
        tmp.replace(self.path / _MANIFEST)
        self.checkpoint = seq_no
        self._collect_garbage()

    def _collect_garbage(self) -> None:
        for path, saved in self._saved.items():
            base = self.path / self.dirs[path]
            if not base.exists():
                continue
            for child in base.iterdir():
                seg_id = int(child.name[4:]) if child.name.startswith("seg_") else -1
                if seg_id not in saved:
                    shutil.rmtree(child, ignore_errors=True)
                    continue
                for f in child.glob("live_*.npy"):
                    if f.name != saved[seg_id][1]:
                        f.unlink(missing_ok=True)

    def _load(self) -> bool:
        """Open the segments the manifest names; False when there is none or it is damaged."""
        try:
            manifest = orjson.loads((self.path / _MANIFEST).read_bytes())
            if manifest.get("signature") != self.signature:
                return False
            for path, vectors in self.fields.items():
                entry = manifest["fields"][path]
                base = self.path / self.dirs[path]
                segments = []
                for seg_id, live_name in entry["segments"]:
                    seg = Segment.load(int(seg_id), base / f"seg_{seg_id}", base / f"seg_{seg_id}" / live_name)
                    segments.append(seg)
                    self._saved[path][seg.id] = (seg, live_name)
                vectors.segments = tuple(segments)
                vectors.next_id = int(entry["next_id"])
            self.checkpoint = int(manifest["seq_no"])
            self.generation = int(manifest["generation"])
            return True
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
            if (self.path / _MANIFEST).exists():
                log.warning("vector segments in %s are damaged (%s); rebuilding from the store", self.path, exc)
            return False

    # ---- recovery ------------------------------------------------------------------------------------------

    def recover(self, store: Store) -> None:
        """Catch up from the store's operations log, or rebuild from the store when the files can't be used."""
        with self._lock:
            drop_other_generations(self.root, self.signature)
            if not self.fields:
                return
            if self._load():
                changes = store.changes_since(self.checkpoint)
                for change in changes:
                    if isinstance(change, StoredDoc):
                        self.project(change.key, orjson.loads(change.source), change.id)
                    else:
                        self.project(change[0], None)
                if changes:
                    log.info("vectors of %s caught up %d documents from the store", self.path, len(changes))
            else:
                self.rebuild(store)
                return
            self.refresh(store.max_seq_no)

    def rebuild(self, store: Store) -> None:
        with self._lock:
            shutil.rmtree(self.path, ignore_errors=True)
            self.fields = {p: self._field_vectors(s) for p, s in self.specs.items()}
            self._saved = {p: {} for p in self.specs}
            for batch in store.iter_live():
                for doc in batch:
                    self.project(doc.key, orjson.loads(doc.source), doc.id)
            self.refresh(store.max_seq_no)

    def needs_rebuild(self, mappings: Mappings) -> bool:
        return _signature(knn_specs(mappings, self.settings(), self._model)) != self.signature

    def set_mappings(self, mappings: Mappings, store: Store) -> bool:
        """Follow a mapping change; True when the knn fields changed and the projection was rebuilt."""
        if not self.needs_rebuild(mappings):
            return False
        with self._lock:
            self._configure(mappings)
            drop_other_generations(self.root, self.signature)
            self.rebuild(store)
        return True

    # ---- merges ----------------------------------------------------------------------------------------

    def _wake_merger(self) -> None:
        if self._stop.is_set() or not any(self._pick(v) for v in self.fields.values()):
            return
        if self._merger is None or not self._merger.is_alive():
            self._merger = threading.Thread(target=self._merge_loop, name=f"merge-{self.root.parent.name}", daemon=True)
            self._merger.start()
        self._wake.set()

    def _merge_loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(timeout=5.0)
            self._wake.clear()
            try:
                while not self._stop.is_set() and self.merge_once():
                    pass
            except Exception:
                log.exception("merging vector segments of %s failed", self.path)

    def _pick(self, vectors: FieldVectors) -> list[Segment]:
        return merging.pick(vectors.segments, lambda rows: self.wants_graph(vectors.spec, rows))

    def settle(self) -> None:
        """Run the pending merges and graph builds now (warmup, tests)."""
        while self.merge_once():
            pass

    def merge_once(self) -> bool:
        """Run one merge the policy asks for; False when there was nothing to do."""
        with self._merge_lock:  # one merge at a time, so two never take the same segments
            return self._merge_one()

    def _merge_one(self) -> bool:
        for path, vectors in list(self.fields.items()):
            with self._lock:
                sources = self._pick(vectors)
                if not sources:
                    continue
                seg_id = vectors.next_id
                vectors.next_id += 1
            merged = merging.merge(seg_id, sources, lambda data, spec=vectors.spec: self._graph(spec, data))
            with self._lock:
                if self.fields.get(path) is not vectors:
                    return True  # the projection was rebuilt meanwhile
                merged = merging.catch_up(merged, sources, vectors.segments)
                vectors.swap({s.id for s in sources}, merged)
                self._persist(self.checkpoint)
            return True
        return False

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._merger is not None:
            self._merger.join(timeout=30)


def graph_bytes(seg: Segment) -> int:
    """The native memory a segment's graph holds: its codes (quantized, or the full vectors) plus the links."""
    return 0 if seg.graph is None else graph_memory(seg.graph)


def _touch_pages(directory: Path, seg: Segment) -> None:
    """Read the segment's files through the page cache, so mmap'd graphs and vectors are resident."""
    for name in ("graph.faiss", "data.npy"):
        path = directory / name
        if path.exists():
            with path.open("rb") as f:
                while f.read(1 << 20):
                    pass


def _elements(source: Mapping[str, Any], path: str, parent: str) -> list[tuple[int, Any]]:
    """(offset, value) of field `path` in each element of the objects at `parent` (offset: the element's position;
    a single object is element 0)."""
    rest = path[len(parent) + 1 :]
    found = []
    for offset, item in enumerate(objects_at(source, parent)):
        value = value_at(item, rest)
        if value is not None:
            found.append((offset, value))
    return found


def objects_at(obj: Any, path: str) -> list[Mapping[str, Any]]:
    """Every object at a dotted path, through arrays and dotted keys, in document order."""
    if isinstance(obj, list):
        return [o for item in obj for o in objects_at(item, path)]
    if not isinstance(obj, Mapping):
        return []
    if not path:
        return [obj]
    if path in obj:
        return objects_at(obj[path], "")
    parts = path.split(".")
    for i in range(1, len(parts)):
        head = ".".join(parts[:i])
        if head in obj:
            return objects_at(obj[head], ".".join(parts[i:]))
    return []


def value_at(source: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path, through objects or dotted keys ({"a.b": ...} is {"a": {"b": ...}})."""
    if path in source:
        return source[path]
    parts = path.split(".")
    for i in range(1, len(parts)):
        inner = source.get(".".join(parts[:i]))
        if isinstance(inner, Mapping):
            found = value_at(inner, ".".join(parts[i:]))
            if found is not None:
                return found
    return None
