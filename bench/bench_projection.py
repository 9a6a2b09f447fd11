"""2-D map timings on Fashion-MNIST (after PCA-50).

    python bench/bench_projection.py [--n 70000] [--tsne-n 10000] [--threads 2]

UMAP cold (a fresh process: includes numba compilation) and warm (after warm_up_umap);
t-SNE (openTSNE when installed, and scikit-learn's) on a subset. Target: 70k map <= 40 s warm.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402
from _fmnist import load  # noqa: E402

from core.projection import _pca, project, warm_up_umap  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=70000)
    ap.add_argument("--tsne-n", type=int, default=10000)
    ap.add_argument("--cold-child", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    X, y = load("all")
    X = X[: a.n]
    t = time.perf_counter()
    P = _pca(X, 50, 0)
    pca_s = time.perf_counter() - t
    if a.cold_child:  # fresh process: numba compiles inside this fit
        t = time.perf_counter()
        project(P, "umap", seed=0)
        print(f"{time.perf_counter() - t:.2f}")
        return
    out = subprocess.run([sys.executable, __file__, "--n", str(a.n), "--cold-child"],
                         capture_output=True, text=True, check=True)
    cold = float(out.stdout.strip().splitlines()[-1])
    print(f"load average {os.getloadavg()[0]:.1f}; PCA 784->50 on {a.n}: {pca_s:.2f} s", flush=True)
    rows = [(f"UMAP {a.n} cold (fresh process)", cold)]
    rows.append(("warm_up_umap()", warm_up_umap()))
    t = time.perf_counter()
    m1 = project(P, "umap", seed=0)
    rows.append((f"UMAP {a.n} warm, seeded", time.perf_counter() - t))
    m2 = project(P, "umap", seed=0)
    print(f"UMAP same seed -> same map: {np.array_equal(m1, m2)}", flush=True)
    S = P[: a.tsne_n]
    t = time.perf_counter()
    project(S, "tsne", seed=0)
    rows.append((f"t-SNE {a.tsne_n} (openTSNE if installed)", time.perf_counter() - t))
    from sklearn.manifold import TSNE

    t = time.perf_counter()
    TSNE(init="pca", learning_rate="auto", random_state=0).fit_transform(S)
    rows.append((f"t-SNE {a.tsne_n} scikit-learn", time.perf_counter() - t))
    print("\n| map | seconds |\n|---|---|")
    for name, s in rows:
        print(f"| {name} | {s:.1f} |")


if __name__ == "__main__":
    main()
