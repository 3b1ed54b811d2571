"""Random Cut Forest (Guha, Mishra, Roy & Schrijvers, "Robust Random Cut Forest Based Anomaly Detection on
Streams", ICML 2016), our own implementation: no maintained RCF library is on PyPI (`rrcf` is unmaintained since
2023 and pure Python per point), so trees are built and updated here and scored with numpy.

- A tree holds a sample of points. Inserting a point follows the paper's insertion algorithm: at each node draw a
  cut over the bounding box extended by the point, dimension chosen with probability proportional to its range; if
  the cut separates the point from the node's box a new internal node is made there, else descend. The resulting
  tree is distributed as a random cut tree built on the sample plus the point (the paper's Theorem 4), so batch
  trees are instead cut top-down over their whole sample (same distribution), all trees at once with numpy, into
  flat arrays (`Forest`). Deleting removes the leaf and splices its sibling into its place.
- Scores follow the Random Cut Forest library (AWS, the engine behind OpenSearch's RCF): walking up from the leaf
  the point reaches, the score is mixed at each node with the probability that a cut separates the point from the
  node's box; "seen" leaves score 1/(depth + log2(1 + mass)) damped by the leaf's share of the tree, unseen ones
  1/(depth + 1); the tree's score is scaled by log2(1 + tree mass) and the forest averages its trees. Ordinary
  points score about 1 or less; anomalies score well above 1.
- `Forest.score` scores a batch with numpy over every (tree, row) pair at once: pairs step down one level per
  round to their leaves, then walk up mixing in the separation probabilities, leaving as soon as their point lies
  inside a box (boxes nest, so nothing above changes the score). `RandomCutTree.score_one` walks the node objects
  for streaming; `Forest.from_trees` / `Forest.tree` convert between the layouts, and both give the same value.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

import numpy as np


class _Leaf:
    __slots__ = ("mass", "point")

    def __init__(self, point: tuple[float, ...]) -> None:
        self.point = point
        self.mass = 1

    @property
    def lo(self) -> tuple[float, ...]:
        return self.point

    @property
    def hi(self) -> tuple[float, ...]:
        return self.point


class _Cut:
    __slots__ = ("cut", "dim", "hi", "left", "lo", "mass", "right")

    def __init__(self, dim: int, cut: float, left: _Node, right: _Node) -> None:
        self.dim, self.cut, self.left, self.right = dim, cut, left, right
        self.lo = tuple(map(min, left.lo, right.lo))
        self.hi = tuple(map(max, left.hi, right.hi))
        self.mass = left.mass + right.mass


_Node = _Leaf | _Cut


class RandomCutTree:
    """One tree over a multiset of points (tuples of floats)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.root: _Node | None = None

    @property
    def mass(self) -> int:
        return 0 if self.root is None else self.root.mass

    def insert(self, point: tuple[float, ...]) -> None:
        self.root = _Leaf(point) if self.root is None else self._insert(self.root, point)

    def _insert(self, node: _Node, p: tuple[float, ...]) -> _Node:
        lo = tuple(map(min, node.lo, p))
        hi = tuple(map(max, node.hi, p))
        spans = [h - low for h, low in zip(hi, lo, strict=True)]
        total = sum(spans)
        if total == 0.0:  # the same point again: a heavier leaf
            node.mass += 1
            return node
        r = self.rng.uniform(0.0, total)
        dim = 0
        while dim < len(spans) - 1 and r > spans[dim]:
            r -= spans[dim]
            dim += 1
        cut = lo[dim] + r
        if cut < node.lo[dim] or (cut >= node.hi[dim] and p[dim] > node.hi[dim]):  # separates p from the box
            leaf = _Leaf(p)
            return _Cut(dim, cut, leaf, node) if p[dim] <= cut else _Cut(dim, cut, node, leaf)
        assert isinstance(node, _Cut)  # a leaf's box is a point, so any cut separates it from a new point
        if p[node.dim] <= node.cut:
            node.left = self._insert(node.left, p)
        else:
            node.right = self._insert(node.right, p)
        node.lo, node.hi, node.mass = lo, hi, node.mass + 1
        return node

    def delete(self, point: tuple[float, ...]) -> None:
        if self.root is not None:
            self.root = self._delete(self.root, point)

    def _delete(self, node: _Node, p: tuple[float, ...]) -> _Node | None:
        if isinstance(node, _Leaf):
            node.mass -= 1
            return node if node.mass > 0 else None
        if p[node.dim] <= node.cut:
            node.left = self._delete(node.left, p)  # type: ignore[assignment]
        else:
            node.right = self._delete(node.right, p)  # type: ignore[assignment]
        if node.left is None or node.right is None:
            return node.right if node.left is None else node.left
        node.lo = tuple(map(min, node.left.lo, node.right.lo))
        node.hi = tuple(map(max, node.left.hi, node.right.hi))
        node.mass = node.left.mass + node.right.mass
        return node

    def score_one(self, q: Sequence[float]) -> float:
        """The anomaly score of `q` in this tree (see the module docstring)."""
        if self.root is None:
            return 0.0
        path: list[_Cut] = []
        node = self.root
        while isinstance(node, _Cut):
            path.append(node)
            node = node.left if q[node.dim] <= node.cut else node.right
        depth = len(path)
        total = self.root.mass
        if tuple(q) == node.point:
            score = (1.0 - node.mass / (2.0 * total)) / (depth + math.log2(1.0 + node.mass))
        else:
            score = 1.0 / (depth + 1.0)
        for d in range(depth - 1, -1, -1):
            box = path[d]
            outside = sum(max(0.0, lo - x) + max(0.0, x - hi) for x, lo, hi in zip(q, box.lo, box.hi, strict=True))
            if outside > 0.0:
                span = sum(max(hi, x) - min(lo, x) for x, lo, hi in zip(q, box.lo, box.hi, strict=True))
                p = outside / span
                score = (1.0 - p) * score + p / (d + 1.0)
        return score * math.log2(1.0 + total)


