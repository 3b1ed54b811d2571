"""Applying ingest pipelines on the write path: which pipelines a write goes through, and running a batch of
documents through them off the event loop. The engine never sees a pipeline, only the processed sources."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mlsearch.engine.index import Index
from mlsearch.neural.semantic import BATCH_SETTING, DEFAULT_BATCH, has_semantic_fields, ingest_pipeline
from mlsearch.node import Node
from mlsearch.pipelines.base import Outcome
from mlsearch.pipelines.document import IngestDocument
from mlsearch.pipelines.runner import Pipeline

NONE = "_none"


def pipeline_ids(index: Index, requested: str | None) -> tuple[str, ...]:
    """The request's pipeline (else the index's default_pipeline), then the index's final_pipeline."""
    ids = []
    first = requested if requested is not None else index.setting("index.default_pipeline", NONE)
    if first and first != NONE:
        ids.append(str(first))
    final = index.setting("index.final_pipeline", NONE)
    if final and final != NONE:
        ids.append(str(final))
    return tuple(ids)


def resolve(node: Node, ids: Sequence[str]) -> list[Pipeline]:
    """The pipelines by id; a missing one is 400 `pipeline with id [x] does not exist`."""
    return [node.pipelines.get(i) for i in ids]


def has_semantic(index: Index) -> bool:
    """Whether writes to the index go through the semantic field system pipeline."""
    return has_semantic_fields(index.mappings.tree)


def write_pipelines(node: Node, index: Index, ids: Sequence[str]) -> list[Pipeline]:
    """The user's pipelines by id, then the system pipeline embedding the index's semantic fields (if any),
    which runs after them as neural-search's system ingest processor does."""
    pipelines = resolve(node, ids)
    ml = getattr(node, "ml", None)
    if ml is not None and has_semantic(index):
        batch = int(index.setting(BATCH_SETTING, DEFAULT_BATCH) or DEFAULT_BATCH)
        system = ingest_pipeline(index.mappings.tree, ml.registry.find, node.pipelines.services, batch)
        if system is not None:
            pipelines.append(system)
    return pipelines


def run(pipelines: Sequence[Pipeline], docs: list[IngestDocument]) -> list[Outcome]:
    """Every document through each pipeline in turn, as one batch per pipeline; blocking (model calls)."""
    outcomes: list[Outcome] = list(docs)
    for pipeline in pipelines:
        live = [i for i, o in enumerate(outcomes) if isinstance(o, IngestDocument)]
        if not live:
            break
        results = pipeline.run([outcomes[i] for i in live])  # type: ignore[misc]
        for i, result in zip(live, results, strict=True):
            outcomes[i] = result
    return outcomes


def ingest_document(index: Index, doc_id: str, source: dict[str, Any]) -> IngestDocument:
    return IngestDocument(source, {"_index": index.name, "_id": doc_id})


def dropped_result(index_name: str, doc_id: str) -> dict[str, Any]:
    """What OpenSearch answers for a document a `drop` processor removed."""
    return {
        "_index": index_name,
        "_id": doc_id,
        "_version": -3,
        "result": "noop",
        "_shards": {"total": 0, "successful": 0, "failed": 0},
        "_seq_no": -2,
        "_primary_term": 0,
    }
