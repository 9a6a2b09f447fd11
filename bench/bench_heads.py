"""The TEMI head for frozen features against k-means and RUC, on one space and on several at once.

    OMP_NUM_THREADS=1 python bench/bench_heads.py [--sets digits,fashion-mnist] [--seeds 0,1,2]
        [--rows kmeans-lite-umap,ruc-lite-umap,temi-lite,temi-pix+lite,temi-pix+lite+umaps]
        [--workspace /tmp/bench-heads-ws]

Spaces come from the feature cache (core.features.cache through core.pipeline.compute_features):
raw pixels and EfficientNet-Lite0 at 64 px, and their UMAP-10 (cached under the workspace's
``reduced/``), so a second run extracts nothing. "fmnist-train-folder" is the first 10,000 of the
Fashion-MNIST train split as a folder of PNGs (bench_defaults.py writes it). Every head uses its
defaults (one parameter set for all data sets); k is the number of classes; ground truth only
scores. Each fit's result is kept in ``<workspace>/bench_heads/`` (``--fresh`` refits), so an
interrupted run resumes. Prints one markdown table: ACC / NMI mean and min over the seeds, and
the seconds per fit (wall time, on whatever else the machine runs).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.config import ClusterConfig, DataConfig, FeatureConfig  # noqa: E402
from core.metrics import external_scores  # noqa: E402
from core.pipeline import clustering_space, compute_features, load_dataset  # noqa: E402

ROWS = {
    # name: (algorithm, spaces); a space is "pix" / "lite" (raw) or "pix-umap" / "lite-umap" (UMAP-10)
    "kmeans-lite-umap": ("kmeans", ["lite-umap"]),
    "kmeans-joined-umaps": ("kmeans", ["pix-umap", "lite-umap"]),
    "ruc-lite-umap": ("ruc", ["lite-umap"]),
    "temi-lite": ("temi", ["lite"]),
    "temi-pix+lite": ("temi", ["pix", "lite"]),
    "temi-pix+lite+umaps": ("temi", ["pix", "lite", "pix-umap", "lite-umap"]),
}
BACKBONES = {"pix": ("pixels", None), "lite": ("efficientnet_lite0", 64)}


def spaces_for(ds, ws: str, seed: int) -> dict[str, np.ndarray]:
    out = {}
    for short, (bb, size) in BACKBONES.items():
        feats, _, key, _ = compute_features(ds, FeatureConfig(backbone=bb, image_size=size), ws)
        out[short] = feats
        out[f"{short}-umap"] = clustering_space(feats, ClusterConfig(reduce="umap:10", seed=seed),
                                                cache_dir=Path(ws) / "reduced", feature_key=key)
    return out


def scaled(X: np.ndarray) -> np.ndarray:
    return (X - X.mean(0)) / max(float(X.std(0).mean()), 1e-12)


def fit(algo: str, parts: list[np.ndarray], k: int, seed: int, pixels: np.ndarray) -> np.ndarray:
    from core.cluster.registry import make_clusterer

    if algo == "temi":
        return make_clusterer("temi", n_clusters=k, random_state=seed).fit(parts).labels_
    X = parts[0] if len(parts) == 1 else np.concatenate([scaled(p) for p in parts], 1)
    if algo == "kmeans":
        return make_clusterer("kmeans", n_clusters=k, random_state=seed).fit(X).labels_
    # RUC as the pipeline runs it: k-means start in the space, heads on the raw pixels (its recipe's view)
    start = make_clusterer("kmeans", n_clusters=k, random_state=seed).fit(X).labels_
    ruc = make_clusterer("ruc", n_clusters=k, random_state=seed, input="pixels")
    return ruc.fit(pixels, initial_labels=start, embedding=X).labels_


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sets", default="digits,fashion-mnist")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--rows", default=",".join(ROWS))
    ap.add_argument("--workspace", default="/tmp/bench-heads-ws")
    ap.add_argument("--fresh", action="store_true")
    args = ap.parse_args()
    ws = args.workspace
    keep = Path(ws) / "bench_heads"
    keep.mkdir(parents=True, exist_ok=True)
    seeds = [int(s) for s in args.seeds.split(",")]
    lines = ["| set | N | algorithm | spaces | ACC mean | ACC min | NMI mean | NMI min | s / fit |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name in args.sets.split(","):
        src = name
        if name == "fmnist-train-folder":
            from bench_defaults import fmnist_train_folder

            src = str(fmnist_train_folder(Path(ws) / "data"))
        ds = load_dataset(DataConfig(source=src), ws)
        y = ds.labels
        k = len(np.unique(y))
        for row in args.rows.split(","):
            algo, names = ROWS[row]
            accs, nmis, secs = [], [], []
            for seed in seeds:
                f = keep / f"{name}-{row}-s{seed}.json"
                if f.is_file() and not args.fresh:
                    r = json.loads(f.read_text())
                else:
                    sp = spaces_for(ds, ws, seed)
                    t = time.perf_counter()
                    labels = fit(algo, [sp[s] for s in names], k, seed, sp["pix"])
                    r = {"seconds": time.perf_counter() - t, **external_scores(y, labels)}
                    r = {key: r[key] for key in ("seconds", "acc", "nmi")}
                    f.write_text(json.dumps(r))
                accs.append(r["acc"])
                nmis.append(r["nmi"])
                secs.append(r["seconds"])
                print(f"{name} {row} seed {seed}: ACC {r['acc']:.3f} NMI {r['nmi']:.3f} {r['seconds']:.0f} s",
                      file=sys.stderr, flush=True)
            space = " + ".join(names)
            lines.append(f"| {name} | {len(ds):,} | {algo} | {space} | {np.mean(accs):.3f} | {np.min(accs):.3f} | "
                         f"{np.mean(nmis):.3f} | {np.min(nmis):.3f} | {np.mean(secs):.0f} |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
