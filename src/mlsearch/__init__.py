"""mlsearch: a search engine with machine learning built in, speaking OpenSearch's REST API."""

__version__ = "0.1.0"
# The OpenSearch API level this server implements; clients read it from `GET /`.
API_LEVEL = "3.1.0"
