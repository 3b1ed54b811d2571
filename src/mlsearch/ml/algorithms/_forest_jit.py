"""The compiled loops of the Random Cut Forest (`_forest`): cutting a round of open nodes, and scoring rows.

numba compiles them on first use; `cache=True` keeps the machine code in `__pycache__` next to this file, so the
compile (a few seconds) is paid once per machine, not per process. The arithmetic follows the numpy formulation it
replaces operation for operation (same order of additions, same comparisons), and the random draws come from the
caller, so trees and scores are bit-for-bit those of that formulation. `nogil` lets a training request run while
other threads serve requests.

Per-node quantities that involve a logarithm or a numpy reduction (a node's box width, the "seen" leaf score, a
tree's mass factor) are computed by the caller with numpy and passed in, so no value depends on which libm or
summation order the compiled code would use.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_SLOTS = 8  # rows walking a tree at once (see `score_rows`)


@njit(cache=True, nogil=True)
def cut_round(
    points: np.ndarray,
    rows: np.ndarray,
    seg: np.ndarray,
    sizes: np.ndarray,
    draws: np.ndarray,
    dim: np.ndarray,
    cut: np.ndarray,
    child: np.ndarray,
    parent: np.ndarray,
    depth: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    mass: np.ndarray,
    used: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """One level of top-down cutting over every open node. Node `seg[k]` owns the k-th run of `rows` (indices into
    `points`, `sizes[k]` long) and draws its cut with `draws[k]` (uniform in [0, 1)). Records each node's box and
    mass; a node whose run spans a box is cut: dimension with probability proportional to its range, position
    uniform. Returns the next round's runs: nodes whose cut split nothing (drawn again) first, then the new
    children, both in node order, which is the order the caller's draws are assigned in."""
    n_seg = len(seg)
    dims = points.shape[1]
    split = np.zeros(n_seg, dtype=np.bool_)
    redraw = np.zeros(n_seg, dtype=np.bool_)
    left = np.zeros(len(rows), dtype=np.bool_)
    spans = np.empty(dims)
    ends = np.empty(dims)
    start = 0
    kept_rows = 0
    kept_segs = 0
    for k in range(n_seg):
        node, size = seg[k], sizes[k]
        for d in range(dims):
            low = points[rows[start], d]
            high = low
            for j in range(start + 1, start + size):
                v = points[rows[j], d]
                if v < low or v != v:  # NaN propagates, as with numpy's minimum / maximum
                    low = v
                if v > high or v != v:
                    high = v
            lo[node, d], hi[node, d] = low, high
        mass[node] = size
        total = 0.0
        for d in range(dims):
            spans[d] = hi[node, d] - lo[node, d]
            total += spans[d]
            ends[d] = total
        if dims == 0 or not total > 0.0:  # one (repeated) point: a leaf
            start += size
            continue
        r = draws[k] * total
        chosen = 0
        for d in range(dims):
            chosen += ends[d] < r
        chosen = min(chosen, dims - 1)
        position = lo[node, chosen] + (r - (ends[chosen] - spans[chosen]))
        n_left = 0
        for j in range(start, start + size):
            left[j] = points[rows[j], chosen] <= position
            n_left += left[j]
        if 0 < n_left < size:
            split[k] = True
            dim[node], cut[node] = chosen, position
        else:  # a cut on the box's edge (measure zero, or a rounding) splits nothing: draw again
            redraw[k] = True
        kept_rows += size
        kept_segs += 1 + split[k]
        start += size
    next_rows = np.empty(kept_rows, dtype=rows.dtype)
    next_seg = np.empty(kept_segs, dtype=seg.dtype)
    next_sizes = np.empty(kept_segs, dtype=sizes.dtype)
    at, out = 0, 0
    start = 0
    for k in range(n_seg):  # nodes drawn again keep their ids, lower than any new child's
        if redraw[k]:
            next_rows[at : at + sizes[k]] = rows[start : start + sizes[k]]
            next_seg[out], next_sizes[out] = seg[k], sizes[k]
            at += sizes[k]
            out += 1
        start += sizes[k]
    start = 0
    for k in range(n_seg):
        size = sizes[k]
        if split[k]:
            node = seg[k]
            child[node] = used
            for side in range(2):
                kid = used + side
                parent[kid], depth[kid] = node, depth[node] + 1
                count = 0
                for j in range(start, start + size):
                    if left[j] == (side == 0):
                        next_rows[at + count] = rows[j]
                        count += 1
                next_seg[out], next_sizes[out] = kid, count
                at += count
                out += 1
            used += 2
        start += size
    return next_rows, next_seg, next_sizes, used


