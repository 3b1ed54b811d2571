"""Field collapsing: keep the best hit (by the search's order) per value of a keyword or numeric field.

Shared by plain searches (`search.execute`) and hybrid ones (`hybrid_search`). Groups are paged with `from` / `size`
while `hits.total` still counts matching documents, as OpenSearch does. `inner_hits` (the simple form: `name`, `from`,
`size`, `sort`) shows each group's members, found by a second search restricted to the group."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import tantivy

from mlsearch.engine.index import Index
from mlsearch.engine.query.compile import as_filter
from mlsearch.engine.query.knn import scored_keys
from mlsearch.engine.search import (
    Hit,
    SearchRequest,
    SortKey,
    _collect,
    _hits_body,
    _order,
    _Plan,
    _sort_column,
    context_for,
    parse_sort,
)
from mlsearch.errors import IllegalArgumentError, ParsingError, SearchPhaseExecutionError

_COLLAPSE_KEYS = {"field", "inner_hits", "max_concurrent_group_searches"}
_INNER_KEYS = {"name", "from", "size", "sort"}
DEFAULT_INNER_SIZE = 3  # OpenSearch's default size of inner hits

# (index, searcher) of each searched index, by index name
Searchers = Mapping[str, tuple[Index, tantivy.Searcher]]
Plans = Mapping[str, tuple[_Plan, tantivy.Searcher]]


@dataclass(frozen=True, slots=True)
class InnerHits:
    name: str
    from_: int = 0
    size: int = DEFAULT_INNER_SIZE
    sort: tuple[SortKey, ...] = ()


@dataclass(frozen=True, slots=True)
class Collapse:
    field: str
    inner_hits: tuple[InnerHits, ...] = ()


def parse_collapse(indices: Sequence[Index], body: Mapping[str, Any]) -> Collapse | None:
    """The request's `collapse`, checked against every index's mapping (OpenSearch's messages)."""
    spec = body.get("collapse")
    if spec is None:
        return None
    if not isinstance(spec, dict) or not isinstance(spec.get("field"), str):
        raise ParsingError("[collapse] failed to parse field [field]")
    for key in spec:
        if key not in _COLLAPSE_KEYS:
            raise ParsingError(f"[collapse] unknown field [{key}]")
    if body.get("search_after") is not None:
        raise _search_error("cannot use `collapse` in conjunction with `search_after`")
    if body.get("rescore"):
        raise _search_error("cannot use `collapse` in conjunction with `rescore`")
    name = spec["field"]
    for index in indices:
        _check_field(index, name)
    return Collapse(name, _parse_inner_hits(spec.get("inner_hits")))


def _search_error(reason: str) -> SearchPhaseExecutionError:
    # OpenSearch raises a shard-level SearchException here; it carries no client-error status, so the search fails
    # with a 500 search_phase_execution_exception.
    return SearchPhaseExecutionError(
        "all shards failed", status=500, caused_by={"type": "search_exception", "reason": reason}
    )


def _check_field(index: Index, name: str) -> None:
    if index.lexical.mappings.field(name) is None:
        raise IllegalArgumentError(f"no mapping found for `{name}` in order to collapse on")
    column = index.lexical.columns.get(name)
    if column is None or column.kind not in ("keyword", "integer", "float"):
        raise IllegalArgumentError(f"unknown type for collapse field `{name}`, only keywords and numbers are accepted")


def _parse_inner_hits(spec: Any) -> tuple[InnerHits, ...]:
    if spec is None:
        return ()
    items = spec if isinstance(spec, list) else [spec]
    parsed = []
    for item in items:
        if not isinstance(item, dict):
            raise ParsingError("[inner_hits] must be an object or an array of objects")
        for key in item:
            if key not in _INNER_KEYS:
                raise IllegalArgumentError(f"[collapse] inner_hits option [{key}] is not supported")
        if not isinstance(item.get("name"), str):
            raise IllegalArgumentError("[collapse] inner_hits must have a [name]")
        size, from_ = item.get("size", DEFAULT_INNER_SIZE), item.get("from", 0)
        if not isinstance(size, int) or not isinstance(from_, int) or size < 0 or from_ < 0:
            raise IllegalArgumentError("[inner_hits] from and size must be non-negative integers")
        parsed.append(InnerHits(item["name"], from_, size, parse_sort(item.get("sort"))))
    names = [i.name for i in parsed]
    if len(set(names)) != len(names):
        raise IllegalArgumentError(f"[inner_hits] already contains an entry for key [{names[0]}]")
    return tuple(parsed)


def collapse_values(hits: Sequence[Hit], name: str, searchers: Searchers) -> dict[Hashable, Any]:
    """Each hit's value of the collapse field (None when it has none), by (index name, key)."""
    out: dict[Hashable, Any] = {}
    by_index: dict[str, list[Hit]] = {}
    for hit in hits:
        by_index.setdefault(hit.index.name, []).append(hit)
    for index_name, group in by_index.items():
        index, searcher = searchers[index_name]
        keys = [h.key for h in group]
        column = _sort_column(
            index,
            searcher,
            exactly(index, keys),
            SortKey(name, False),
            [h.addr for h in group],
            keys,
            np.zeros(len(group)),
        )
        out.update({(index_name, h.key): v for h, v in zip(group, column, strict=True)})
    return out


def exactly(index: Index, keys: Sequence[int]) -> tantivy.Query:
    """A query matching just these documents (keyword columns are read by ordering a query's matches)."""
    return scored_keys(context_for(index), np.asarray(keys, dtype=np.int64), np.zeros(len(keys), dtype=np.float32))


def first_per_value(hits: Sequence[Hit], values: Mapping[Hashable, Any]) -> list[Hit]:
    """The first hit of each value, in the given order (hits without a value form one group, as in OpenSearch)."""
    seen: set[Any] = set()
    kept = []
    for hit in hits:
        value = values[(hit.index.name, hit.key)]
        if value not in seen:
            seen.add(value)
            kept.append(hit)
    return kept


def add_collapse_fields(
    rendered: list[dict[str, Any]], page: Sequence[Hit], name: str, values: Mapping[Hashable, Any]
) -> None:
    """`fields.<collapse field>` of each rendered hit, as OpenSearch returns it (a missing value is [])."""
    by_id: dict[tuple[str, str], Any] = {}
    for hit in page:
        doc = hit.index.store.by_keys([hit.key], with_source=False).get(hit.key)
        if doc is not None:
            by_id[(hit.index.name, doc.id)] = values[(hit.index.name, hit.key)]
    for item in rendered:
        value = by_id.get((item["_index"], item.get("_id", "")))
        item.setdefault("fields", {})[name] = [] if value is None else [value]


def members(hits: Sequence[Hit], values: Mapping[Hashable, Any]) -> dict[Any, dict[str, list[int]]]:
    """The keys of each group's members, by value then index name (what inner_hits searches)."""
    groups: dict[Any, dict[str, list[int]]] = {}
    for hit in hits:
        value = values[(hit.index.name, hit.key)]
        groups.setdefault(value, {}).setdefault(hit.index.name, []).append(hit.key)
    return groups


@dataclass(slots=True)
class CollapsedPage:
    """One page of group leaders, each hit's collapse value and (for inner_hits) each group's members."""

    hits: list[Hit]
    values: dict[Hashable, Any]
    groups: dict[Any, dict[str, list[int]]]


def collapse_page(collapse: Collapse, hits: list[Hit], req: SearchRequest, searchers: Searchers) -> CollapsedPage:
    """The page `from` / `size` of the collapsed list of every match (`hits` holds every match of every index)."""
    ordered = _order(hits, replace(req, from_=0, size=len(hits)))
    values = collapse_values(ordered, collapse.field, searchers)
    page = first_per_value(ordered, values)[req.from_ : req.from_ + req.size]
    return CollapsedPage(page, values, members(ordered, values) if collapse.inner_hits else {})


def decorate(
    rendered: list[dict[str, Any]],
    page: CollapsedPage,
    collapse: Collapse,
    req: SearchRequest,
    plans: Plans,
    searchers: Searchers,
) -> None:
    """Add the collapse field's value and the inner hits of each rendered group leader."""
    add_collapse_fields(rendered, page.hits, collapse.field, page.values)
    if not collapse.inner_hits:
        return
    indices = {name: index for name, (index, _) in searchers.items()}
    for item in rendered:
        value = _first(item["fields"][collapse.field])
        group = page.groups.get(value, {})
        found = {spec.name: _inner_hits(spec, group, indices, req, plans) for spec in collapse.inner_hits}
        item.setdefault("inner_hits", {}).update(found)


def _first(values: list[Any]) -> Any:
    return values[0] if values else None


def _inner_hits(
    spec: InnerHits, group: dict[str, list[int]], indices: Mapping[str, Index], req: SearchRequest, plans: Plans
) -> dict[str, Any]:
    """One group's members, searched again with the inner hits' sort and paging."""
    inner_req = replace(
        req, sort=spec.sort, from_=spec.from_, size=spec.size, search_after=None, explain=False, track_total_hits=True
    )
    found: list[Hit] = []
    inner_plans: dict[str, tuple[_Plan, tantivy.Searcher]] = {}
    for name, keys in group.items():
        plan, searcher = plans[name]
        index = indices[name]
        restricted = tantivy.Query.boolean_query(
            [(tantivy.Occur.Must, plan.hits_query), (tantivy.Occur.Must, as_filter(exactly(index, keys)))]
        )
        inner_plan = _Plan(plan.query, restricted, plan.rescorer)
        inner_plans[name] = (inner_plan, searcher)
        found.extend(_collect(index, searcher, inner_plan, inner_req, spec.from_ + spec.size)[1])
    total = sum(len(keys) for keys in group.values())
    page = _order(found, inner_req)[spec.from_ : spec.from_ + spec.size]
    return {"hits": _hits_body(page, total, inner_req, inner_plans)}
