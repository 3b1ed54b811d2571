"""Field processors: set, remove, rename, append, copy, drop, fail, foreach."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from mlsearch.errors import FailProcessorError, IllegalArgumentError
from mlsearch.pipelines.base import Config, SimpleProcessor, registry
from mlsearch.pipelines.document import IngestDocument
from mlsearch.pipelines.template import render


def _empty(value: Any) -> bool:
    return value is None or value == ""


@dataclass
class SetProcessor(SimpleProcessor):
    field: str
    value: Any
    copy_from: str | None
    override: bool
    ignore_empty_value: bool
    type = "set"

    def execute(self, doc: IngestDocument) -> IngestDocument:
        path = render(self.field, doc)
        if not self.override and doc.get(path, None) is not None:
            return doc
        value = copy.deepcopy(doc.get(self.copy_from)) if self.copy_from else render(copy.deepcopy(self.value), doc)
        if self.ignore_empty_value and _empty(value):
            return doc
        doc.set(path, value)
        return doc


@registry.register("set")
def _set(config: Config) -> SetProcessor:
    field = config.string("field")
    copy_from = config.string("copy_from", None)
    value = config.value("value", None)
    if copy_from is not None and value is not None:
        raise config.error("copy_from", "cannot set both `copy_from` and `value` in the same processor")
    if copy_from is None and value is None:
        raise config.error("value", "required property is missing")
    return SetProcessor(
        field, value, copy_from, config.boolean("override", True), config.boolean("ignore_empty_value", False)
    )


@dataclass
class RemoveProcessor(SimpleProcessor):
    fields: list[str]
    ignore_missing: bool
    type = "remove"

    def execute(self, doc: IngestDocument) -> IngestDocument:
        for field in self.fields:
            path = render(field, doc)
            if self.ignore_missing and not doc.has(path):
                continue
            doc.remove(path)
        return doc


@registry.register("remove")
def _remove(config: Config) -> RemoveProcessor:
    return RemoveProcessor(config.strings("field"), config.boolean("ignore_missing", False))


@dataclass
class RenameProcessor(SimpleProcessor):
    field: str
    target_field: str
    ignore_missing: bool
    type = "rename"

    def execute(self, doc: IngestDocument) -> IngestDocument:
        if not doc.has(self.field):
            if self.ignore_missing:
                return doc
            raise IllegalArgumentError(f"field [{self.field}] doesn't exist")
        if doc.has(self.target_field):
            raise IllegalArgumentError(f"field [{self.target_field}] already exists")
        doc.set(self.target_field, doc.remove(self.field))
        return doc


@registry.register("rename")
def _rename(config: Config) -> RenameProcessor:
    return RenameProcessor(
        config.string("field"), config.string("target_field"), config.boolean("ignore_missing", False)
    )


@dataclass
class CopyProcessor(SimpleProcessor):
    source_field: str
    target_field: str
    ignore_missing: bool
    override: bool
    remove_source: bool
    type = "copy"

    def execute(self, doc: IngestDocument) -> IngestDocument:
        source, target = render(self.source_field, doc), render(self.target_field, doc)
        if not doc.has(source):
            if self.ignore_missing:
                return doc
            raise IllegalArgumentError(f"source field [{source}] doesn't exist")
        if doc.has(target) and not self.override:
            raise IllegalArgumentError(f"target field [{target}] already exists")
        value = copy.deepcopy(doc.get(source))
        if self.remove_source:
            doc.remove(source)
        doc.set(target, value)
        return doc


@registry.register("copy")
def _copy(config: Config) -> CopyProcessor:
    return CopyProcessor(
        config.string("source_field"),
        config.string("target_field"),
        config.boolean("ignore_missing", False),
        config.boolean("override", False),
        config.boolean("remove_source", False),
    )


@dataclass
class AppendProcessor(SimpleProcessor):
    field: str
    value: Any
    allow_duplicates: bool
    type = "append"

    def execute(self, doc: IngestDocument) -> IngestDocument:
        path = render(self.field, doc)
        values = render(copy.deepcopy(self.value), doc)
        values = values if isinstance(values, list) else [values]
        if not self.allow_duplicates:
            current = doc.get(path, None)
            existing = current if isinstance(current, list) else ([] if current is None else [current])
            values = [v for v in values if v not in existing]
            if not values and current is not None:
                return doc
        doc.set(path, values, append=True)
        return doc


@registry.register("append")
def _append(config: Config) -> AppendProcessor:
    return AppendProcessor(config.string("field"), config.value("value"), config.boolean("allow_duplicates", True))


class DropProcessor(SimpleProcessor):
    type = "drop"

    def execute(self, doc: IngestDocument) -> None:
        return None


@registry.register("drop")
def _drop(config: Config) -> DropProcessor:
    return DropProcessor()


@dataclass
class FailProcessor(SimpleProcessor):
    message: str
    type = "fail"

    def execute(self, doc: IngestDocument) -> IngestDocument:
        raise FailProcessorError(render(self.message, doc))


@registry.register("fail")
def _fail(config: Config) -> FailProcessor:
    return FailProcessor(config.string("message"))


@dataclass
class ForeachProcessor(SimpleProcessor):
    """Runs one processor on each element of an array (or each value of a map) exposed as `_ingest._value`."""

    field: str
    inner: Any  # a runner Step
    ignore_missing: bool
    type = "foreach"

    def execute(self, doc: IngestDocument) -> IngestDocument | None:
        from mlsearch.pipelines.runner import run_step_on

        values = doc.get(self.field, None)
        if values is None:
            if self.ignore_missing:
                return doc
            raise IllegalArgumentError(f"field [{self.field}] not present as part of path [{self.field}]")
        if not isinstance(values, list | dict):
            raise IllegalArgumentError(
                f"field [{self.field}] of type [{type(values).__name__}] cannot be cast to a list"
            )
        previous = doc.ingest.get("_value")
        items = list(values.items()) if isinstance(values, dict) else list(enumerate(values))
        out: Any = {} if isinstance(values, dict) else []
        for key, value in items:
            doc.ingest["_value"] = value
            result = run_step_on(self.inner, doc)
            if result is None:
                return None
            if isinstance(out, dict):
                out[key] = doc.ingest["_value"]
            else:
                out.append(doc.ingest["_value"])
        doc.ingest.pop("_value", None)
        if previous is not None:
            doc.ingest["_value"] = previous
        doc.set(self.field, out)
        return doc


@registry.register("foreach")
def _foreach(config: Config) -> ForeachProcessor:
    from mlsearch.pipelines.runner import parse_step

    field = config.string("field")
    ignore_missing = config.boolean("ignore_missing", False)
    inner = config.mapping("processor")
    if len(inner) != 1:
        raise config.error("processor", "Must specify exactly one processor type")
    assert config.services.registry is not None
    [(type_name, conf)] = inner.items()
    step = parse_step(type_name, conf, config.services.registry, config.services)
    return ForeachProcessor(field, step, ignore_missing)
