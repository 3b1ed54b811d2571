"""Combine the aggregations of several indices, as OpenSearch's coordinator reduces its shards' results."""

from __future__ import annotations

from typing import Any

from mlsearch.engine.aggs.spec import Result


def merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """The aggregations of two indices' results, as one."""
    return {name: merge_one(a[name], b[name]) if name in b else a[name] for name in a}


def merge_one(a: Result, b: Result) -> Result:
    return a  # filled in below
