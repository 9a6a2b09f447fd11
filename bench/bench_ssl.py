"""Self-supervised backbones vs raw pixels vs ImageNet features, scored by k-means.

For each dataset (Fashion-MNIST test set, 10,000 images; scikit-learn digits, 1,797): train
rotation prediction and SimCLR on the images themselves (labels unused), refine the SimCLR
backbone with pseudo-label metric learning, extract features through
``core.features.extract`` (``backbone="checkpoint"``), run k-means (k = 10, scikit-learn,
n_init=10) and score ACC (Hungarian) / NMI / ARI against the true labels (scoring only).

    python bench/bench_ssl.py                      # both datasets, default epochs
    python bench/bench_ssl.py --datasets digits --simclr-epochs 5
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scipy.optimize import linear_sum_assignment  # noqa: E402
from sklearn.cluster import KMeans  # noqa: E402
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score  # noqa: E402

from core.data.demos import load_digits_demo, load_fashion  # noqa: E402
from core.features.extract import extract_features  # noqa: E402
from core.ssl.train import train_backbone  # noqa: E402


def acc(y: np.ndarray, p: np.ndarray) -> float:
    k = max(y.max(), p.max()) + 1
    m = np.zeros((k, k), np.int64)
    np.add.at(m, (p, y), 1)
    r, c = linear_sum_assignment(-m)
    return float(m[r, c].sum() / len(y))


def score(x: np.ndarray, y: np.ndarray, seed: int) -> tuple[float, float, float]:
    p = KMeans(10, n_init=10, random_state=seed).fit_predict(x)
    return acc(y, p), normalized_mutual_info_score(y, p), adjusted_rand_score(y, p)


def run(ds_name: str, args: argparse.Namespace, ws: str) -> list[tuple]:
    ds = load_fashion(("test",), "fashion-mnist") if ds_name == "fashion-mnist" else load_digits_demo()
    y = ds.labels
    rows = []

    def row(name: str, feats: np.ndarray, train_s: float, ips: float | None, epochs: int | None) -> None:
        a, n, r = score(feats, y, args.seed)
        rows.append((ds_name, name, a, n, r, epochs, train_s, ips))
        print(f"  {ds_name:14s} {name:20s} ACC {a:.3f} NMI {n:.3f} ARI {r:.3f} train {train_s:6.0f}s", flush=True)

    pix = ds.native_array().reshape(len(ds), -1).astype(np.float32) / 255.0
    row("pixels", pix, 0.0, None, None)

    small = ds_name == "digits"
    bs = 128
    plan = [("simclr", args.simclr_epochs * (3 if small else 1), None, "simclr"),
            ("metric", args.metric_epochs * (3 if small else 1), "simclr", "metric (simclr init)"),
            ("rotation", args.rot_epochs * (3 if small else 1), None, "rotation")]
    trained: dict[str, str] = {}
    for method, epochs, init, label in plan:
        t = time.perf_counter()
        res = train_backbone(ds, method, workspace=ws, epochs=epochs, batch_size=bs, seed=args.seed,
                             device=args.device, init_checkpoint=trained.get(init) if init else None,
                             temperature=args.temperature,
                             progress=lambda e, n, r, m=method: print(f"    {m} epoch {e}/{n} loss {r['loss']:.4f} "
                                                            f"{r['images_per_s']:.0f} img/s", flush=True))
        wall = time.perf_counter() - t
        trained[method] = res.name
        ips = float(np.mean([r["images_per_s"] for r in res.history]))
        f = extract_features(ds, "checkpoint", checkpoint=res.path, batch_size=512, device=args.device)
        row(label, f, wall, ips, epochs)
    t = time.perf_counter()
    f = extract_features(ds, "efficientnet_lite0", image_size=args.lite_size, batch_size=256, device=args.device)
    row(f"efficientnet_lite0@{args.lite_size}", f, time.perf_counter() - t, None, None)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", default="fashion-mnist,digits")
    ap.add_argument("--simclr-epochs", type=int, default=5)
    ap.add_argument("--rot-epochs", type=int, default=1)
    ap.add_argument("--metric-epochs", type=int, default=1)
    ap.add_argument("--temperature", type=float, default=0.5)
    ap.add_argument("--lite-size", type=int, default=64)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    import torch

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, cuda={torch.cuda.is_available()}, "
          f"cpus={os.cpu_count()}", flush=True)
    t0 = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory() as ws:
        for name in args.datasets.split(","):
            rows += run(name, args, ws)
    print("\n| dataset | features | ACC | NMI | ARI | epochs | train (extract for lite) wall s | train images/s |")
    print("|---|---|---|---|---|---|---|---|")
    for d, n, a, nmi, ari, ep, ts, ips in rows:
        print(f"| {d} | {n} | {a:.3f} | {nmi:.3f} | {ari:.3f} | {ep or ''} | {ts:.0f} | "
              f"{'' if ips is None else f'{ips:.0f}'} |")
    print(f"\ntotal wall {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
