"""Route tables, one module per API family; specific `_` paths come before `/{index}` patterns."""

from __future__ import annotations

from starlette.routing import Route

from mlsearch.api.routes import (
    analyze,
    bulk,
    by_query,
    cat,
    cluster,
    documents,
    indices,
    ingest,
    knn,
    ml_agents,
    ml_connectors,
    ml_memory,
    ml_model_groups,
    ml_models,
    ml_profile,
    ml_tasks,
    ml_train,
    scroll,
    search,
    search_pipeline,
)


def all_routes() -> list[Route]:
    return [
        *cluster.routes(),
        *cat.routes(),
        *analyze.routes(),
        *ingest.routes(),
        *knn.routes(),
        *ml_model_groups.routes(),
        *ml_connectors.routes(),
        *ml_agents.routes(),
        *ml_train.routes(),
        *ml_models.routes(),
        *ml_tasks.routes(),
        *ml_profile.routes(),
        *ml_memory.routes(),
        *search_pipeline.routes(),
        *scroll.routes(),
        *search.routes(),
        *bulk.routes(),
        *by_query.routes(),
        *documents.routes(),
        *indices.routes(),
    ]
