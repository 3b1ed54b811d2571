"""Random Cut Forest (Guha, Mishra, Roy & Schrijvers, "Robust Random Cut Forest Based Anomaly Detection on
Streams", ICML 2016), our own implementation: no maintained RCF library is on PyPI (`rrcf` is unmaintained since
2023 and pure Python per point), so trees are built and updated here; batch building and scoring are compiled
loops (`_forest_jit`, numba).

- A tree holds a sample of points. Inserting a point follows the paper's insertion algorithm: at each node draw a
  cut over the bounding box extended by the point, dimension chosen with probability proportional to its range; if
  the cut separates the point from the node's box a new internal node is made there, else descend. The resulting
  tree is distributed as a random cut tree built on the sample plus the point (the paper's Theorem 4), so batch
  trees are instead cut top-down over their whole sample (same distribution), all trees at once, one level per
  round, into flat arrays (`Forest`). Deleting removes the leaf and splices its sibling into its place.
- Scores follow the Random Cut Forest library (AWS, the engine behind OpenSearch's RCF): walking up from the leaf
  the point reaches, the score is mixed at each node with the probability that a cut separates the point from the
  node's box; "seen" leaves score 1/(depth + log2(1 + mass)) damped by the leaf's share of the tree, unseen ones
  1/(depth + 1); the tree's score is scaled by log2(1 + tree mass) and the forest averages its trees. Ordinary
  points score about 1 or less; anomalies score well above 1.
- `Forest.score` scores a batch over every (tree, row) pair in compiled code, leaving a pair's walk up as soon as
  its point lies inside a box (boxes nest, so nothing above changes the score). `RandomCutTree.score_one` walks
  the node objects for streaming; `Forest.from_trees` / `Forest.tree` convert between the layouts, and both give
  the same value.
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
        # Each round draws one number per open node, in node order, and cuts them all (compiled, `cut_round`).
        rows = np.arange(len(points), dtype=np.intp)
        seg, sizes = forest.roots[counts > 0], counts[counts > 0]
        used = len(samples)
        from mlsearch.ml.algorithms._forest_jit import cut_round  # numba's import (~0.4 s) waits for a first forest

        while len(seg):
            draws = rng.random(len(seg))
            rows, seg, sizes, used = cut_round(
                points, rows, seg, sizes, draws, forest.dim, forest.cut, forest.child, forest.parent,
                forest.depth, forest.lo, forest.hi, forest.mass, used,
            )  # fmt: skip
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

    def tree_scores(self, q: np.ndarray) -> np.ndarray:
        """Score of every row of `q` in every tree, shape (trees, rows) (compiled, `score_rows`)."""
        q = np.ascontiguousarray(q, dtype=np.float64)
        if q.ndim != 2 or q.shape[1] != self.lo.shape[1]:  # the compiled loop does not check its indices
            raise ValueError(f"rows of {self.lo.shape[1]} values expected, got shape {q.shape}")
        out = np.zeros((self.trees, q.shape[0]))
        if self.trees and q.shape[0]:
            from mlsearch.ml.algorithms._forest_jit import score_rows

            total = self.mass[self.roots]
            score_rows(
                q, self.roots, self.child, self.dim, self.cut, self.parent, self.lo, self.hi, self.mass,
                (self.hi - self.lo).sum(axis=1), 1.0 / (self.depth + 1.0), self.depth + np.log2(1.0 + self.mass),
                total, np.log2(1.0 + total), np.isnan(q).any(axis=1), out,
            )  # fmt: skip
        return out


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
