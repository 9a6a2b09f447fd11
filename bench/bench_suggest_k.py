"""Which label-free criterion suggests k best? Every criterion of core.cluster.suggest_k on the
spaces people cluster in, seeds 0, 1, 2; ground truth only names the true k to compare with.

    OMP_NUM_THREADS=1 python bench/bench_suggest_k.py --workspace /tmp/suggestk-ws
    python bench/bench_suggest_k.py --spaces "digits pixels" "lfw pixels" --criteria silhouette

Features come from the pipeline's own steps (load_dataset, compute_features, clustering_space),
cached in the workspace: the first EfficientNet-Lite0 extraction of Fashion-MNIST takes minutes.
Prints one row per (space, criterion): the k suggested with seeds 0/1/2 and the mean seconds,
then per criterion how often it was right (k = true k) or close (|k - true k| <= max(1, 20%)).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # run as a script from anywhere

from core.cluster.suggest_k import CRITERIA, suggest_k  # noqa: E402
from core.config import ClusterConfig, DataConfig, FeatureConfig  # noqa: E402
from core.pipeline import clustering_space, compute_features, load_dataset  # noqa: E402

# name -> (data, features, reduce, true k)
SPACES = {
    "digits pixels": ("digits", FeatureConfig(backbone="pixels"), "none", 10),
    "digits pixels → umap:10": ("digits", FeatureConfig(backbone="pixels"), "umap:10", 10),
    "fmnist lite0@64": ("fashion-mnist", FeatureConfig(backbone="efficientnet_lite0", image_size=64), "none", 10),
    "fmnist lite0@64 → umap:10": ("fashion-mnist", FeatureConfig(backbone="efficientnet_lite0", image_size=64),
                                  "umap:10", 10),
    "fmnist pixels → umap:10": ("fashion-mnist", FeatureConfig(backbone="pixels"), "umap:10", 10),
    "lfw pixels": ("lfw", FeatureConfig(backbone="pixels"), "none", 2),
    "lfw pixels → umap:10": ("lfw", FeatureConfig(backbone="pixels"), "umap:10", 2),
}


def space(name: str, workspace: str):
    """The clustered space as a run would see it (UMAP with the pipeline's seed 0), and N."""
    data, feats, reduce, _ = SPACES[name]
    ds = load_dataset(DataConfig(source=data), workspace)
    X, _, key, _ = compute_features(ds, feats, workspace)
    return clustering_space(X, ClusterConfig(reduce=reduce, seed=0), cache_dir=Path(workspace) / "reduced",
                            feature_key=key)


def close(k: int, true_k: int) -> bool:
    return abs(k - true_k) <= max(1, round(0.2 * true_k))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--spaces", nargs="+", default=list(SPACES), choices=list(SPACES))
    ap.add_argument("--criteria", nargs="+", default=CRITERIA.names(), choices=CRITERIA.names())
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--k-max", type=int, default=20)
    ap.add_argument("--max-samples", type=int, default=None, help="default: suggest_k's")
    ap.add_argument("--workspace", default=None, help="keep (and reuse) features and reductions here")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")   # umap/numba chatter
    extra = {} if args.max_samples is None else {"max_samples": args.max_samples}
    tally = {c: [0, 0, 0] for c in args.criteria}   # right, close, tried
    with tempfile.TemporaryDirectory() as tmp:
        ws = args.workspace or tmp
        print(f"| space | N | true k | criterion | k (seeds {'/'.join(map(str, args.seeds))}) | seconds (mean) |")
        print("|---|---:|---:|---|---|---:|")
        for name in args.spaces:
            X, true_k = space(name, ws), SPACES[name][3]
            for c in args.criteria:
                got = [suggest_k(X, k_max=args.k_max, seed=s, criterion=c, **extra) for s in args.seeds]
                ks = [g.k for g in got]
                tally[c][0] += sum(k == true_k for k in ks)
                tally[c][1] += sum(close(k, true_k) for k in ks)
                tally[c][2] += len(ks)
                secs = sum(g.seconds for g in got) / len(got)
                print(f"| {name} | {len(X):,} | {true_k} | {c} | {'/'.join(map(str, ks))} | {secs:.1f} |", flush=True)
    print("\n| criterion | right | close (Δk within max(1, 20 %)) |")
    print("|---|---:|---:|")
    for c, (right, near, n) in tally.items():
        print(f"| {c} | {right}/{n} | {near}/{n} |")


if __name__ == "__main__":
    main()
