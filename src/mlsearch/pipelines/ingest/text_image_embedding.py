"""`text_image_embedding`: one vector for a document's text and/or image (base64), written to `embedding`.

Documents with text only share one model call; a document with an image is sent as `[text, image]` on its own,
as neural-search does."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mlsearch.errors import MLSearchError
from mlsearch.ml.predictor import PredictInput
from mlsearch.pipelines.base import Config, Outcome, SimpleProcessor, registry
from mlsearch.pipelines.document import IngestDocument
from mlsearch.pipelines.ingest.text_embedding import embed


class TextImageEmbeddingProcessor(SimpleProcessor):
    type = "text_image_embedding"

    def __init__(self, config: Config) -> None:
        self.model_id = config.string("model_id")
        self.embedding = config.string("embedding")
        field_map = config.mapping("field_map")
        unknown = [k for k in field_map if k not in ("text", "image")]
        if not field_map or unknown:
            raise config.error("field_map", "Unable to create the processor as field_map has invalid key or value")
        self.text_field = field_map.get("text")
        self.image_field = field_map.get("image")
        self.skip_existing = config.boolean("skip_existing", False)
        self.services = config.services

    def _inputs(self, doc: IngestDocument) -> list[str]:
        out = []
        for path in (self.text_field, self.image_field):
            value = doc.get(path, None) if path else None
            if isinstance(value, str) and value:
                out.append(value)
        return out

    def execute(self, doc: IngestDocument) -> IngestDocument:
        [outcome] = self.execute_batch([doc])
        if isinstance(outcome, MLSearchError):
            raise outcome
        return outcome  # type: ignore[return-value]

    def execute_batch(self, docs: Sequence[IngestDocument]) -> list[Outcome]:
        outcomes: list[Outcome] = list(docs)
        text_only: list[tuple[int, str]] = []
        for i, doc in enumerate(docs):
            inputs = self._inputs(doc)
            has_image = bool(self.image_field and doc.get(self.image_field, None))
            if not inputs:
                continue
            if has_image:
                outcomes[i] = self._one(doc, inputs)
            else:
                text_only.append((i, inputs[0]))
        if text_only:
            try:
                vectors = embed(self.services.models, self.model_id, [t for _, t in text_only])
                for (i, _), vector in zip(text_only, vectors, strict=True):
                    docs[i].set(self.embedding, vector.tolist())
            except MLSearchError as exc:
                for i, _ in text_only:
                    outcomes[i] = exc
        return outcomes

    def _one(self, doc: IngestDocument, inputs: list[str]) -> Outcome:
        try:
            results = self.services.models.infer(self.model_id, PredictInput(text_docs=inputs))  # type: ignore[union-attr]
            data: Any = results[0][0].data
            doc.set(self.embedding, [float(x) for x in data])
            return doc
        except MLSearchError as exc:
            return exc


@registry.register("text_image_embedding")
def _factory(config: Config) -> TextImageEmbeddingProcessor:
    return TextImageEmbeddingProcessor(config)
