"""Pipelines: parsing a pipeline body into steps, and running documents through them in batches.

Each step wraps a processor with the settings every processor shares (`if`, `ignore_failure`, `on_failure`, `tag`,
`description`). Documents go through a step together, so a model processor sees the whole batch at once; a failure
belongs to its own document only."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from mlsearch.errors import MLSearchError, ParseError
from mlsearch.pipelines.base import Config, Outcome, Processor, Registry, Services, config_error
from mlsearch.pipelines.condition import ConditionError, Expr, compile_condition
from mlsearch.pipelines.document import IngestDocument

Trace = list[dict[str, Any]]
_PIPELINE_KEYS = ("description", "processors", "on_failure", "version", "_meta")


@dataclass
class Step:
    """A processor and its shared settings."""

    type: str
    processor: Processor
    tag: str | None = None
    description: str | None = None
    condition_source: str | None = None
    condition: Expr | None = None
    ignore_failure: bool = False
    on_failure: list[Step] = field(default_factory=list)


@dataclass
class Pipeline:
    id: str
    steps: list[Step]
    on_failure: list[Step] = field(default_factory=list)
    description: str | None = None
    version: int | None = None

    def run(self, docs: Sequence[IngestDocument], traces: list[Trace] | None = None) -> list[Outcome]:
        """Each document processed, dropped (None) or failed (its error), in input order."""
        for doc in docs:
            doc.ingest.setdefault("pipeline", self.id)
        outcomes = _run_steps(self.steps, list(docs), traces)
        if not self.on_failure:
            return outcomes
        for i, outcome in enumerate(outcomes):
            if isinstance(outcome, MLSearchError):
                outcomes[i] = _recover(self.on_failure, docs[i], outcome, traces[i] if traces else None)
        return outcomes


# ---- parsing ---------------------------------------------------------------------------------------------------


def parse_pipeline(pipeline_id: str, body: Any, registry: Registry, services: Services) -> Pipeline:
    """Validate a pipeline body as PUT does; errors are OpenSearch's `parse_exception`s."""
    if not isinstance(body, dict):
        raise ParseError("request body is required")
    config = dict(body)
    processors = config.pop("processors", None)
    if processors is None:
        raise config_error(None, None, "processors", "required property is missing")
    if not isinstance(processors, list):
        raise config_error(None, None, "processors", "property isn't a list, but of type [java.lang.String]")
    description = config.pop("description", None)
    version = config.pop("version", None)
    config.pop("_meta", None)
    on_failure_raw = config.pop("on_failure", None)
    if config:
        raise ParseError(
            f"pipeline [{pipeline_id}] doesn't support one or more provided configuration parameters [{', '.join(config)}]"
        )
    steps = parse_steps(processors, registry, services)
    on_failure = parse_steps(on_failure_raw, registry, services) if on_failure_raw is not None else []
    if on_failure_raw is not None and not on_failure:
        raise config_error(None, None, "on_failure", "processors list is empty")
    return Pipeline(pipeline_id, steps, on_failure, description if isinstance(description, str) else None, version)


def parse_steps(raw: Any, registry: Registry, services: Services) -> list[Step]:
    if not isinstance(raw, list):
        raise ParseError("[processors] property isn't a list")
    steps = []
    for entry in raw:
        if not isinstance(entry, dict):
            raise ParseError("[processors] property isn't a list of maps")
        for type_name, conf in entry.items():
            steps.append(parse_step(type_name, conf, registry, services))
    return steps


def parse_step(type_name: str, conf: Any, registry: Registry, services: Services) -> Step:
    factory = registry.factory(type_name)
    if not isinstance(conf, dict):
        raise config_error(type_name, None, None, f"processor [{type_name}] configuration must be a map")
    config = Config(type_name, copy.deepcopy(conf), services=services)
    config.tag = config.string("tag", None)
    description = config.string("description", None)
    condition_source = config.string("if", None)
    ignore_failure = config.boolean("ignore_failure", False)
    on_failure_raw = config.value("on_failure", None)
    condition = None
    if condition_source is not None:
        condition = compile_condition(condition_source)
    on_failure: list[Step] = []
    if on_failure_raw is not None:
        on_failure = parse_steps(on_failure_raw, registry, services)
        if not on_failure:
            raise config.error("on_failure", "processors list is empty")
    processor = factory(config)
    config.finish()
    return Step(type_name, processor, config.tag, description, condition_source, condition, ignore_failure, on_failure)


