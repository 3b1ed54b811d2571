"""Classic ML training speed: our KMEANS and BATCH_RCF against scikit-learn on the same arrays, in one run.

- k-means: 100,000 x 16 rows, 8 centroids, 10 iterations; ours (EUCLIDEAN, which delegates to scikit-learn's KMeans
  after our parameter handling) and our own Lloyd loop (COSINE, L1) vs sklearn.cluster.KMeans called directly.
- batch_rcf: 10,000 x 4 rows, 30 trees of 256 samples, train (sample, build the trees) + score every row; ours (our
  own Random Cut Forest; tree building and scoring are numba-compiled loops) vs sklearn.ensemble.IsolationForest,
  fit + score_samples, with the same tree count and sample size. No maintained Random Cut Forest library is on PyPI
  (`rrcf` is unmaintained and pure Python per point), so the baseline is the nearest maintained relative: isolation
  trees on 256-row samples, a compiled (Cython) tree. RCF does more per tree (range-weighted cuts, bounding boxes,
  separation-probability scoring), so this is a speed yardstick, not a like-for-like algorithm. Both run
  single-threaded (IsolationForest's default n_jobs=None; our compiled loops are serial) on the same arrays in the
  same process. numba compiles our loops on first use (seconds; cached in `__pycache__`, so once per machine):
  both sides run once untimed first, and that first call's time is printed (it is the compile, or the cache load).
Best of `REPEATS` runs each (the runs of a table take turns, so load on the machine hits them all alike). `--quick` uses a tenth of the
rows.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
from sklearn.cluster import KMeans as SkKMeans
from sklearn.ensemble import IsolationForest

from _common import quick, table
from mlsearch.ml.algorithms import algorithms

REPEATS = 5


def best_interleaved(runs: dict[str, Callable[[], object]]) -> dict[str, float]:
    """Best of `REPEATS` runs of each, taking turns so that a busy machine slows all of them alike."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(REPEATS):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return {name: min(samples) for name, samples in times.items()}


def best_pair(first: Callable[[], object], second: Callable[[], object]) -> tuple[float, float]:
    both = best_interleaved({"first": first, "second": second})
    return both["first"], both["second"]


def kmeans_rows(x: np.ndarray) -> list[list[str]]:
    def ours(distance: str) -> Callable[[], object]:
        def run() -> object:
            model = algorithms.get("KMEANS").factory(
                {"centroids": 8, "iterations": 10, "distance_type": distance, "seed": 1}
            )
            return model.fit_array(x).predict_array(x)

        return run

    def sklearn() -> object:
        model = SkKMeans(n_clusters=8, max_iter=10, n_init=1, random_state=1, algorithm="lloyd").fit(x)
        return model.predict(x)

    runs = {"sklearn": sklearn, **{d: ours(d) for d in ("EUCLIDEAN", "COSINE", "L1")}}
    seconds = best_interleaved(runs)
    base = seconds.pop("sklearn")
    rows = [["k-means sklearn KMeans", f"{base:.3f}", "1.00"]]
    for distance, took in seconds.items():
        rows.append([f"k-means mlsearch {distance}", f"{took:.3f}", f"{took / base:.2f}"])
    return rows


def rcf_rows(x: np.ndarray) -> list[list[str]]:
    def ours() -> object:
        model = algorithms.get("BATCH_RCF").factory({"number_of_trees": 30, "sample_size": 256})
        return model.fit_array(x).score_array(x)

    def isolation_forest() -> object:
        return IsolationForest(n_estimators=30, max_samples=256, random_state=1).fit(x).score_samples(x)

    start = time.perf_counter()
    ours()  # warm-up, untimed: numba compiles (or loads from its cache) our loops on first use
    first = time.perf_counter() - start
    isolation_forest()
    print(f"batch_rcf first call (numba compile or cache load, untimed): {first:.2f} s")
    base, seconds = best_pair(isolation_forest, ours)
    return [
        ["anomaly sklearn IsolationForest", f"{base:.3f}", "1.00"],
        ["batch_rcf mlsearch", f"{seconds:.3f}", f"{seconds / base:.2f}"],
    ]


def main() -> None:
    scale = 10 if quick() else 1
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 10, (8, 16))
    x_km = centres[rng.integers(0, 8, 100_000 // scale)] + rng.normal(0, 1, (100_000 // scale, 16))
    x_rcf = rng.normal(0, 1, (10_000 // scale, 4))
    rows = kmeans_rows(x_km) + rcf_rows(x_rcf)
    print(
        "baselines: scikit-learn KMeans; for batch_rcf, scikit-learn IsolationForest (no maintained Random Cut Forest"
        " is on PyPI; IsolationForest is the nearest maintained library), same trees (30) and sample size (256),"
        " both single-threaded, same arrays, same run"
    )
    table(
        f"k-means {x_km.shape[0]} x 16, batch_rcf {x_rcf.shape[0]} x 4; best of {REPEATS}",
        ["scenario", "seconds", "ratio to sklearn"],
        rows,
    )


if __name__ == "__main__":
    main()
