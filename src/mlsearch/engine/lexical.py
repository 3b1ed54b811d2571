"""The lexical projection of an index: a tantivy index of every indexed leaf field.

Its schema follows the mapping; when the mapping gains an indexed field the projection is rebuilt from the store
in a new directory (tantivy schemas are fixed). It records the last `_seq_no` it committed in a checkpoint file,
so that at start-up it catches up from the store's operations log, or is rebuilt when missing or damaged."""

from __future__ import annotations

import hashlib
import logging
import shutil
import struct
import threading
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import tantivy

from mlsearch.engine._generations import drop_other_generations
from mlsearch.engine.analysis import Analyzers, tantivy_name
from mlsearch.engine.bert_analyzer import is_dl_analyzer
from mlsearch.engine.mapping import Field, Mappings, parse_document
from mlsearch.engine.store import Store, StoredDoc

log = logging.getLogger(__name__)

ID_FIELD = "_id"
KEY_FIELD = "_key"
# Which fields a document has values for: serves `exists` on fields that are not fast (text), like Lucene's.
FIELD_NAMES = "_field_names"
_CHECKPOINT = "checkpoint.json"
_WRITER_HEAP = 64_000_000
# Every file of a tantivy segment ends with a footer: JSON {"version", "crc"}, its length (u32) and this magic (u32).
_FOOTER_MAGIC = 1337
_SEGMENT_PARTS = ("idx", "pos", "term", "store", "fast", "fieldnorm")


@dataclass(frozen=True, slots=True)
class Column:
    """How one mapped leaf field is held in tantivy."""

    field: Field
    name: str  # the tantivy field name
    kind: str  # text | keyword | integer | float | boolean

    @property
    def fast(self) -> bool:
        return self.kind != "text"


def columns_for(mappings: Mappings) -> dict[str, Column]:
    columns: dict[str, Column] = {}
    for i, path in enumerate(sorted(mappings.fields)):
        leaf = mappings.fields[path]
        if not leaf.indexed:
            continue
        kind = {"date": "integer", "ip": "keyword"}.get(leaf.base_type, leaf.base_type)
        if kind not in ("text", "keyword", "integer", "float", "boolean"):
            continue
        columns[path] = Column(leaf, f"f{i}", kind)
    return columns


def _signature(columns: Mapping[str, Column]) -> str:
    spec = [(c.field.path, c.name, c.kind, c.field.analyzer) for c in columns.values()]
    return hashlib.sha256(orjson.dumps(spec)).hexdigest()[:16]


def _schema(columns: Mapping[str, Column]) -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_text_field(ID_FIELD, stored=False, tokenizer_name="raw", index_option="basic")
    builder.add_integer_field(KEY_FIELD, stored=False, indexed=True, fast=True)
    builder.add_text_field(FIELD_NAMES, stored=False, tokenizer_name="raw", index_option="basic")
    for col in columns.values():
        if col.kind == "text":
            builder.add_text_field(col.name, tokenizer_name=tantivy_name(col.field.analyzer), index_option="position")
        elif col.kind == "keyword":
            builder.add_text_field(col.name, fast=True, tokenizer_name="raw", index_option="freq")
        elif col.kind == "integer":
            builder.add_integer_field(col.name, indexed=True, fast=True)
        elif col.kind == "float":
            builder.add_float_field(col.name, indexed=True, fast=True)
        elif col.kind == "boolean":
            builder.add_boolean_field(col.name, indexed=True, fast=True)
    return builder.build()


