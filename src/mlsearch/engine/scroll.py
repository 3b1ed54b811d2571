"""Scroll contexts: a search run once on the snapshot of its first request, its ordered hits served page by page.

The first request collects every match of every index (in the request's order) and keeps that list, with the
searchers it came from; later pages render slices of it, reading `_source` from the store at that time. So pages
see the membership, order and totals of the first request: documents written later never appear. A document
deleted since is skipped (the store no longer has its source) and the page is filled from the next hits instead, so
that an empty page still means the end.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import tantivy

from mlsearch.engine.index import Index
from mlsearch.engine.query.compile import count_matches
from mlsearch.engine.query.hybrid import Hybrid
from mlsearch.engine.search import (
    AggRunner,
    Hit,
    SearchRequest,
    _collect,
    _hits_body,
    _merge_aggs,
    _order,
    _Plan,
    _plan,
    _second_phase,
    _terminate_after,
    context_for,
)
from mlsearch.engine.settings import seconds, time_value
from mlsearch.errors import (
    ActionRequestValidationError,
    IllegalArgumentError,
    MLSearchError,
    RejectedExecutionError,
    SearchContextMissingError,
    SearchPhaseExecutionError,
    ShardFailuresError,
)

DEFAULT_MAX_OPEN = 500
DEFAULT_MAX_KEEP_ALIVE = "24h"
_ID_PREFIX = "mlsearch-scroll"
Setting = Callable[[str], Any]


@dataclass(slots=True)
class ScrollContext:
    """One open scroll: the ordered hits of its first request and how far the client has read them."""

    number: int
    token: str
    indices: tuple[Index, ...]
    req: SearchRequest
    hits: list[Hit]
    total: int
    plans: dict[str, tuple[_Plan, tantivy.Searcher]]
    keep_alive: float
    expires: float
    cursor: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def scroll_id(self) -> str:
        raw = f"{_ID_PREFIX}:{self.number}:{self.token}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")


class Scrolls:
    """The node's open scroll contexts, bounded by `search.max_open_scroll_context` and freed when they expire."""

    def __init__(self, setting: Setting | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self._setting = setting
        self._clock = clock
        self._lock = threading.Lock()
        self._contexts: dict[int, ScrollContext] = {}
        self._numbers = itertools.count(1)

    # ---- the search API ------------------------------------------------------------------------------------

    def open(
        self,
        indices: Sequence[Index],
        req: SearchRequest,
        keep_alive: str,
        params: dict[str, str] | None = None,
        aggs_runner: AggRunner | None = None,
    ) -> dict[str, Any]:
        """Run `req` as a scroll search: the first page, with its `_scroll_id`."""
        started = time.perf_counter()
        req = _validated(req, params or {})
        alive = self._keep_alive(keep_alive)
        self._check_window(indices, req.size)
        number = self._reserve()
        try:
            hits, total, plans, aggregations = _run_all(indices, req, aggs_runner)
        except BaseException:
            self._release(number)
            raise
        ctx = ScrollContext(
            number, secrets.token_hex(8), tuple(indices), req, hits, total, plans, alive, self._clock() + alive
        )
        with self._lock:
            self._contexts[number] = ctx
        response = self._page(ctx, started)
        if aggregations is not None:
            response["aggregations"] = aggregations
        return response

    def next(
        self, scroll_id: str, keep_alive: str | None = None, is_open: Callable[[Index], bool] | None = None
    ) -> dict[str, Any]:
        """The next page of an open scroll (`keep_alive`, when given, replaces the context's)."""
        started = time.perf_counter()
        alive = None if keep_alive is None else self._keep_alive(keep_alive)
        ctx = self._find(scroll_id)
        if is_open is not None and not all(is_open(index) for index in ctx.indices):
            # the index was deleted or closed: its contexts go with it, as in OpenSearch
            self._release(ctx.number)
            raise _missing(ctx.number)
        if alive is not None:
            ctx.keep_alive = alive
        return self._page(ctx, started)

    def clear(self, scroll_ids: Sequence[str]) -> int:
        """Free the named contexts; how many were open (unknown or expired ids count for nothing)."""
        numbers = [_parse_id(scroll_id)[0] for scroll_id in scroll_ids]  # every id parses, or nothing is freed
        freed = 0
        with self._lock:
            self._expire_locked()
            for scroll_id, number in zip(scroll_ids, numbers, strict=True):
                ctx = self._contexts.get(number)
                if ctx is not None and ctx is not _PLACEHOLDER and ctx.token == _parse_id(scroll_id)[1]:
                    del self._contexts[number]
                    freed += 1
        return freed

    def clear_all(self) -> int:
        with self._lock:
            self._expire_locked()
            # contexts whose first search is still running stay counted; they are freed when they expire
            opened = [n for n, c in self._contexts.items() if c is not _PLACEHOLDER]
            for number in opened:
                del self._contexts[number]
        return len(opened)

    def open_count(self) -> int:
        with self._lock:
            self._expire_locked()
            return sum(1 for c in self._contexts.values() if c is not _PLACEHOLDER)

    # ---- internals -------------------------------------------------------------------------------------------

    def _page(self, ctx: ScrollContext, started: float) -> dict[str, Any]:
        with ctx.lock:
            hits = _next_hits(ctx)
            ctx.expires = self._clock() + ctx.keep_alive
        if ctx.keep_alive <= 0:
            self._release(ctx.number)
        n = len(ctx.indices)
        return {
            "_scroll_id": ctx.scroll_id,
            "took": int((time.perf_counter() - started) * 1000),
            "timed_out": False,
            "_shards": {"total": n, "successful": n, "skipped": 0, "failed": 0},
            "hits": hits,
        }

    def _find(self, scroll_id: str) -> ScrollContext:
        number, token = _parse_id(scroll_id)
        with self._lock:
            self._expire_locked()
            ctx = self._contexts.get(number)
        if ctx is None or ctx is _PLACEHOLDER or ctx.token != token:
            raise _missing(number)
        return ctx

    def _reserve(self) -> int:
        """A context number, counted against the limit while its search runs."""
        limit = int(self._get("search.max_open_scroll_context", DEFAULT_MAX_OPEN))
        with self._lock:
            self._expire_locked()
            if len(self._contexts) >= limit:
                raise ShardFailuresError(
                    RejectedExecutionError(
                        f"Trying to create too many scroll contexts. Must be less than or equal to: [{limit}]. "
                        f"This limit can be set by changing the [search.max_open_scroll_context] setting."
                    )
                )
            number = next(self._numbers)
            self._contexts[number] = _PLACEHOLDER
        return number

    def _release(self, number: int) -> None:
        with self._lock:
            self._contexts.pop(number, None)

    def _expire_locked(self) -> None:
        now = self._clock()
        expired = [n for n, c in self._contexts.items() if c is not _PLACEHOLDER and c.expires <= now]
        for number in expired:
            del self._contexts[number]

    def _keep_alive(self, value: str) -> float:
        alive = seconds(time_value("scroll", value))
        limit_text = str(self._get("search.max_keep_alive", DEFAULT_MAX_KEEP_ALIVE))
        if alive > seconds(limit_text):
            raise ShardFailuresError(
                IllegalArgumentError(
                    f"Keep alive for request ({value}) is too large. It must be less than ({limit_text}). This limit "
                    f"can be set by changing the [search.max_keep_alive] cluster level setting."
                )
            )
        return alive

    def _check_window(self, indices: Sequence[Index], size: int) -> None:
        for index in indices:
            limit = int(index.setting("index.max_result_window", 10000))
            if size > limit:
                raise ShardFailuresError(
                    IllegalArgumentError(
                        f"Batch size is too large, size must be less than or equal to: [{limit}] but was [{size}]. "
                        f"Scroll batch sizes cost as much memory as result windows so they are controlled by the "
                        f"[index.max_result_window] index level setting."
                    )
                )

    def _get(self, name: str, default: Any) -> Any:
        return default if self._setting is None else self._setting(name)


# Stands for a context whose first search is still running, so that the limit counts it.
_PLACEHOLDER: Any = object()


def _validated(req: SearchRequest, params: dict[str, str]) -> SearchRequest:
    """OpenSearch's scroll validation; totals are always counted exactly in a scroll."""
    body = req.raw
    problems = []
    tracked = params.get("track_total_hits", body.get("track_total_hits"))
    if tracked is not None and str(tracked).lower() != "true":
        problems.append("disabling [track_total_hits] is not allowed in a scroll context")
    if req.from_ > 0:
        problems.append("using [from] is not allowed in a scroll context")
    if req.size == 0:
        problems.append("[size] cannot be [0] in a scroll context")
    if req.rescore:
        problems.append("using [rescore] is not allowed in a scroll context")
    if problems:
        listed = "".join(f"{i}: {p};" for i, p in enumerate(problems, 1))
        raise ActionRequestValidationError(f"Validation Failed: {listed}")
    if body.get("collapse") is not None:
        raise _search_error("cannot use `collapse` in a scroll context")
    if req.search_after:
        raise _search_error("`search_after` cannot be used in a scroll context.")
    if isinstance(req.query, Hybrid):
        raise IllegalArgumentError("[scroll] is not supported by mlsearch with a [hybrid] query")
    return replace(req, track_total_hits=True)


def _search_error(reason: str) -> MLSearchError:
    return ShardFailuresError(SearchPhaseExecutionError(reason, status=400))


def _run_all(
    indices: Sequence[Index], req: SearchRequest, aggs_runner: AggRunner | None
) -> tuple[list[Hit], int, dict[str, tuple[_Plan, tantivy.Searcher]], dict[str, Any] | None]:
    """Every match of every index in the request's order, the total, the plans (for explain) and aggregations."""
    found: list[Hit] = []
    total = 0
    plans: dict[str, tuple[_Plan, tantivy.Searcher]] = {}
    aggregations: dict[str, Any] | None = None
    for index in indices:
        ctx = context_for(index)
        searcher = index.lexical.searcher()
        plan, _ = _terminate_after(index, searcher, _plan(req, ctx), req.terminate_after)
        plans[index.name] = (plan, searcher)
        count, hits = _collect(index, searcher, plan, req, count_matches(searcher, plan.hits_query))
        total += count
        found.extend(_second_phase(index, searcher, hits, req))
        if req.aggs:
            if aggs_runner is None:
                raise IllegalArgumentError("aggregations are not available")
            part = aggs_runner(index, ctx, plan.query, req.aggs)
            aggregations = part if aggregations is None else _merge_aggs(aggregations, part)
    ordered = _order(found, replace(req, from_=0, size=len(found)))
    return ordered, total, plans, aggregations


def _next_hits(ctx: ScrollContext) -> dict[str, Any]:
    """The next page's `hits` object; hits whose documents were deleted since are replaced by the following ones."""
    rendered: list[dict[str, Any]] = []
    max_score = None
    body: dict[str, Any] = {}
    while True:
        batch = ctx.hits[ctx.cursor : ctx.cursor + ctx.req.size - len(rendered)]
        ctx.cursor += len(batch)
        body = _hits_body(batch, ctx.total, ctx.req, ctx.plans)
        rendered.extend(body["hits"])
        score = body["max_score"]
        if score is not None and (max_score is None or score > max_score):
            max_score = score
        if len(rendered) >= ctx.req.size or ctx.cursor >= len(ctx.hits):
            break
    return {"total": body["total"], "max_score": max_score, "hits": rendered}


def _parse_id(scroll_id: str) -> tuple[int, str]:
    """(context number, token) of a scroll id; OpenSearch's error for one that does not decode."""
    try:
        raw = base64.urlsafe_b64decode(scroll_id + "=" * (-len(scroll_id) % 4)).decode()
        prefix, number, token = raw.split(":")
        if prefix != _ID_PREFIX:
            raise ValueError(prefix)
        return int(number), token
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise IllegalArgumentError(
            "Cannot parse scroll id", caused_by={"type": "illegal_argument_exception", "reason": str(exc)}
        ) from None


def _missing(number: int) -> MLSearchError:
    return ShardFailuresError(SearchContextMissingError(f"No search context found for id [{number}]"))
