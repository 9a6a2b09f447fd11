"""DAC benchmark: quality (ACC/NMI/ARI) and wall time; GPU speed when a GPU is present.

    python bench/bench_dac.py                      # digits + Fashion-MNIST test set, frozen features
    python bench/bench_dac.py --seeds 0 1          # mean and min over seeds
    python bench/bench_dac.py --e2e                # also the end-to-end ConvNet (slow on CPU)
    python bench/bench_dac.py --only digits

Configurations (labels are used only for scoring):
  features  raw pixels → PCA-50 → UMAP-10 (seeded), then DAC's MLP head on those frozen features
  convnet   DAC's ConvNet trained end to end on the images (the paper's setting)
  gpu       (only with CUDA) the ConvNet on Fashion-MNIST: images/s trained on GPU vs CPU

UMAP features are cached under .cache/bench_dac/ (same data + seed → same file).
"""
from __future__ import annotations

import argparse
import gzip
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.cluster.dac import DAC  # noqa: E402

FMNIST = Path("/usr/share/datasets/fashion-mnist")
CACHE = Path(".cache/bench_dac")

# tuned settings (see the closing note of the DAC issue)
FEATURE_PARAMS = dict(epochs=30, batch_size=512, augment=0.3, balance=1.0, lr=1e-3)
CONVNET_PARAMS = {
    "digits": dict(epochs=30, batch_size=256, image_size=16, balance=1.0, lr=1e-3),
    "fashion": dict(epochs=20, batch_size=256, balance=1.0, lr=1e-3),
}


def scores(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    try:
        from core.metrics import external_scores
    except ImportError:          # metrics module not there yet: same definitions, locally
        from scipy.optimize import linear_sum_assignment
        from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

        k = int(max(y.max(), p.max())) + 1
        c = np.zeros((k, k))
        np.add.at(c, (p, y), 1)
        r, cc = linear_sum_assignment(-c)
        return {"acc": c[r, cc].sum() / len(y), "nmi": normalized_mutual_info_score(y, p),
                "ari": adjusted_rand_score(y, p)}
    s = external_scores(y, p)
    return {k: float(s[k]) for k in ("acc", "nmi", "ari")}


def load(name: str) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images (N, H, W) and labels."""
    if name == "digits":
        from sklearn.datasets import load_digits

        d = load_digits()
        return (d.images * (255.0 / 16.0)).round().astype(np.uint8), d.target.astype(np.int64)
    with gzip.open(FMNIST / "t10k-images-idx3-ubyte.gz") as f:
        X = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(FMNIST / "t10k-labels-idx1-ubyte.gz") as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8).astype(np.int64)
    return X, y


def umap_features(name: str, X: np.ndarray) -> tuple[np.ndarray, float]:
    """PCA-50 → UMAP-10 of raw pixels in [0, 1]; (features, seconds spent now)."""
    path = CACHE / f"{name}_pca50_umap10_seed0.npy"
    if path.exists():
        return np.load(path), 0.0
    import umap
    from sklearn.decomposition import PCA

    t = time.perf_counter()
    flat = X.reshape(len(X), -1).astype(np.float32) / 255.0
    P = PCA(50, random_state=0).fit_transform(flat)
    F = umap.UMAP(n_components=10, random_state=0, n_neighbors=15, min_dist=0.0).fit_transform(P)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, F)
    return F, time.perf_counter() - t


def run(name: str, config: str, seeds: list[int], device: str) -> list[str]:
    X, y = load(name)
    rows = []
    prep_s = 0.0
    if config == "features":
        data, prep_s = umap_features(name, X)
        params = FEATURE_PARAMS
    else:
        data, params = X, CONVNET_PARAMS[name]
    results = []
    for seed in seeds:
        t = time.perf_counter()
        est = DAC(n_clusters=10, device=device, random_state=seed, **params).fit(data)
        wall = time.perf_counter() - t
        results.append((scores(y, est.labels_), wall))
        s = results[-1][0]
        rows.append(f"| {name} | {config} | {device} | {seed} | {s['acc']:.4f} | {s['nmi']:.4f} | {s['ari']:.4f} "
                    f"| {wall:.1f} |")
    if len(seeds) > 1:
        for agg, fn in (("mean", np.mean), ("min", np.min)):
            vals = {k: fn([r[0][k] for r in results]) for k in ("acc", "nmi", "ari")}
            w = np.mean([r[1] for r in results])
            rows.append(f"| {name} | {config} | {device} | {agg} | {vals['acc']:.4f} | {vals['nmi']:.4f} "
                        f"| {vals['ari']:.4f} | {w:.1f} |")
    if prep_s:
        rows.append(f"| {name} | (PCA-50 + UMAP-10, once) | cpu | 0 | | | | {prep_s:.1f} |")
    return rows


def gpu_speed(epochs: int = 2) -> list[str]:
    """Images/s trained by the end-to-end ConvNet on Fashion-MNIST, GPU vs CPU (same settings)."""
    X, _ = load("fashion")
    rows = []
    per = {}
    for device, n in (("cuda", len(X)), ("cpu", 2048)):
        sub = X[:n]
        est = DAC(n_clusters=10, epochs=epochs, batch_size=256, device=device, random_state=0)
        est.fit(sub[:512] if device == "cuda" else sub[:256])          # warm-up (cuDNN autotune, allocs)
        t = time.perf_counter()
        est.fit(sub)
        if device == "cuda":
            torch.cuda.synchronize()
        wall = time.perf_counter() - t
        per[device] = n * epochs / wall
        rows.append(f"| fashion | convnet speed | {device} | {n} img x {epochs} ep | {per[device]:.0f} img/s "
                    f"| | | {wall:.1f} |")
    rows.append(f"| fashion | GPU speed-up over CPU | | | {per['cuda'] / per['cpu']:.1f}x | | | |")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--only", choices=["digits", "fashion"], default=None)
    ap.add_argument("--e2e", action="store_true", help="also train the ConvNet end to end")
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    from core.device import resolve_device, set_cpu_threads

    device = resolve_device(args.device).type
    threads = set_cpu_threads()
    print(f"torch {torch.__version__}, device {device}, {threads} CPU threads\n")
    print("| data | config | device | seed | ACC | NMI | ARI | wall s |")
    print("|---|---|---|---|---|---|---|---|")
    for name in (["digits", "fashion"] if args.only is None else [args.only]):
        configs = ["features"] + (["convnet"] if args.e2e or device == "cuda" else [])
        for config in configs:
            for row in run(name, config, args.seeds, device):
                print(row, flush=True)
    if torch.cuda.is_available():
        for row in gpu_speed():
            print(row, flush=True)


if __name__ == "__main__":
    main()
