"""Ingest pipelines: the processor contract and registry (base), pipeline parsing and running (runner), stored
pipelines (store), the embedding cache (cache), and the built-in processors (ingest/)."""
