"""Search pipelines: the processor registry, built-in processors and `build_pipeline` (validating factory)."""

from __future__ import annotations

from typing import Any

from mlsearch.errors import IllegalArgumentError, ParseError
from mlsearch.pipelines.search import (  # noqa: F401  (register the built-ins)
    phase,
    rag,
    request,
    rerank,
    response,
    two_phase,
)
from mlsearch.pipelines.search._registry import FACTORIES
from mlsearch.pipelines.search.base import KINDS, Processor, SearchContext, SearchPipeline, Similarity

__all__ = ["SearchContext", "SearchPipeline", "Similarity", "build_pipeline"]
_TOP_KEYS = {"description", "version", *KINDS}


def build_pipeline(pipeline_id: str, body: Any) -> SearchPipeline:
    """Validate a pipeline definition and build its processors (unknown types and keys are errors)."""
    if not isinstance(body, dict):
        raise ParseError("search pipeline definition must be an object")
    for key in body:
        if key not in _TOP_KEYS:
            raise IllegalArgumentError(
                f"pipeline [{pipeline_id}] doesn't support one or more provided configuration parameters [{key}]"
            )
    built = {kind: tuple(_processors(kind, body.get(kind))) for kind in KINDS}
    if len(built["phase_results_processors"]) > 1:
        raise IllegalArgumentError("a search pipeline supports one phase results processor for hybrid queries")
    return SearchPipeline(
        pipeline_id, built["request_processors"], built["phase_results_processors"], built["response_processors"]
    )


def _processors(kind: str, items: Any) -> list[Processor]:
    if items is None:
        return []
    if not isinstance(items, list):
        raise ParseError(f"[{kind}] property isn't a list, but of type [{type(items).__name__}]")
    out = []
    for item in items:
        if not isinstance(item, dict) or len(item) != 1:
            raise ParseError(f"[{kind}] each processor must be an object with a single processor type")
        type_name, config = next(iter(item.items()))
        factory = FACTORIES.get((kind, type_name))  # type: ignore[arg-type]
        if factory is None:
            raise IllegalArgumentError(f"Invalid processor type {type_name}")
        if not isinstance(config, dict):
            raise ParseError(f"[{type_name}] processor configuration must be an object")
        out.append(factory(dict(config)))
    return out