class Forest:
    """Trees as flat arrays over all their nodes: node `i` is a leaf when `child[i] == i`, else its children are
    `child[i]` (points with `x[dim[i]] <= cut[i]`) and `child[i] + 1`. Leaves have `cut = inf`, so the descent
    step `child[node] + (x[dim[node]] > cut[node])` keeps a point on its leaf without a branch. `lo`/`hi` are
    each node's bounding box (a leaf's box is its point), `mass` its point count, `depth` its distance from its
    tree's root (`roots[t]`), `parent` -1 at roots."""

    def __init__(self, size: int, dims: int) -> None:
        self.dim = np.zeros(size, dtype=np.intp)
        self.cut = np.full(size, np.inf)
        self.child = np.arange(size, dtype=np.intp)
        self.parent = np.full(size, -1, dtype=np.intp)
        self.depth = np.zeros(size, dtype=np.intp)
        self.lo = np.zeros((size, dims))
        self.hi = np.zeros((size, dims))
        self.mass = np.zeros(size)
        self.roots = np.zeros(0, dtype=np.intp)

    @property
    def trees(self) -> int:
        return len(self.roots)

    @classmethod
    def build(cls, samples: Sequence[np.ndarray], rng: np.random.Generator) -> Forest:
        """Random cut trees over each sample, cut top-down: a node draws a cut over its points' bounding box
        (dimension with probability proportional to its range, position uniform) and splits them. By the paper's
        Theorem 4, inserting points one by one gives trees of this same distribution, so this is the batch form of
        `RandomCutTree.insert`. All trees advance one level per round, vectorised over every open node of every
        tree: a round's work is a few numpy calls over the (trees x sample) points, never a Python call per node."""
        arrays = [np.asarray(s, dtype=np.float64) for s in samples]
        dims = max((a.shape[1] for a in arrays if a.ndim == 2), default=0)
        samples = [a if a.ndim == 2 else np.zeros((0, dims)) for a in arrays]
        forest = cls(sum(max(2 * len(s) - 1, 1) for s in samples), dims)
        forest.roots = np.arange(len(samples), dtype=np.intp)
        if not samples or all(len(s) == 0 for s in samples):
            return forest
        points = np.concatenate(samples)
        counts = np.array([len(s) for s in samples], dtype=np.intp)
        # Open nodes are runs of `rows` (indices into `points`): node `seg[k]` owns the k-th run, `sizes[k]` long.
        rows = np.arange(len(points), dtype=np.intp)
        seg, sizes = forest.roots[counts > 0], counts[counts > 0]
        used = len(samples)
        while len(seg):
            starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
            x = points[rows]
            lo, hi = np.minimum.reduceat(x, starts), np.maximum.reduceat(x, starts)
            forest.lo[seg], forest.hi[seg], forest.mass[seg] = lo, hi, sizes
            spans = hi - lo
            ends = np.cumsum(spans, axis=1)
            r = rng.random(len(seg)) * ends[:, -1]
            k = np.arange(len(seg))
            dim = np.minimum((ends < r[:, None]).sum(axis=1), dims - 1)  # P(dim) proportional to its range
            cut = lo[k, dim] + (r - (ends[k, dim] - spans[k, dim]))
            left = x[np.arange(len(rows)), np.repeat(dim, sizes)] <= np.repeat(cut, sizes)
            n_left = np.add.reduceat(left.astype(np.intp), starts)
            split = (ends[:, -1] > 0) & (n_left > 0) & (n_left < sizes)
            # A run of one repeated point is a leaf (its mass the repeat count); a cut landing exactly on the box
            # edge (measure zero, or a rounding) splits nothing and is drawn again next round.
            redraw = (ends[:, -1] > 0) & ~split
            kids = used + 2 * (np.cumsum(split) - 1)
            parents = seg[split]
            forest.dim[parents], forest.cut[parents], forest.child[parents] = dim[split], cut[split], kids[split]
            new = np.stack([kids[split], kids[split] + 1], axis=1).ravel()
            forest.parent[new] = np.repeat(parents, 2)
            forest.depth[new] = np.repeat(forest.depth[parents] + 1, 2)
            used += len(new)
            key = np.where(np.repeat(split, sizes), np.repeat(kids, sizes) + ~left, np.repeat(seg, sizes))
            keep = np.repeat(split | redraw, sizes)
            key, rows = key[keep], rows[keep]
            order = np.argsort(key, kind="stable")
            key, rows = key[order], rows[order]
            bounds = np.flatnonzero(np.diff(key)) + 1
            seg = key[np.concatenate(([0], bounds))] if len(key) else key
            sizes = np.diff(np.concatenate(([0], bounds, [len(key)]))) if len(key) else key
        return forest

    @classmethod
    def from_trees(cls, trees: Sequence[RandomCutTree]) -> Forest:
        """Object trees (as grown by insertion) in the array layout, for scoring them in batches."""
        dims = max((len(t.root.lo) for t in trees if t.root is not None), default=0)
        forest = cls(sum(2 * t.mass for t in trees) + len(trees), dims)
        forest.roots = np.arange(len(trees), dtype=np.intp)
        used = len(trees)
        stack: list[tuple[int, _Node, int, int]] = [
            (t, tree.root, -1, 0) for t, tree in enumerate(trees) if tree.root is not None
        ]
        while stack:
            i, node, parent, depth = stack.pop()
            forest.lo[i], forest.hi[i], forest.mass[i] = node.lo, node.hi, node.mass
            forest.parent[i], forest.depth[i] = parent, depth
            if isinstance(node, _Cut):
                forest.dim[i], forest.cut[i], forest.child[i] = node.dim, node.cut, used
                stack += [(used, node.left, i, depth + 1), (used + 1, node.right, i, depth + 1)]
                used += 2
        return forest

    def tree(self, t: int, rng: random.Random) -> RandomCutTree:
        """Tree `t` as node objects (for streaming insert / delete), drawing its future cuts from `rng`."""
        tree = RandomCutTree(rng)
        if self.mass[self.roots[t]] > 0:
            tree.root = self._node(int(self.roots[t]))
        return tree

    def _node(self, i: int) -> _Node:
        if self.child[i] == i:
            leaf = _Leaf(tuple(self.lo[i].tolist()))
            leaf.mass = int(self.mass[i])
            return leaf
        kid = int(self.child[i])
        return _Cut(int(self.dim[i]), float(self.cut[i]), self._node(kid), self._node(kid + 1))

    def score(self, q: np.ndarray) -> np.ndarray:
        """Mean score over the trees of every row of `q`."""
        return self.tree_scores(q).mean(axis=0)

    def tree_scores(self, q: np.ndarray, block: int = 1024) -> np.ndarray:
        """Score of every row of `q` in every tree, shape (trees, rows); rows go in blocks to stay in cache."""
        q = np.asarray(q, dtype=np.float64)
        out = np.zeros((self.trees, q.shape[0]))
        if self.trees and q.shape[0]:
            walk = _Walk(self)
            for start in range(0, q.shape[0], block):
                out[:, start : start + block] = walk.scores(q[start : start + block])
        return out