@njit(cache=True, nogil=True)
def score_rows(
    q: np.ndarray,
    roots: np.ndarray,
    child: np.ndarray,
    dim: np.ndarray,
    cut: np.ndarray,
    parent: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    mass: np.ndarray,
    width: np.ndarray,
    weight: np.ndarray,
    seen_depth: np.ndarray,
    total: np.ndarray,
    factor: np.ndarray,
    nan_row: np.ndarray,
    out: np.ndarray,
) -> None:
    """Score of every row of `q` in every tree into `out` (trees, rows). Per (tree, row): descend to the leaf the
    row reaches; start from the leaf's score (if the row is the leaf's point, "seen", from its mass and
    `seen_depth` = depth + log2(1 + mass), else `weight` = 1 / (depth + 1)); walk up mixing in p / (depth + 1) with
    p the chance that a cut separates the row from the node's box (L1 distance to the box over the width of the box
    grown to the row, `width` being the box's own); stop at the first box holding the row (boxes nest, nothing
    above changes the score); scale by the tree's `factor` (log2(1 + tree mass), 0 for an empty tree).

    One row's walk is a chain of dependent loads and a division per step up, so `_SLOTS` rows are walked at once,
    each slot taking one step per round and the next row when its own is scored: the CPU overlaps the slots'
    independent chains (this is about 1.6x faster than a row at a time)."""
    n, dims = q.shape
    node = np.empty(_SLOTS, dtype=np.intp)
    row = np.empty(_SLOTS, dtype=np.intp)
    score = np.empty(_SLOTS)
    rising = np.zeros(_SLOTS, dtype=np.bool_)  # walking up (else still descending)
    for t in range(len(roots)):  # tree by tree, so that one tree's nodes stay in cache over all the rows
        if factor[t] == 0.0:
            out[t, :] = 0.0
            continue
        root = roots[t]
        queued = 0
        for b in range(_SLOTS):
            node[b] = root
            row[b] = queued if queued < n else -1
            rising[b] = False
            queued += 1
        busy = min(_SLOTS, n)
        while busy:
            for b in range(_SLOTS):
                at = node[b]
                i = row[b]
                if i < 0:
                    continue
                if not rising[b]:
                    if child[at] != at:
                        node[b] = child[at] + (q[i, dim[at]] > cut[at])
                        continue
                    same = True  # "seen": the row is the leaf's point
                    for d in range(dims):
                        same &= lo[at, d] == q[i, d]
                    # Seen leaves score (1 - mass / (2 total)) / (depth + log2(1 + mass)), damped by their share.
                    score[b] = (1.0 - mass[at] / (2.0 * total[t])) / seen_depth[at] if same else weight[at]
                    rising[b] = True
                    node[b] = parent[at]
                    if parent[at] < 0 or not nan_row[i]:
                        continue
                    score[b] = np.nan  # as with numpy's maximum, NaN distances up the tree make a NaN score
                    done = True
                else:
                    done = at < 0
                    if not done:
                        outside = 0.0
                        for d in range(dims):  # L1 distance to the box; max() compiles to branch-free selects
                            outside += max(max(lo[at, d] - q[i, d], q[i, d] - hi[at, d]), 0.0)
                        if outside > 0.0:
                            s = score[b]
                            p = outside / (width[at] + outside)
                            score[b] = s + p * (weight[at] - s)
                            node[b] = parent[at]
                        else:
                            done = True
                if done:  # the row is scored: the slot takes the next one
                    out[t, i] = score[b] * factor[t]
                    rising[b] = False
                    if queued < n:
                        row[b] = queued
                        node[b] = root
                        queued += 1
                    else:
                        row[b] = -1
                        busy -= 1