class LexicalIndex:
    """The tantivy projection of one index. Writes happen under the owning index's write lock."""

    def __init__(self, root: Path, mappings: Mappings, analyzers: Analyzers) -> None:
        self.root = root
        self.analyzers = analyzers
        self._lock = threading.Lock()
        self._open(mappings)

    def _open(self, mappings: Mappings) -> None:
        self.mappings = mappings
        self.columns = columns_for(mappings)
        self.signature = _signature(self.columns)
        self.path = self.root / self.signature
        self.schema = _schema(self.columns)
        checkpoint = self._read_checkpoint()
        if checkpoint is None:
            shutil.rmtree(self.path, ignore_errors=True)
        self.path.mkdir(parents=True, exist_ok=True)
        try:
            if checkpoint is not None:
                verify_segments(self.path)
            self.index = tantivy.Index(self.schema, path=str(self.path), reuse=checkpoint is not None)
        except (OSError, ValueError) as exc:
            log.warning("lexical index %s is damaged (%s); rebuilding", self.path, exc)
            shutil.rmtree(self.path, ignore_errors=True)
            self.path.mkdir(parents=True)
            self.index = tantivy.Index(self.schema, path=str(self.path), reuse=False)
            checkpoint = None
        self.analyzers.register_all(self.index)
        self.writer = self.index.writer(_WRITER_HEAP, 1)
        self.checkpoint = -1 if checkpoint is None else checkpoint
        self.pending = False
        drop_other_generations(self.root, self.signature)
        self.index.reload()
        self._searcher = self.index.searcher()

    def _read_checkpoint(self) -> int | None:
        try:
            data = orjson.loads((self.path / _CHECKPOINT).read_bytes())
            return int(data["seq_no"]) if data.get("signature") == self.signature else None
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def needs_rebuild(self, mappings: Mappings) -> bool:
        return _signature(columns_for(mappings)) != self.signature

    # ---- writing -----------------------------------------------------------------------------------------

    def catch_up(self, store: Store) -> int:
        """Apply everything the store has after our checkpoint; returns how many documents were touched."""
        changes = store.changes_since(self.checkpoint)
        for change in changes:
            if isinstance(change, StoredDoc):
                self.upsert(change.key, change.id, self._values_of(change))
            else:
                self.delete(change[1])
        return len(changes)

    def rebuild(self, mappings: Mappings, store: Store) -> None:
        """A fresh projection for a new schema, filled from every live document of the store."""
        old_path = self.path
        self.writer = None  # release tantivy's lock on the old directory
        self._open(mappings)
        if old_path != self.path:
            shutil.rmtree(old_path, ignore_errors=True)
        self.writer.delete_all_documents()
        for batch in store.iter_live():
            for doc in batch:
                self.add(doc.key, doc.id, self._values_of(doc))
        self.commit(store.max_seq_no)

    def _values_of(self, doc: StoredDoc) -> dict[str, list[Any]]:
        assert doc.source is not None
        return parse_document(self.mappings, orjson.loads(doc.source), doc.id).values

    def upsert(self, key: int, doc_id: str, values: Mapping[str, list[Any]]) -> None:
        self.writer.delete_documents_by_term(ID_FIELD, doc_id)
        self.add(key, doc_id, values)

    def add(self, key: int, doc_id: str, values: Mapping[str, list[Any]]) -> None:
        doc = tantivy.Document()
        doc.add_text(ID_FIELD, doc_id)
        doc.add_integer(KEY_FIELD, key)
        present: set[str] = set()
        for path, items in values.items():
            col = self.columns.get(path)
            if col is None or not items:
                continue
            present.add(path)
            if col.kind == "text" and is_dl_analyzer(col.field.analyzer):
                # tantivy cannot run a Python tokenizer: index the DL model analyzer's tokens pre-tokenized
                analyzer = self.analyzers.get(col.field.analyzer)
                for item in items:
                    doc.add_pre_tokenized_text(col.name, analyzer.pre_tokenize(item))
                continue
            _add_values(doc, col, items)
        for path in present:
            doc.add_text(FIELD_NAMES, path)
        self.writer.add_document(doc)
        self.pending = True

    def delete(self, doc_id: str) -> None:
        self.writer.delete_documents_by_term(ID_FIELD, doc_id)
        self.pending = True

    def delete_all(self) -> None:
        self.writer.delete_all_documents()
        self.pending = True

    def commit(self, seq_no: int) -> None:
        """Make applied changes durable and searchable, and record the `_seq_no` they reach."""
        self.writer.commit()
        tmp = self.path / (_CHECKPOINT + ".tmp")
        tmp.write_bytes(orjson.dumps({"seq_no": seq_no, "signature": self.signature}))
        tmp.replace(self.path / _CHECKPOINT)
        self.checkpoint = seq_no
        self.pending = False
        self.index.reload()
        self._searcher = self.index.searcher()

    # ---- reading -----------------------------------------------------------------------------------------

    def searcher(self) -> tantivy.Searcher:
        """The snapshot of the last refresh; never changes under a reader."""
        return self._searcher

    def close(self) -> None:
        self.writer = None


def verify_segments(path: Path) -> None:
    """Check the crc32 of every file of every committed segment; raise ValueError on a mismatch.

    tantivy opens segments lazily and never checks their checksums, so a damaged file would otherwise surface as a
    panic in the middle of a search rather than as a rebuild at start-up."""
    try:
        meta = orjson.loads((path / "meta.json").read_bytes())
        names = []
        for segment in meta["segments"]:
            stem = str(segment["segment_id"]).replace("-", "")
            names.extend(f"{stem}.{part}" for part in _SEGMENT_PARTS)
            if segment.get("deletes"):
                names.append(f"{stem}.{int(segment['deletes']['opstamp'])}.del")
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"malformed meta.json: {exc}") from exc
    for name in names:
        file = path / name
        if file.exists() or name.endswith(".del"):
            _check_footer(file)


def _check_footer(file: Path) -> None:
    with open(file, "rb") as handle:
        size = handle.seek(0, 2)
        if size < 8:
            raise ValueError(f"{file.name}: too short for a footer")
        handle.seek(size - 8)
        footer_len, magic = struct.unpack("<II", handle.read(8))
        if magic != _FOOTER_MAGIC or footer_len > size - 8:
            raise ValueError(f"{file.name}: no footer")
        handle.seek(size - 8 - footer_len)
        try:
            expected = int(orjson.loads(handle.read(footer_len))["crc"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{file.name}: unreadable footer") from exc
        handle.seek(0)
        crc, left = 0, size - 8 - footer_len
        while left > 0:
            chunk = handle.read(min(left, 1 << 20))
            if not chunk:
                raise ValueError(f"{file.name}: shorter than it says")
            crc, left = zlib.crc32(chunk, crc), left - len(chunk)
    if crc != expected:
        raise ValueError(f"{file.name}: checksum mismatch")


def _add_values(doc: tantivy.Document, col: Column, items: Iterable[Any]) -> None:
    add = {
        "text": doc.add_text,
        "keyword": doc.add_text,
        "integer": doc.add_integer,
        "float": doc.add_float,
        "boolean": doc.add_boolean,
    }[col.kind]
    for item in items:
        add(col.name, float(item) if col.kind == "float" else item)
