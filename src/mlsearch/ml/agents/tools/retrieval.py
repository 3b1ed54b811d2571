"""Retrieval tools: VectorDBTool (neural), NeuralSparseSearchTool, SearchIndexTool (any DSL) and RAGTool
(retrieve, then generate with a model). Hits are rendered as ML Commons' skills do: one JSON object per hit
(`_index`, `_source`, `_id`, `_score`), a line each."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson

from mlsearch.errors import IllegalArgumentError
from mlsearch.ml.agents.tools import ToolContext, fill, int_param, json_param, required, tool
from mlsearch.ml.agents.tools.models import model_answer

NO_MATCH = "Can not get any match from search result."
_SEARCH_SCHEMA = (
    '{"type":"object","properties":{"index":{"type":"string","description":"OpenSearch index name. Example: index1"},'
    '"query":{"type":"object","description":"OpenSearch Query DSL as a JSON object. You need to get index mapping to '
    "write correct search query. The object MUST follow OpenSearch Query DSL and MUST include a top-level 'query' "
    'field. Preferred format for reliable parsing. Example: {\\"query\\":{\\"match\\":{\\"field\\":'
    '\\"value\\"}},\\"size\\":10}. String format is also supported for backward compatibility, but object '
    'format is strongly recommended."}},"required":["index","query"],"additionalProperties":false}'
)
_RAG_PROMPT = (
    "\n\nHuman:You are a professional data analyst. You will always answer question based on the given context "
    "first. If the answer is not directly shown in the context, you will analyze the data and find the answer. "
    "If you don't know the answer, just say don't know. \n\n Context:\n${parameters.output_field}\n\n"
    "Human:${parameters.question}\n\nAssistant:"
)


def render_hits(response: dict[str, Any]) -> str:
    hits = response["hits"]["hits"]
    if not hits:
        return NO_MATCH
    lines = []
    for hit in hits:
        doc = {
            "_index": hit["_index"],
            "_source": hit.get("_source"),
            "_id": hit["_id"],
            "_score": _score(hit["_score"]),
        }
        lines.append(orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY).decode())
    return "\n".join(lines) + "\n"


def _score(value: Any) -> np.float32 | None:
    # Lucene scores are Java floats, which the skills' gson writes in float32's shortest form (0.8173238).
    return None if value is None else np.float32(value)


def _source_fields(params: dict[str, str]) -> list[str] | None:
    value = json_param(params, "source_field")
    if value is None:
        return None
    return [value] if isinstance(value, str) else [str(v) for v in value]


def _retrieve(params: dict[str, str], ctx: ToolContext, query_type: str, model_key: str = "model_id") -> str:
    return render_hits(_search(params, ctx, query_type, model_key))


def _search(params: dict[str, str], ctx: ToolContext, query_type: str, model_key: str) -> dict[str, Any]:
    """The skills' AbstractRetrieverTool request: `input` as the query text of a neural / neural_sparse query."""
    text = required(params, "input", "retriever")
    field, model_id = params.get("embedding_field", ""), params.get(model_key, "")
    if not field.strip() or not model_id.strip():
        raise IllegalArgumentError(f"Parameter [embedding_field] and [{model_key}] can not be null or empty.")
    index = required(params, "index", "retriever")
    clause: dict[str, Any] = {"query_text": text, "model_id": model_id}
    if query_type == "neural":
        clause["k"] = int_param(params, "k", 10)
    query: dict[str, Any] = {query_type: {field: clause}}
    if params.get("nested_path"):
        query = {"nested": {"path": params["nested_path"], "query": query, "score_mode": "max"}}
    body: dict[str, Any] = {"query": query, "size": int_param(params, "doc_size", 2)}
    fields = _source_fields(params)
    if fields is not None:
        body["_source"] = fields
    return ctx.search(index, body)


@tool("VectorDBTool", "Use this tool to perform knn-based dense retrieval. It takes an 'input' argument (natural "
      "language query string). Optionally accepts 'index' (index name) and 'embedding_field' (knn_vector field name) "
      "to override registered defaults. The tool returns the dense retrieval results for the query.")  # fmt: skip
def vector_db(params: dict[str, str], ctx: ToolContext) -> str:
    return _retrieve(params, ctx, "neural")


@tool("NeuralSparseSearchTool", "Use this tool to search data in OpenSearch index.")
def neural_sparse(params: dict[str, str], ctx: ToolContext) -> str:
    return _retrieve(params, ctx, "neural_sparse")


@tool(
    "SearchIndexTool",
    "Use this tool to search an index by providing two parameters: 'index' for the index name, and 'query' for the "
    "OpenSearch DSL formatted query. Only use this tool when both index name and DSL query is available. Returns "
    "documents matching the query in the provided index.",
    {"input_schema": _SEARCH_SCHEMA, "strict": True},
)
def search_index(params: dict[str, str], ctx: ToolContext) -> str:
    request = _search_input(params)
    index = request.get("index")
    if not isinstance(index, str) or not index:
        raise IllegalArgumentError("SearchIndexTool's two parameters: index and query are required!")
    query = request.get("query")
    if isinstance(query, str):
        query = orjson.loads(query)
    body = query if isinstance(query, dict) else {}
    if "query" not in body and body and not set(body) & {"size", "aggs", "_source", "sort", "from"}:
        body = {"query": body}  # a bare query clause
    return render_hits(ctx.search(index, body))


def _search_input(params: dict[str, str]) -> dict[str, Any]:
    raw = params.get("input")
    if raw:
        try:
            parsed = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise IllegalArgumentError(f"Invalid input for SearchIndexTool: {raw}") from None
        if isinstance(parsed, dict):
            return parsed
    return {"index": params.get("index"), "query": json_param(params, "query")}


def rag_context(response: dict[str, Any]) -> str:
    """The context RAGTool gives the LLM, as the skills plugin writes it: `_id: <id>` and `_source: <json>` lines
    per hit, the whole JSON-quoted (gson); nothing when no document matched."""
    hits = response["hits"]["hits"]
    if not hits:
        return ""
    text = "".join(f"_id: {hit['_id']}\n_source: {orjson.dumps(hit.get('_source')).decode()}\n" for hit in hits)
    return orjson.dumps(text).decode()


@tool("RAGTool", "Use this tool to retrieve helpful information to optimize the output of the large language "
      "model to answer questions.")  # fmt: skip
def rag(params: dict[str, str], ctx: ToolContext) -> Any:
    query_type = params.get("query_type", "neural").lower()
    if query_type not in ("neural", "neural_sparse"):
        raise IllegalArgumentError(f"Failed to read queryType, please input `neural_sparse` or `neural`: {query_type}")
    found = _search(params, ctx, query_type, "embedding_model_id")
    if str(params.get("enable_Content_Generation", "true")).lower() == "false":
        return render_hits(found)
    question = params.get("question") or params["input"]
    values = {**params, "question": question, "output_field": rag_context(found)}
    prompt = fill(params.get("prompt", _RAG_PROMPT), values)
    inference_id = required(params, "inference_model_id", "RAGTool")
    return model_answer(ctx, inference_id, {**values, "prompt": prompt}, params.get("response_field", "response"))
