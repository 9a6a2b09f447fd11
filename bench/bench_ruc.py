"""RUC benchmark: how much RUC improves a k-means start, per clean-set strategy.

    python bench/bench_ruc.py --dataset fmnist --start pca50 --variant features
    python bench/bench_ruc.py --dataset digits --start raw --variant images --epochs 30

Prints one table row per strategy: the starting ACC, the initial clean split (fraction and
precision), RUC's final ACC/NMI/ARI and wall time. Ground-truth labels are used only to score
(Hungarian matching inside the scorer); RUC never sees them except through eval_labels, which
only fills history records. A CUDA GPU is used when torch.cuda.is_available().
"""
from __future__ import annotations

import argparse
import gzip
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.cluster.ruc import RUC, clean_precision  # noqa: E402

FMNIST = Path("/usr/share/datasets/fashion-mnist")


def load(dataset: str) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images (N, H, W) and labels (scoring only)."""
    if dataset == "fmnist":
        with gzip.open(FMNIST / "t10k-images-idx3-ubyte.gz") as f:
            x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
        with gzip.open(FMNIST / "t10k-labels-idx1-ubyte.gz") as f:
            y = np.frombuffer(f.read(), np.uint8, offset=8).astype(np.int64)
        return x, y
    from sklearn.datasets import load_digits

    d = load_digits()
    return (d.images * (255 / 16)).round().astype(np.uint8), d.target.astype(np.int64)


def acc(y: np.ndarray, p: np.ndarray) -> float:
    return clean_precision(p, np.ones(len(p), bool), y)


def embed(x: np.ndarray, how: str, seed: int) -> np.ndarray:
    flat = x.reshape(len(x), -1).astype(np.float32) / 255.0
    if how == "raw":
        return flat
    from sklearn.decomposition import PCA

    pca = PCA(50, random_state=seed).fit_transform(flat).astype(np.float32)
    if how == "pca50":
        return pca
    import umap  # umap10: UMAP(10) of PCA-50

    return umap.UMAP(n_components=10, random_state=seed).fit_transform(pca).astype(np.float32)


def kmeans(z: np.ndarray, k: int, seed: int) -> np.ndarray:
    try:
        from core.cluster.kmeans import KMeans

        return KMeans(n_clusters=k, n_init=10, random_state=seed).fit(z).labels_
    except ImportError:
        from sklearn.cluster import KMeans as SKMeans

        return SKMeans(k, n_init=10, random_state=seed).fit(z).labels_


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", choices=["fmnist", "digits"], default="fmnist")
    ap.add_argument("--start", choices=["raw", "pca50", "umap10"], default="pca50",
                    help="space k-means runs in for the starting labels")
    ap.add_argument("--variant", choices=["features", "images"], default="features")
    ap.add_argument("--features", choices=["raw", "pca50", "umap10"], default="raw",
                    help="features variant: what the MLP heads see")
    ap.add_argument("--embedding", choices=["raw", "pca50", "umap10"], default=None,
                    help="space of the metric selector (default: --start)")
    ap.add_argument("--strategies", default="confidence,metric,hybrid")
    ap.add_argument("--upsample", type=int, default=0, help="images variant: resize to this many px")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--params", default="{}", help="extra RUC params as a Python dict literal")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()

    # honour OMP_NUM_THREADS (a shared machine): UMAP/numba imports can reset torch's count
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "0")) or max(1, torch.get_num_threads()))
    x, y = load(a.dataset)
    spaces: dict[str, np.ndarray] = {}

    def space(name: str) -> np.ndarray:
        if name not in spaces:
            spaces[name] = embed(x, name, a.seed)
        return spaces[name]

    t = time.perf_counter()
    start = kmeans(space(a.start), 10, a.seed)
    t_start = time.perf_counter() - t
    emb = space(a.embedding or a.start)
    if a.variant == "features":
        X = space(a.features)
    else:
        X = torch.from_numpy(x)[:, None].float() / 255.0
        if a.upsample:
            X = torch.nn.functional.interpolate(X, size=a.upsample, mode="bilinear", align_corners=False)
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    extra = eval(a.params)  # bench-only convenience: a dict literal from the command line

    print(f"dataset={a.dataset} N={len(y)} start=k-means on {a.start} (ACC {acc(y, start):.3f}, "
          f"{t_start:.1f}s) variant={a.variant} X={tuple(X.shape)} embedding={a.embedding or a.start} "
          f"device={dev} threads={torch.get_num_threads()} epochs={a.epochs} params={extra}")
    print("| strategy | start ACC | init clean frac | init clean prec | final clean frac | final clean prec "
          "| ACC | NMI | ARI | seconds |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for strat in a.strategies.split(","):
        t = time.perf_counter()
        m = RUC(strategy=strat, epochs=a.epochs, device=dev, random_state=a.seed, **extra)
        m.fit(X, initial_labels=start, embedding=emb, eval_labels=y,
              callback=lambda r, s=strat: print(f"  {s} {r}", file=sys.stderr, flush=True))
        secs = time.perf_counter() - t
        h = m.history_[-1]
        init_prec = clean_precision(start, m.initial_clean_mask_, y)
        print(f"| {strat} | {acc(y, start):.3f} | {m.initial_clean_mask_.mean():.3f} | {init_prec:.3f} "
              f"| {h['clean_fraction']:.3f} | {h['clean_precision']:.3f} | {h['acc']:.3f} "
              f"| {h.get('nmi', float('nan')):.3f} | {h.get('ari', float('nan')):.3f} | {secs:.0f} |", flush=True)


if __name__ == "__main__":
    main()
