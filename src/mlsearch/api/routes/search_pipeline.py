"""Search pipeline API (`/_search/pipeline`) and how a search request finds and applies its pipeline."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mlsearch.api._request import json_body
from mlsearch.api.render import json_response
from mlsearch.api.routes._common import blocking, node_of
from mlsearch.engine.index import Index
from mlsearch.errors import IllegalArgumentError, ParseError
from mlsearch.ml.predictor import PredictInput
from mlsearch.node import Node
from mlsearch.pipelines.search import SearchContext, SearchPipeline, build_pipeline

NONE = "_none"
DEFAULT_SETTING = "index.search.default_pipeline"
_INLINE_ID = "_ad_hoc_pipeline"


async def put_pipeline(request: Request) -> Response:
    body = await json_body(request, required=True, error=ParseError)
    pipeline_id = request.path_params["id"]
    await blocking(node_of(request).search_pipelines.put, pipeline_id, body)
    return json_response({"acknowledged": True}, request=request)


async def get_pipeline(request: Request) -> Response:
    pattern = request.path_params.get("id")
    found = node_of(request).search_pipelines.definitions(pattern)
    if pattern and not found:
        return json_response({}, 404, request=request)
    return json_response(found, request=request)


async def delete_pipeline(request: Request) -> Response:
    await blocking(node_of(request).search_pipelines.delete, request.path_params["id"])
    return json_response({"acknowledged": True}, request=request)


def routes() -> list[Route]:
    return [
        Route("/_search/pipeline", get_pipeline, methods=["GET"]),
        Route("/_search/pipeline/{id}", get_pipeline, methods=["GET"]),
        Route("/_search/pipeline/{id}", put_pipeline, methods=["PUT"]),
        Route("/_search/pipeline/{id}", delete_pipeline, methods=["DELETE"]),
    ]


# ---- applying a pipeline to a search --------------------------------------------------------------------------


def resolve(node: Node, param: str | None, body: dict[str, Any], indices: Sequence[Index]) -> SearchPipeline | None:
    """The pipeline of a search: an inline one in the body, else `?search_pipeline` (or the body's id), else the
    targeted indices' shared `index.search.default_pipeline`; `_none` means none."""
    inline = body.get("search_pipeline")
    if isinstance(inline, dict):
        return build_pipeline(_INLINE_ID, inline)
    pipeline_id = param if param is not None else inline
    if pipeline_id is None:
        defaults = {str(index.setting(DEFAULT_SETTING, NONE) or NONE) for index in indices}
        pipeline_id = defaults.pop() if len(defaults) == 1 else NONE
    if pipeline_id == NONE:
        return None
    pipeline = node.search_pipelines.find(str(pipeline_id))
    if pipeline is None:
        raise IllegalArgumentError(f"Pipeline {pipeline_id} is not defined")
    return pipeline


def context_for(node: Node, body: dict[str, Any]) -> SearchContext:
    """A search context whose processors reach models through the ML service (cross-encoder `similarity`, LLM
    `generate`) and the node's conversation memory."""

    def similarity(model_id: str, query_text: str, texts: Sequence[str]) -> list[float]:
        # A local model of another function would answer with embeddings or tokens: say what is wrong instead.
        function_name = node.ml.model_function(model_id)
        if function_name not in ("TEXT_SIMILARITY", "REMOTE"):
            raise IllegalArgumentError(
                f"model [{model_id}] is a [{function_name}] model: rerank [ml_opensearch] needs a TEXT_SIMILARITY model"
            )
        results = node.ml.infer(model_id, PredictInput(text_docs=list(texts), query_text=query_text))
        scores = [
            float(t.data.ravel()[0])
            for outputs in results
            for t in outputs
            if t.name == "similarity" and t.data is not None
        ]
        if len(scores) != len(texts):
            raise IllegalArgumentError(f"model [{model_id}] did not return one similarity score per document")
        return scores

    def generate(model_id: str, parameters: dict[str, Any]) -> dict[str, Any]:
        results = node.ml.infer(model_id, PredictInput(parameters=parameters))
        first = results[0][0] if results and results[0] else None
        if first is None or first.data_as_map is None:
            raise IllegalArgumentError(f"model [{model_id}] did not return a response map")
        return first.data_as_map

    return SearchContext(
        request=body,
        similarity=similarity,
        generate=generate,
        memory=node.memory,
        setting=node.cluster_settings.get,
    )
