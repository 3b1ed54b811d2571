"""Build the ML service of a node: records on the node's indices, artefacts under `<data_dir>/models`, the classic
algorithms over the same registry and tasks, and the model runtimes and pretrained catalog (built-in, or named by the
`ml_runtime` / `ml_catalog` settings as module:callable)."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from typing import Any

from mlsearch.config import Settings
from mlsearch.engine.indices import Indices
from mlsearch.errors import IllegalArgumentError
from mlsearch.ml.artefacts import ArtefactStore
from mlsearch.ml.predictor import Runtime
from mlsearch.ml.service import Catalog, MLService, PretrainedArtefact
from mlsearch.ml.system_indices import SystemIndices
from mlsearch.ml.training import ClassicML

log = logging.getLogger(__name__)


def build_ml_service(settings: Settings, indices: Indices, setting: Callable[[str], Any], node_id: str) -> MLService:
    """The ML service, with the classic algorithms sharing its model registry, task service and stats."""
    service = MLService(
        records=SystemIndices(indices),
        artefacts=ArtefactStore(settings.data_dir / "models"),
        runtime_for=_runtime_for(settings.ml_runtime),
        catalog=_catalog(settings.ml_catalog),
        setting=setting,
        node_id=node_id,
        workers=settings.ml_task_workers,
    )
    service.classic = ClassicML(indices, service.registry, service.tasks, service.stats)
    return service


def load_callable(spec: str) -> Callable[..., Any]:
    """`package.module:name` -> the object it names."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ValueError(f"expected module:callable, got [{spec}]")
    return getattr(importlib.import_module(module_name), attr)


def _runtime_for(spec: str) -> Callable[[str], Runtime]:
    if spec:
        return load_callable(spec)
    try:
        from mlsearch.ml.runtimes import runtime_for  # type: ignore[attr-defined]
    except ImportError:
        return _no_runtime
    return runtime_for  # type: ignore[no-any-return]


def _no_runtime(model_format: str) -> Runtime:
    raise IllegalArgumentError(f"No runtime is available for model format [{model_format}] on this node")


def _catalog(spec: str) -> Catalog:
    if spec:
        return load_callable(spec)
    try:
        from mlsearch.ml.catalog import find_pretrained  # type: ignore[attr-defined]
    except ImportError:
        return _empty_catalog
    return find_pretrained  # type: ignore[no-any-return]


def _empty_catalog(name: str, version: str | None, model_format: str) -> PretrainedArtefact | None:
    return None
