"""Connectors to externally hosted models: HTTP executor, request templates, pre/post-process functions, signing."""
