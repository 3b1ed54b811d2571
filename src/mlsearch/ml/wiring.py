"""Build the ML service of a node: records on the node's indices, artefacts under `<data_dir>/models`, the classic
algorithms over the same registry and tasks, and the model runtimes and pretrained catalog (built-in, or named by the
`ml_runtime` / `ml_catalog` settings as module:callable).

Every deployed predictor sits behind a DynamicBatcher: concurrent predict calls to one model are merged into one
length-sorted batch on the model's own worker thread, instead of running the model side by side on the same cores."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from mlsearch.config import Settings
from mlsearch.engine.indices import Indices
from mlsearch.errors import IllegalArgumentError
from mlsearch.ml import catalog as pretrained
from mlsearch.ml.artefacts import ArtefactStore
from mlsearch.ml.batching import DynamicBatcher
from mlsearch.ml.predictor import ModelConfig, Predictor, Runtime
from mlsearch.ml.service import Catalog, MLService, PretrainedArtefact
from mlsearch.ml.system_indices import SystemIndices
from mlsearch.ml.training import ClassicML
from mlsearch.security.secrets import SecretBox

log = logging.getLogger(__name__)


def build_ml_service(settings: Settings, indices: Indices, setting: Callable[[str], Any], node_id: str) -> MLService:
    """The ML service, with the classic algorithms sharing its model registry, task service and stats."""
    service = MLService(
        records=SystemIndices(indices),
        artefacts=ArtefactStore(settings.data_dir / "models"),
        runtime_for=_runtime_for(settings),
        catalog=_catalog(settings),
        setting=setting,
        node_id=node_id,
        workers=settings.ml_task_workers,
        export_dir=settings.resolved_cache_dir() / "exports",
        secrets=SecretBox(settings.data_dir, settings.master_key or None),
    )
    service.classic = ClassicML(indices, service.registry, service.tasks, service.stats)
    return service


def load_callable(spec: str) -> Callable[..., Any]:
    """`package.module:name` -> the object it names."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ValueError(f"expected module:callable, got [{spec}]")
    return getattr(importlib.import_module(module_name), attr)


class BatchedRuntime:
    """A runtime whose predictors are wrapped in a DynamicBatcher (closed, with the model, on undeploy/shutdown).

    `validate` loads a freshly registered artefact once and frees it, so that a model which cannot run (say, an output
    width other than model_config.embedding_dimension) fails its register task instead of leaving a record that can
    only ever fail to deploy. Only the built-in runtimes validate: plugged-in ones (tests' fakes, external servers)
    decide at deploy time."""

    def __init__(self, inner: Runtime, *, batch_size: int, wait_ms: float, validates: bool) -> None:
        self._inner = inner
        self._batch_size = batch_size
        self._wait_ms = wait_ms
        self._validates = validates

    def load(self, model_dir: Path, function_name: str, config: ModelConfig) -> Predictor:
        predictor = self._inner.load(model_dir, function_name, config)
        name = model_dir.parent.name[:12] or "model"
        return DynamicBatcher(predictor, max_batch_size=self._batch_size, max_wait_ms=self._wait_ms, name=name)

    def validate(self, model_dir: Path, function_name: str, config: ModelConfig) -> None:
        if self._validates:
            self._inner.load(model_dir, function_name, config).close()


def _runtime_for(settings: Settings) -> Callable[[str], Runtime]:
    if settings.ml_runtime:
        inner, validates = load_callable(settings.ml_runtime), False
    else:
        from mlsearch.ml.runtimes import RuntimeOptions, get_runtime

        options = RuntimeOptions(onnx_backend=settings.ml_onnx_backend)  # a bad value stops the node at start-up
        inner, validates = partial(get_runtime, options=options), True

    def runtime_for(model_format: str) -> Runtime:
        return BatchedRuntime(
            inner(model_format),
            batch_size=settings.ml_batch_size,
            wait_ms=settings.ml_batch_wait_ms,
            validates=validates,
        )

    return runtime_for


def _catalog(settings: Settings) -> Catalog:
    if settings.ml_catalog:
        return load_callable(settings.ml_catalog)
    cache_dir = settings.resolved_cache_dir()
    base_url = settings.ml_artifact_base_url

    def find_pretrained(name: str, version: str | None, model_format: str) -> PretrainedArtefact | None:
        """OpenSearch's pretrained list resolved to a zip on this node (cached, converted locally, or downloaded)."""
        try:
            pretrained.get_pretrained(name, version, model_format)
        except IllegalArgumentError:
            return None  # the register task fails with OpenSearch's "not in the pre-trained model list"
        got = pretrained.obtain(name, version, model_format, cache_dir=cache_dir, base_url=base_url)
        return PretrainedArtefact(
            source=str(got.path),
            model_config=got.model_config,
            function_name=got.model.function_name,
            content_hash=got.sha256,
            description=got.model.description,
        )

    return find_pretrained