# ---- running ---------------------------------------------------------------------------------------------------


def _run_steps(steps: list[Step], docs: list[IngestDocument], traces: list[Trace] | None) -> list[Outcome]:
    outcomes: list[Outcome] = list(docs)
    active = list(range(len(docs)))
    for step in steps:
        selected = []
        for i in active:
            try:
                if _passes(step, docs[i], traces[i] if traces else None):
                    selected.append(i)
            except ConditionError as exc:
                outcomes[i] = exc
        if selected:
            _run_step(step, selected, docs, outcomes, traces)
        active = [i for i in active if isinstance(outcomes[i], IngestDocument)]
        for i in active:
            docs[i] = outcomes[i]  # type: ignore[assignment]
    return outcomes


def _passes(step: Step, doc: IngestDocument, trace: Trace | None) -> bool:
    if step.condition is None:
        return True
    result = bool(step.condition(doc.ctx()))
    if not result and trace is not None:
        trace.append({**_head(step), "status": "skipped", "if": {"condition": step.condition_source, "result": False}})
    return result


def _run_step(
    step: Step, selected: list[int], docs: list[IngestDocument], outcomes: list[Outcome], traces: list[Trace] | None
) -> None:
    batch = [docs[i] for i in selected]
    try:
        results = step.processor.execute_batch(batch)
    except MLSearchError as exc:
        results = [exc] * len(batch)
    for i, result in zip(selected, results, strict=True):
        trace = traces[i] if traces else None
        if isinstance(result, MLSearchError):
            outcomes[i] = _on_error(step, docs[i], result, trace)
            continue
        outcomes[i] = result
        if trace is not None:
            entry = {**_head(step), "status": "dropped" if result is None else "success"}
            if result is not None:
                entry["doc"] = copy.deepcopy(result.render())
            trace.append(entry)


def _on_error(step: Step, doc: IngestDocument, error: MLSearchError, trace: Trace | None) -> Outcome:
    _tag_error(error, step)
    if step.ignore_failure:
        if trace is not None:
            trace.append(
                {
                    **_head(step),
                    "status": "error_ignored",
                    "ignored_error": {"error": error_object(error)},
                    "doc": copy.deepcopy(doc.render()),
                }
            )
        return doc
    if trace is not None:
        trace.append({**_head(step), "status": "error", "error": error_object(error)})
    if not step.on_failure:
        return error
    return _recover(step.on_failure, doc, error, trace, step)


def _recover(
    handlers: list[Step], doc: IngestDocument, error: MLSearchError, trace: Trace | None, step: Step | None = None
) -> Outcome:
    """Run `on_failure` handlers with the failure described in `_ingest`; the handlers' own failure wins."""
    header = error.extra.get("header", {})
    meta = {
        "on_failure_message": error.reason,
        "on_failure_processor_type": step.type if step else header.get("processor_type"),
        "on_failure_processor_tag": step.tag if step else header.get("processor_tag"),
        "on_failure_pipeline": doc.ingest.get("pipeline"),
    }
    doc.ingest.update({k: v for k, v in meta.items() if v is not None})
    [outcome] = _run_steps(handlers, [doc], [trace] if trace is not None else None)
    if isinstance(outcome, IngestDocument):
        for key in meta:
            outcome.ingest.pop(key, None)
    return outcome


def _tag_error(error: MLSearchError, step: Step) -> None:
    header = error.extra.setdefault("header", {})
    if isinstance(header, dict):
        header.setdefault("processor_type", step.type)
        if step.tag:
            header.setdefault("processor_tag", step.tag)


def error_object(error: MLSearchError) -> dict[str, Any]:
    """The `error` object of OpenSearch's envelope (root_cause, type, reason, ...)."""
    inner = error.body()
    return {"root_cause": [{k: v for k, v in inner.items() if k != "caused_by"}], **inner}


def _head(step: Step) -> dict[str, Any]:
    head: dict[str, Any] = {"processor_type": step.type}
    if step.tag:
        head["tag"] = step.tag
    if step.description:
        head["description"] = step.description
    if step.condition_source is not None:
        head["if"] = {"condition": step.condition_source, "result": True}
    return head


def run_step_on(step: Step, doc: IngestDocument) -> IngestDocument | None:
    """One step on one document (for `foreach`): the document, None when dropped; a failure raises."""
    [outcome] = _run_steps([step], [doc], None)
    if isinstance(outcome, MLSearchError):
        raise outcome
    return outcome
