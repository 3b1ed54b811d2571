"""Built-in ingest processors; importing this package registers them all."""

from mlsearch.pipelines.ingest import (  # noqa: F401
    fields,
    ml_inference,
    sparse_encoding,
    text_chunking,
    text_embedding,
    text_image_embedding,
    values,
)
