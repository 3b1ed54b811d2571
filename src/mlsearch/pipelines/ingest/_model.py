"""What model processors share: finding inputs through `field_map`, batching documents into model calls,
`skip_existing`, and writing outputs back (one value per string, a list of objects per list of strings)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mlsearch.errors import IllegalArgumentError, MLSearchError, StatusError
from mlsearch.pipelines.base import Config, ModelClient, Outcome, Services
from mlsearch.pipelines.document import IngestDocument
from mlsearch.pipelines.ingest._field_map import Slot, collect, lookup, validate_field_map


class ModelProcessor:
    """Base of text_embedding and sparse_encoding: subclasses say how to encode texts and wrap list items."""

    type = "model"
    list_key = "knn"

    def __init__(self, config: Config) -> None:
        self.model_id: str = config.string("model_id")
        self.field_map: dict[str, Any] = validate_field_map(config)
        batch_size = config.integer("batch_size", None)
        if batch_size is not None and batch_size < 1:
            raise config.error("batch_size", "batch_size must be a positive integer")
        self.batch_size: int | None = batch_size
        self.skip_existing = config.boolean("skip_existing", False)
        self.services: Services = config.services

    def encode(self, texts: list[str]) -> list[Any]:
        raise NotImplementedError

    def models(self) -> ModelClient:
        if self.services.models is None:
            raise IllegalArgumentError("no model service is available to ingest processors")
        return self.services.models

    def execute(self, doc: IngestDocument) -> IngestDocument | None:
        [outcome] = self.execute_batch([doc])
        if isinstance(outcome, MLSearchError):
            raise outcome
        return outcome

    def execute_batch(self, docs: Sequence[IngestDocument]) -> list[Outcome]:
        outcomes: list[Outcome] = list(docs)
        pending: list[tuple[int, list[Slot]]] = []
        for i, doc in enumerate(docs):
            try:
                slots = collect(doc.source, self.field_map)
                if self.skip_existing:
                    slots = self._reuse_existing(doc, slots)
            except MLSearchError as exc:
                outcomes[i] = exc
                continue
            if slots:
                pending.append((i, slots))
        size = self.batch_size or max(len(pending), 1)
        for start in range(0, len(pending), size):
            self._run_chunk(pending[start : start + size], outcomes)
        return outcomes

    def _run_chunk(self, chunk: list[tuple[int, list[Slot]]], outcomes: list[Outcome]) -> None:
        texts = [t for _, slots in chunk for slot in slots for t in slot.texts]
        try:
            values = self.encode(texts)
            if len(values) != len(texts):
                raise StatusError(
                    f"model [{self.model_id}] returned {len(values)} results for {len(texts)} inputs", status=500
                )
        except MLSearchError as exc:
            for i, _ in chunk:
                outcomes[i] = exc
            return
        pos = 0
        for _, slots in chunk:
            for slot in slots:
                out = values[pos : pos + len(slot.texts)]
                pos += len(slot.texts)
                slot.write([{self.list_key: v} for v in out] if slot.is_list else out[0])

    def _reuse_existing(self, doc: IngestDocument, slots: list[Slot]) -> list[Slot]:
        """skip_existing: copy the stored output when the stored document has the same input text."""
        if self.services.existing is None or doc.index is None or doc.id is None:
            return slots
        old = self.services.existing(doc.index, doc.id)
        if old is None:
            return slots
        left = []
        for slot in slots:
            before = lookup(old, slot.input_path)
            same = before == (slot.texts if slot.is_list else slot.texts[0])
            output = lookup(old, slot.output_path)
            if same and output is not None:
                slot.write(output)
            else:
                left.append(slot)
        return left


def read_common(config: Config) -> None:
    """Keys neural-search processors accept and ignore here."""
    config.value("model_config", None)
