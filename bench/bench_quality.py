"""Clustering quality through the real pipeline (as `python -m core run` does), several seeds.

Ground truth is used only to score. Prints one table: dataset, pipeline, ACC/NMI/ARI mean and min.

    python bench/bench_quality.py                 # digits + Fashion-MNIST test set (10,000)
    python bench/bench_quality.py --datasets digits --seeds 0 1 2
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # run as a script from anywhere

from core.config import ClusterConfig, DataConfig, FeatureConfig, MapConfig, RunConfig  # noqa: E402
from core.pipeline import run_pipeline  # noqa: E402

# (label, features, cluster options)
PIPELINES = {
    "digits": [
        ("pixels → k-means", FeatureConfig(backbone="pixels"), {}),
        ("pixels → umap:10 → k-means", FeatureConfig(backbone="pixels"), {"reduce": "umap:10"}),
        ("pixels → umap:5 → k-means (mahalanobis)", FeatureConfig(backbone="pixels"),
         {"reduce": "umap:5", "metric": "mahalanobis"}),
        # backbones trained on the digits themselves (SimCLR with the "gentle" views "auto" picks
        # for 8 px images, no labels), seeded per run; batch 128, temperature 0.5
        ("simclr(40 ep) → k-means", "simclr:40:128:0.5", {}),
        ("simclr(40 ep) → umap:10 → k-means", "simclr:40:128:0.5", {"reduce": "umap:10"}),
    ],
    "fashion-mnist": [
        ("pixels → k-means", FeatureConfig(backbone="pixels"), {}),
        ("pixels → umap:10 → k-means", FeatureConfig(backbone="pixels"), {"reduce": "umap:10"}),
        ("pixels → umap:5 → k-means (mahalanobis)", FeatureConfig(backbone="pixels"),
         {"reduce": "umap:5", "metric": "mahalanobis"}),
        ("lite0@64 → umap:10 → k-means", FeatureConfig(backbone="efficientnet_lite0", image_size=64),
         {"reduce": "umap:10"}),
    ],
}


def train(dataset: str, spec: str, seed: int, ws: str) -> str:
    """Train a backbone on the dataset's own images (labels unused); returns its registered name.

    ``spec``: "METHOD:EPOCHS[:BATCH[:TEMPERATURE]]", e.g. "simclr:40:128:0.5" (train_backbone's
    defaults for what is left out). A backbone of the same name already in the workspace (same
    method, dataset, seed, epochs, batch, temperature; e.g. from bench_ssl.py) is reused.
    """
    from core.data import open_dataset
    from core.ssl.registry import backbones_dir
    from core.ssl.train import train_backbone

    method, epochs, *rest = spec.split(":")
    kw = {}
    if rest:
        kw["batch_size"] = int(rest[0])
    if len(rest) > 1:
        kw["temperature"] = float(rest[1])
    name = f"{method}-{dataset}-s{seed}-e{epochs}" + (f"-b{kw['batch_size']}" if rest else "") + \
        (f"-t{kw['temperature']:g}" if len(rest) > 1 else "")
    if (backbones_dir(ws) / f"{name}.pt").is_file():
        print(f"    reusing {name}", flush=True)
        return name
    ds = open_dataset(dataset, workspace=ws)
    return train_backbone(ds, method, workspace=ws, epochs=int(epochs), seed=seed, name=name, **kw).name


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", nargs="+", default=list(PIPELINES))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--workspace", default=None, help="keep (and reuse) trained backbones and features here")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        ws = args.workspace or tmp
        for name in args.datasets:
            for label, feats, opts in PIPELINES[name]:
                scores, secs = [], []
                for seed in args.seeds:
                    t = time.perf_counter()
                    if isinstance(feats, str):   # "simclr:EPOCHS": train on the images first
                        feats_cfg = FeatureConfig(backbone=train(name, feats, seed, ws))
                    else:
                        feats_cfg = feats
                    cfg = RunConfig(data=DataConfig(name), features=feats_cfg,
                                    cluster=ClusterConfig(k=10, seed=seed, **opts),
                                    map=MapConfig(method="none"), workspace=ws)
                    r = run_pipeline(cfg)
                    secs.append(time.perf_counter() - t)
                    scores.append([r.scores["acc"], r.scores["nmi"], r.scores["ari"]])
                s = np.array(scores)
                rows.append((name, label, s.mean(0), s.min(0), float(np.median(secs))))
                print(f"  {name:14s} {label:42s} acc={s[:, 0].round(3).tolist()}", flush=True)
    print(f"\nseeds {args.seeds}; times are the median wall time of one run (features cached after the first;"
          " for trained backbones the training is included)")
    print(f"{'dataset':14s} {'pipeline':42s} {'ACC mean':>8s} {'ACC min':>8s} {'NMI mean':>8s} "
          f"{'NMI min':>8s} {'ARI mean':>8s} {'s/run':>7s}")
    for name, label, mean, mn, sec in rows:
        print(f"{name:14s} {label:42s} {mean[0]:8.3f} {mn[0]:8.3f} {mean[1]:8.3f} {mn[1]:8.3f} "
              f"{mean[2]:8.3f} {sec:7.1f}")


if __name__ == "__main__":
    main()
