"""Connectors to externally hosted models: the connector object, request templates, pre/post functions, the HTTP
executor, trusted endpoints, and remote models (a Predictor over a connector)."""