class _Walk:
    """The forest's node arrays laid out for scoring: one 1-D array per field (and per box side and dimension),
    since numpy gathers and arithmetic on 1-D arrays are several times faster than on rows of 2-D ones. A sentinel
    node past the end is every root's parent and its own: its box is infinite, so walking into it changes
    nothing."""

    def __init__(self, forest: Forest) -> None:
        size = len(forest.child)
        sentinel = np.array([size], dtype=np.intp)
        self.trees, self.roots = forest.trees, forest.roots
        self.child, self.dim, self.cut = forest.child, forest.dim, forest.cut
        self.parent = np.concatenate((np.where(forest.parent < 0, size, forest.parent), sentinel))
        self.lo = [np.append(col, -np.inf) for col in forest.lo.T]
        self.hi = [np.append(col, np.inf) for col in forest.hi.T]
        self.range = np.append((forest.hi - forest.lo).sum(axis=1), np.inf)
        self.weight = np.append(1.0 / (forest.depth + 1.0), 0.0)  # the separation term p / (depth + 1)
        self.depth, self.mass = forest.depth, forest.mass
        leaves = forest.child == np.arange(size)
        self.shallowest_leaf = int(forest.depth[leaves].min()) if leaves.any() else 0
        self.total = forest.mass[forest.roots]

    def scores(self, q: np.ndarray) -> np.ndarray:
        n = q.shape[0]
        q_t = np.ascontiguousarray(q.T)
        leaf = self.descend(q_t)  # pairs are (tree, row), tree-major
        row = np.tile(np.arange(n, dtype=np.intp), self.trees)
        xs = [col.take(row) for col in q_t]
        depth, mass = self.depth.take(leaf), self.mass.take(leaf)
        total = np.repeat(self.total, n)
        seen = self.at_point(leaf, xs)
        with np.errstate(divide="ignore", invalid="ignore"):
            score = np.where(seen, (1.0 - mass / (2.0 * total)) / (depth + np.log2(1.0 + mass)), 1.0 / (depth + 1.0))
        score[total == 0] = 0.0
        # Walk up mixing in the chance that a cut separates q from each ancestor's box. Boxes nest, so once q is
        # inside a box it is inside every ancestor's and the pair's score is final; finished pairs (and seen
        # ones) keep walking harmlessly until enough have finished to be worth dropping.
        pair, node, s = np.arange(len(leaf), dtype=np.intp), self.parent.take(leaf), score.copy()
        while len(pair):
            outside = self.outside(node, xs)
            p = outside / (self.range.take(node) + outside)
            s += p * (self.weight.take(node) - s)
            node = self.parent.take(node)
            going = outside > 0.0
            if 4 * np.count_nonzero(going) < 3 * len(pair):
                score[pair] = s
                keep = np.flatnonzero(going)
                pair, node, s = pair.take(keep), node.take(keep), s.take(keep)
                xs = [x.take(keep) for x in xs]
        return (score * np.log2(1.0 + total)).reshape(self.trees, n)

    def outside(self, node: np.ndarray, xs: list[np.ndarray]) -> np.ndarray:
        """L1 distance from each pair's point to its node's box (0 inside): per dimension, max(lo - x, x - hi, 0)."""
        total = None
        for lo, hi, x in zip(self.lo, self.hi, xs, strict=True):
            below = lo.take(node)
            above = hi.take(node)
            np.subtract(below, x, out=below)
            np.subtract(x, above, out=above)
            np.maximum(below, above, out=below)
            np.maximum(below, 0.0, out=below)
            # The first term starts the sum (0.0 + t == t exactly), saving a zeros array and one addition pass.
            total = below if total is None else np.add(total, below, out=total)
        return np.zeros(len(node)) if total is None else total

    def at_point(self, leaf: np.ndarray, xs: list[np.ndarray]) -> np.ndarray:
        """Whether each pair's point equals its leaf's (a leaf's box is its point): q is then "seen". Equivalent to
        `outside(leaf) == 0` for finite points, at a third of the work."""
        same = np.ones(len(leaf), dtype=bool)
        for lo, x in zip(self.lo, xs, strict=True):
            same &= lo.take(leaf) == x
        return same

    def descend(self, q_t: np.ndarray) -> np.ndarray:
        """The leaf each row reaches in each tree: every (tree, row) pair steps down one level per round. A leaf
        loops to itself with an infinite cut, so pairs at leaves are harmless and dropped in bulk."""
        n = q_t.shape[1]
        flat = q_t.ravel()
        offset = self.dim * n  # where column dim[node] starts in `flat`
        node = np.repeat(self.roots, n)
        row = np.tile(np.arange(n, dtype=np.intp), self.trees)
        leaf = node.copy()
        pair = np.arange(len(node), dtype=np.intp)
        child, cut = self.child, self.cut
        # No pair can stand on a leaf before the shallowest leaf's depth, and checking costs two passes over the
        # pairs, so the first rounds skip it and later ones check every other round (a pair at a leaf stays put).
        for _ in range(self.shallowest_leaf):
            node = child.take(node) + (flat.take(offset.take(node) + row) > cut.take(node))
        checking = True
        while True:
            c = cut.take(node)
            if checking:
                going = c != np.inf
                if 4 * np.count_nonzero(going) < 3 * len(pair):
                    leaf[pair] = node
                    keep = np.flatnonzero(going)
                    if not len(keep):
                        return leaf
                    pair, node, row, c = pair.take(keep), node.take(keep), row.take(keep), c.take(keep)
            checking = not checking
            node = child.take(node) + (flat.take(offset.take(node) + row) > c)


def batch_samples(x: np.ndarray, trees: int, sample_size: int, seed: int) -> np.ndarray:
    """Per tree, a uniform sample (without replacement) of the rows of `x`: shape (trees, sample, columns)."""
    rng = np.random.default_rng(seed)
    size = min(sample_size, x.shape[0])
    return np.stack([x[rng.choice(x.shape[0], size=size, replace=False)] for _ in range(trees)])


def batch_forest(samples: Sequence[np.ndarray], seed: int) -> Forest:
    """The forest of a batch model: the same samples and seed give the same trees (how models are restored)."""
    return Forest.build(samples, np.random.default_rng([seed, 1]))


def grow(points: Sequence[Sequence[float]], seed: int) -> RandomCutTree:
    """An object tree over `points` (a streaming tree restored from its sample), cut top-down like batch trees."""
    forest = Forest.build([np.asarray(points, dtype=np.float64)], np.random.default_rng(seed))
    return forest.tree(0, random.Random(seed))
