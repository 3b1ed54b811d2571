"""Random Cut Forest (Guha, Mishra, Roy & Schrijvers, "Robust Random Cut Forest Based Anomaly Detection on
Streams", ICML 2016), our own implementation: no maintained RCF library is on PyPI (`rrcf` is unmaintained since
2023 and pure Python per point), so trees are built and updated here and scored with numpy.

- A tree holds a sample of points. Inserting a point follows the paper's insertion algorithm: at each node draw a
  cut over the bounding box extended by the point, dimension chosen with probability proportional to its range; if
  the cut separates the point from the node's box a new internal node is made there, else descend. The resulting
  tree is distributed as a random cut tree built on the sample plus the point (the paper's Theorem 4), so batch
  trees are grown by inserting a random sample. Deleting removes the leaf and splices its sibling into its place.
- Scores follow the Random Cut Forest library (AWS, the engine behind OpenSearch's RCF): walking up from the leaf
  the point reaches, the score is mixed at each node with the probability that a cut separates the point from the
  node's box; "seen" leaves score 1/(depth + log2(1 + mass)) damped by the leaf's share of the tree, unseen ones
  1/(depth + 1); the tree's score is scaled by log2(1 + tree mass) and the forest averages its trees. Ordinary
  points score about 1 or less; anomalies score well above 1.
- `score_many` scores a batch with numpy on a tree compiled to arrays (one pass per tree level); `score_one`
  walks the node objects for streaming. Both compute the same value.
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

    def compile(self) -> _Compiled:
        return _Compiled(self)


class _Compiled:
    """A tree as arrays (children, cuts, boxes, masses, leaf points) for vectorised scoring."""

    def __init__(self, tree: RandomCutTree) -> None:
        nodes: list[_Node] = []
        stack = [tree.root] if tree.root is not None else []
        while stack:
            node = stack.pop()
            nodes.append(node)
            if isinstance(node, _Cut):
                stack += [node.right, node.left]
        ids = {id(n): i for i, n in enumerate(nodes)}
        self.left = np.array([ids[id(n.left)] if isinstance(n, _Cut) else -1 for n in nodes])
        self.right = np.array([ids[id(n.right)] if isinstance(n, _Cut) else -1 for n in nodes])
        self.dim = np.array([n.dim if isinstance(n, _Cut) else 0 for n in nodes])
        self.cut = np.array([n.cut if isinstance(n, _Cut) else 0.0 for n in nodes])
        self.lo = np.array([n.lo for n in nodes], dtype=np.float64)
        self.hi = np.array([n.hi for n in nodes], dtype=np.float64)
        self.mass = np.array([n.mass for n in nodes], dtype=np.float64)
        self.total = float(tree.mass)

    def score_many(self, q: np.ndarray) -> np.ndarray:
        n = q.shape[0]
        rows = np.arange(n)
        node = np.zeros(n, dtype=np.int64)
        path = []
        active = self.left[node] >= 0
        while active.any():
            path.append(np.where(active, node, -1))
            go_left = q[rows, self.dim[node]] <= self.cut[node]
            node = np.where(active, np.where(go_left, self.left[node], self.right[node]), node)
            active = self.left[node] >= 0
        depth = (np.stack(path) >= 0).sum(axis=0) if path else np.zeros(n, dtype=np.int64)
        mass = self.mass[node]
        seen = np.all(q == self.lo[node], axis=1)
        score = np.where(seen, (1.0 - mass / (2.0 * self.total)) / (depth + np.log2(1.0 + mass)), 1.0 / (depth + 1.0))
        for d in range(len(path) - 1, -1, -1):
            at = path[d]
            mask = at >= 0
            boxes = at[mask]
            x, lo, hi = q[mask], self.lo[boxes], self.hi[boxes]
            outside = (np.maximum(0.0, lo - x) + np.maximum(0.0, x - hi)).sum(axis=1)
            span = (np.maximum(hi, x) - np.minimum(lo, x)).sum(axis=1)
            p = np.divide(outside, span, out=np.zeros_like(outside), where=span > 0)
            score[mask] = (1.0 - p) * score[mask] + p / (d + 1.0)
        return score * np.log2(1.0 + self.total)


def batch_samples(x: np.ndarray, trees: int, sample_size: int, seed: int) -> list[list[list[float]]]:
    """Per tree, a uniform sample (without replacement) of the rows of `x`, in insertion order."""
    rng = np.random.default_rng(seed)
    size = min(sample_size, x.shape[0])
    return [x[rng.choice(x.shape[0], size=size, replace=False)].tolist() for _ in range(trees)]


def grow(points: Sequence[Sequence[float]], seed: int) -> RandomCutTree:
    """A tree from its sample, cut top-down (the same distribution as inserting the points one by one, by the
    paper's Theorem 4, and faster); the same points and seed give the same tree (how models are restored)."""
    tree = RandomCutTree(random.Random(seed))
    data = np.asarray(points, dtype=np.float64)
    if len(data):
        tree.root = _cut_down(data, np.random.default_rng(seed))
    return tree


def _cut_down(x: np.ndarray, rng: np.random.Generator) -> _Node:
    lo, hi = x.min(axis=0), x.max(axis=0)
    spans = hi - lo
    total = float(spans.sum())
    if total == 0.0:
        leaf = _Leaf(tuple(x[0].tolist()))
        leaf.mass = x.shape[0]
        return leaf
    r = rng.uniform(0.0, total)
    dim = min(int(np.searchsorted(np.cumsum(spans), r)), len(spans) - 1)
    cut = float(lo[dim] + r - (np.cumsum(spans)[dim] - spans[dim]))
    left = x[:, dim] <= cut
    if left.all() or not left.any():  # a cut at the very edge: draw again
        return _cut_down(x, rng)
    return _Cut(dim, cut, _cut_down(x[left], rng), _cut_down(x[~left], rng))


def batch_forest(x: np.ndarray, trees: int, sample_size: int, seed: int) -> list[RandomCutTree]:
    return [grow(sample, seed + t) for t, sample in enumerate(batch_samples(x, trees, sample_size, seed))]


def forest_scores(forest: Sequence[RandomCutTree], x: np.ndarray) -> np.ndarray:
    """Mean score over the trees of every row of `x`."""
    return np.mean([tree.compile().score_many(x) for tree in forest], axis=0)
