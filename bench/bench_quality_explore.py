"""Which pipeline clusters best? Ground truth only scores; nothing inside a pipeline reads it.

    python bench/bench_quality_explore.py [--datasets digits fashion] [--seeds 0 1 2]

Pipelines: raw pixels -> k-means; -> PCA-50 -> k-means; -> (PCA-50 ->) UMAP:N (min_dist=0,
n_neighbors) -> k-means with euclidean / cosine / mahalanobis. One seed drives both UMAP and
k-means. Reports mean and min ACC / NMI over the seeds (robust, not a lucky seed).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

from core.cluster.kmeans import KMeans  # noqa: E402
from core.metrics import external_scores  # noqa: E402
from core.projection import _pca, _umap, warm_up_umap  # noqa: E402

UMAP_GRID = {"digits": [(5, 15), (5, 30), (10, 15), (10, 30)], "fashion": [(10, 15), (10, 30), (5, 30)]}
METRICS = ("euclidean", "cosine", "mahalanobis")


def load(name: str) -> tuple[np.ndarray, np.ndarray]:
    if name == "digits":
        from sklearn.datasets import load_digits

        d = load_digits()
        return (d.data / 16.0).astype(np.float32), d.target
    from _fmnist import load as fm

    return fm("test")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", nargs="+", default=["digits", "fashion"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    a = ap.parse_args()
    print(f"warm-up UMAP: {warm_up_umap():.1f} s", flush=True)
    for ds in a.datasets:
        X, y = load(ds)
        res: dict[str, list[tuple[float, float]]] = {}

        def score(name: str, Z: np.ndarray, seed: int, metric: str = "euclidean", res=res, y=y) -> None:
            km = KMeans(n_clusters=10, metric=metric, random_state=seed, device="cpu").fit(Z)
            s = external_scores(y, km.labels_)
            res.setdefault(name, []).append((s["acc"], s["nmi"]))

        for seed in a.seeds:
            t = time.perf_counter()
            score("raw -> kmeans", X, seed)
            P = _pca(X, 50, seed) if X.shape[1] > 50 else X
            if X.shape[1] > 50:
                score("pca:50 -> kmeans", P, seed)
            for n, nn in UMAP_GRID[ds]:
                U = _umap(P, n, seed, n_neighbors=nn, min_dist=0.0)
                for m in METRICS:
                    score(f"umap:{n} nn={nn} -> kmeans {m}", U, seed, m)
            print(f"{ds} seed {seed}: {time.perf_counter() - t:.0f} s", flush=True)
        print(f"\n### {ds} {X.shape}, {len(a.seeds)} seeds\n")
        print("| pipeline | ACC mean | ACC min | NMI mean | NMI min |")
        print("|---|---|---|---|---|")
        for name, v in sorted(res.items(), key=lambda kv: -np.mean([x[0] for x in kv[1]])):
            acc, nmi = np.array(v).T
            print(f"| {name} | {acc.mean():.3f} | {acc.min():.3f} | {nmi.mean():.3f} | {nmi.min():.3f} |")
        print(flush=True)


if __name__ == "__main__":
    main()
