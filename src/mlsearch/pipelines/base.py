"""The ingest processor contract: the Processor protocol, validated configuration, and the registry of types.

A factory reads its configuration through `Config`, which raises OpenSearch's `parse_exception` errors (missing
property, wrong type, unknown keys) when the pipeline is stored, not when it first runs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from mlsearch.errors import MLSearchError, ParseError
from mlsearch.ml.predictor import PredictInput, Tensor
from mlsearch.pipelines.document import IngestDocument, java_type

if TYPE_CHECKING:
    from mlsearch.pipelines.cache import EmbeddingCache

# What a processor returns per document: the document, None when dropped, or the error that stopped it.
Outcome = IngestDocument | None | MLSearchError
_REQUIRED = object()


class Processor(Protocol):
    """One ingest processor. `execute_batch` lets model processors make one model call for many documents."""

    type: str

    def execute(self, doc: IngestDocument) -> IngestDocument | None: ...

    def execute_batch(self, docs: Sequence[IngestDocument]) -> list[Outcome]: ...


class SimpleProcessor:
    """Base for per-document processors: the batch is a loop, each document failing on its own."""

    type = "processor"

    def execute(self, doc: IngestDocument) -> IngestDocument | None:
        raise NotImplementedError

    def execute_batch(self, docs: Sequence[IngestDocument]) -> list[Outcome]:
        out: list[Outcome] = []
        for doc in docs:
            try:
                out.append(self.execute(doc))
            except MLSearchError as exc:
                out.append(exc)
        return out


class ModelClient(Protocol):
    """How processors reach models: `node.ml` satisfies it."""

    def infer(self, model_id: str, inputs: PredictInput) -> list[list[Tensor]]: ...


@dataclass
class Services:
    """What processors may use at run time; built once by the node."""

    models: ModelClient | None = None
    cache: EmbeddingCache | None = None
    # (index, id) -> the stored `_source`, or None; for `skip_existing`
    existing: Callable[[str, str], dict[str, Any] | None] | None = None
    registry: Registry | None = None


def config_error(processor_type: str | None, tag: str | None, prop: str | None, message: str) -> ParseError:
    header: dict[str, Any] = {}
    if processor_type:
        header["processor_type"] = processor_type
    if tag:
        header["processor_tag"] = tag
    if prop:
        header["property_name"] = prop
    reason = f"[{prop}] {message}" if prop else message
    return ParseError(reason, **({"header": header} if header else {}))


@dataclass
class Config:
    """A processor's configuration map, consumed key by key; `finish()` rejects what is left."""

    type: str
    raw: dict[str, Any]
    tag: str | None = None
    services: Services = field(default_factory=Services)

    def error(self, prop: str | None, message: str) -> ParseError:
        return config_error(self.type, self.tag, prop, message)

    def value(self, key: str, default: Any = _REQUIRED) -> Any:
        if key not in self.raw or self.raw[key] is None:
            self.raw.pop(key, None)
            if default is _REQUIRED:
                raise self.error(key, "required property is missing")
            return default
        return self.raw.pop(key)

    def string(self, key: str, default: Any = _REQUIRED) -> Any:
        value = self.value(key, default)
        if value is default:
            return value
        if isinstance(value, bool | int | float):
            return str(value).lower() if isinstance(value, bool) else str(value)
        if not isinstance(value, str):
            raise self.error(key, f"property isn't a string, but of type [{java_type(value)}]")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.value(key, default)
        if isinstance(value, str) and value in ("true", "false"):
            return value == "true"
        if not isinstance(value, bool):
            raise self.error(key, f"property isn't a boolean, but of type [{java_type(value)}]")
        return value

    def integer(self, key: str, default: Any = _REQUIRED) -> Any:
        value = self.value(key, default)
        if value is default:
            return value
        try:
            return int(value) if not isinstance(value, bool) and float(value) == int(float(value)) else _bad()
        except (TypeError, ValueError):
            raise self.error(key, f"property cannot be converted to an int [{value}]") from None

    def number(self, key: str, default: Any = _REQUIRED) -> Any:
        value = self.value(key, default)
        if value is default:
            return value
        try:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        except (TypeError, ValueError):
            raise self.error(key, f"property cannot be converted to a number [{value}]") from None

    def mapping(self, key: str, default: Any = _REQUIRED) -> Any:
        value = self.value(key, default)
        if value is not default and not isinstance(value, dict):
            raise self.error(key, f"property isn't a map, but of type [{java_type(value)}]")
        return value

    def strings(self, key: str, default: Any = _REQUIRED) -> Any:
        """A string or a list of strings, as a list."""
        value = self.value(key, default)
        if value is default:
            return value
        items = value if isinstance(value, list) else [value]
        if not all(isinstance(v, str) for v in items):
            raise self.error(key, f"property isn't a list of strings, but of type [{java_type(value)}]")
        return items

    def finish(self) -> None:
        if self.raw:
            raise config_error(
                self.type,
                self.tag,
                None,
                f"processor [{self.type}] doesn't support one or more provided configuration parameters "
                f"[{', '.join(self.raw)}]",
            )


def _bad() -> int:
    raise ValueError


Factory = Callable[[Config], Processor]


class Registry:
    """Ingest processor types by name; built-ins register with `@registry.register("name")`."""

    def __init__(self) -> None:
        self._factories: dict[str, Factory] = {}

    def register(self, name: str) -> Callable[[Factory], Factory]:
        def add(factory: Factory) -> Factory:
            self._factories[name] = factory
            return factory

        return add

    def names(self) -> list[str]:
        return sorted(self._factories)

    def factory(self, name: str) -> Factory:
        if name not in self._factories:
            raise ParseError(f"No processor type exists with name [{name}]", header={"processor_type": name})
        return self._factories[name]


registry = Registry()
