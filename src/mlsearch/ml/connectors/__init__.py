"""Connectors to externally hosted models: the connector object, request templates, pre/post functions, the HTTP
executor, trusted endpoints, Painless scripts, SigV4 signing, and remote models (a Predictor over a connector)."""
