"""DAC benchmark: quality (ACC/NMI/ARI, mean and min over seeds) and wall time, through the engine.

    python bench/bench_dac.py                       # the table in bench/RESULTS.md, "DAC" (seeds 0 1 2)
    python bench/bench_dac.py --only digits --seeds 0
    python bench/bench_dac.py --e2e                 # also the end-to-end ConvNet: images/s trained
    python bench/bench_dac.py --e2e-quality         # ... and its quality (slow on CPU: ~minutes/epoch)

Rows (labels are used only for scoring, never to train or to choose anything):
  features  the pipeline's clustering space — backbone features (cached in the workspace) reduced
            with UMAP to 10 dimensions, seeded per seed (cached in workspace/reduced) — then DAC's
            MLP head on it: exactly what `python -m core run ... --reduce umap:10 --algo dac` fits.
  k-means   the same space with the engine's k-means, for reference.
  convnet   DAC's ConvNet trained end to end on the images (the paper's setting).
  gpu       (only with CUDA) the ConvNet on Fashion-MNIST: images/s trained on GPU vs CPU.

"digits-simclr": the backbone is SimCLR trained on the digits themselves with the engine's defaults
(`python -m core train-backbone --data digits --method simclr --seed S`), one per seed, trained
into the workspace as simclr-digits-sS when missing (training is not counted in the wall time).

The wall time of a row is one fit (features/UMAP come from the workspace cache; the first run of a
fresh workspace also extracts and reduces them, which is not counted).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.cluster.dac import DAC  # noqa: E402

# The pipeline configurations (as `python -m core run` takes them) and DAC's settings per dataset.
# Fashion uses DAC's defaults; digits (1,797 samples) trains on all of them in one batch — every
# pair of the dataset takes part in each step — for more epochs (one step per epoch), with milder
# feature noise and the most confident of 4 trainings (single trainings end at 0.87 or 0.95).
# PAPER: the paper's DAC, as these tables were measured (from a random head, no keep-the-start
# check; DAC's defaults now start from k-means and keep it when training ends below it).
PAPER = dict(start="none", guard=False)
DATASETS = {
    "digits": dict(data="digits", backbone="pixels", image_size=None, reduce="umap:10",
                   dac=dict(epochs=60, batch_size=2048, augment=0.3, n_init=4, **PAPER)),
    "fashion": dict(data="fashion-mnist", backbone="efficientnet_lite0", image_size=64, reduce="umap:10",
                    dac=dict(PAPER)),
    # a backbone trained on the digits themselves (labels unused), one per seed
    "digits-simclr": dict(data="digits", backbone="simclr-digits-s{seed}", image_size=None, reduce="umap:10",
                          dac=dict(epochs=60, batch_size=2048, augment=0.3, n_init=4, **PAPER)),
}
# end-to-end ConvNet (images): DAC's defaults (temperature "auto" = 1 for images, l_start 0.455) with these
CONVNET = {
    "digits": dict(epochs=40, batch_size=256, image_size=16, balance=1.0, lr=1e-3),
    "fashion": dict(epochs=20, batch_size=256, balance=1.0, lr=1e-3),
}


def _cli(name: str, seed: str = "S", algo: str = "dac", params: dict | None = None) -> str:
    d = DATASETS[name]
    parts = [f"--data {d['data']}", f"--backbone {d['backbone'].format(seed=seed)}"]
    if d["image_size"]:
        parts.append(f"--image-size {d['image_size']}")
    parts += [f"--reduce {d['reduce']}", "--k 10", f"--algo {algo}", f"--seed {seed}"]
    parts += [f"--param {k}={v}" for k, v in (params or {}).items()]
    return " ".join(parts)


def scores(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    from core.metrics import external_scores

    s = external_scores(y, p)
    return {k: float(s[k]) for k in ("acc", "nmi", "ari")}


def space(name: str, seed: int, workspace: Path) -> tuple[np.ndarray, np.ndarray, object]:
    """(clustering space, true labels, dataset) exactly as the pipeline builds them (cached)."""
    from core.config import ClusterConfig, DataConfig, FeatureConfig
    from core.pipeline import clustering_space, compute_features, load_dataset

    d = DATASETS[name]
    ds = load_dataset(DataConfig(source=d["data"]), workspace)
    backbone = d["backbone"].format(seed=seed)
    if backbone.startswith("simclr-") and not (workspace / "backbones" / f"{backbone}.pt").is_file():
        from core.ssl.train import train_backbone

        train_backbone(ds, "simclr", workspace=workspace, seed=seed, name=backbone, device="cpu")
    feats, _, key, _ = compute_features(ds, FeatureConfig(backbone=backbone, image_size=d["image_size"],
                                                          device="cpu"), workspace)
    Z = clustering_space(feats, ClusterConfig(algo="dac", k=10, seed=seed, reduce=d["reduce"]),
                         cache_dir=workspace / "reduced", feature_key=key)
    return Z, np.asarray(ds.labels), ds


def _agg(rows: list[tuple[dict, float]]) -> str:
    cells = []
    for k in ("acc", "nmi", "ari"):
        v = [r[0][k] for r in rows]
        cells.append(f"{np.mean(v):.3f} / {np.min(v):.3f}")
    return " | ".join(cells) + f" | {np.mean([r[1] for r in rows]):.1f}"


def bench_features(name: str, seeds: list[int], workspace: Path, kmeans: bool, verbose: bool) -> list[str]:
    from core.config import ClusterConfig
    from core.pipeline import build_clusterer

    dac_rows, km_rows = [], []
    for seed in seeds:
        Z, y, _ = space(name, seed, workspace)
        t = time.perf_counter()
        est = DAC(n_clusters=10, device="cpu", random_state=seed, **DATASETS[name]["dac"]).fit(Z)
        dac_rows.append((scores(y, est.labels_), time.perf_counter() - t))
        if verbose:
            print(f"  {name} dac seed {seed}: {dac_rows[-1]}", file=sys.stderr, flush=True)
        if kmeans:
            t = time.perf_counter()
            km = build_clusterer(ClusterConfig(algo="kmeans", k=10, seed=seed), device="cpu").fit(Z)
            km_rows.append((scores(y, km.labels_), time.perf_counter() - t))
    d = DATASETS[name]
    src = f"{d['backbone']}{'@' + str(d['image_size']) + 'px' if d['image_size'] else ''} → {d['reduce']}"
    out = [f"| {name} | {src} → DAC head | {_agg(dac_rows)} | — |"]
    if kmeans:
        out.append(f"| {name} | {src} → k-means (reference) | {_agg(km_rows)} | — |")
    return out


def bench_convnet(name: str, seeds: list[int], workspace: Path, epochs: int | None, limit: int | None,
                  verbose: bool) -> list[str]:
    """The ConvNet end to end; with ``limit``/``epochs`` a speed-only run (quality not comparable)."""
    from core.config import DataConfig
    from core.data.image_array import images_as_array
    from core.pipeline import _native_size, load_dataset

    ds = load_dataset(DataConfig(source=DATASETS[name]["data"]), workspace)
    params = dict(CONVNET[name])
    size = params.get("image_size") or _native_size(ds)
    X = images_as_array(ds, size)
    y = np.asarray(ds.labels)
    if limit:
        X, y = X[:limit], y[:limit]
    if epochs:
        params["epochs"] = epochs
    rows = []
    for seed in seeds:
        t = time.perf_counter()
        est = DAC(n_clusters=10, device="cpu", random_state=seed, **params).fit(X)
        rows.append((scores(y, est.labels_), time.perf_counter() - t))
        if verbose:
            print(f"  {name} convnet seed {seed}: {rows[-1]}", file=sys.stderr, flush=True)
    ips = len(X) * params["epochs"] / np.mean([r[1] for r in rows])
    what = f"images {size}px → DAC ConvNet, {params['epochs']} ep" + (f", first {limit}" if limit else "")
    quality = _agg(rows) if not (limit or epochs) else "(speed run) | | | " + f"{np.mean([r[1] for r in rows]):.1f}"
    return [f"| {name} | {what} | {quality} | {ips:.0f} |"]


def gpu_speed(epochs: int = 2, device: str = "cuda") -> list[str]:
    """Images/s trained by the end-to-end ConvNet on Fashion-MNIST, GPU vs CPU (same settings);
    ``device="cpu"`` only smoke-tests this function where there is no GPU."""
    import gzip

    with gzip.open("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz") as f:
        X = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    rows, per = [], {}
    for i, (dev, n) in enumerate(((device, len(X)), ("cpu", 2048))):
        sub = X[:n]
        est = DAC(n_clusters=10, epochs=epochs, batch_size=256, device=dev, random_state=0)
        est.fit(sub[:512] if dev == "cuda" else sub[:256])          # warm-up (cuDNN autotune, allocs)
        t = time.perf_counter()
        est.fit(sub)
        if dev == "cuda":
            torch.cuda.synchronize()
        wall = time.perf_counter() - t
        per[i] = n * epochs / wall
        rows.append(f"| fashion | ConvNet speed on {dev}, {n} img × {epochs} ep | | | | {wall:.1f} "
                    f"| {per[i]:.0f} |")
    rows.append(f"| fashion | {device} speed-up over CPU: {per[0] / per[1]:.1f}x | | | | | |")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--only", choices=sorted(DATASETS), default=None)
    ap.add_argument("--workspace", default=os.environ.get("CLUSTERLENS_HOME", "workspace"),
                    help="where features and reduced spaces are cached (default: $CLUSTERLENS_HOME or ./workspace)")
    ap.add_argument("--no-kmeans", action="store_true", help="skip the k-means reference rows")
    ap.add_argument("--e2e", action="store_true",
                    help="also time the end-to-end ConvNet (1 epoch on the first 2,048 images, images/s)")
    ap.add_argument("--e2e-quality", action="store_true", help="full end-to-end runs with quality (slow on CPU)")
    ap.add_argument("-v", "--verbose", action="store_true", help="per-seed results on stderr")
    args = ap.parse_args()
    from core.device import set_cpu_threads

    threads = set_cpu_threads()
    workspace = Path(args.workspace)
    print(f"torch {torch.__version__}, CPU, {threads} torch thread(s); seeds {args.seeds}\n")
    print("| data | input → clustering | ACC mean / min | NMI mean / min | ARI mean / min | wall s per run "
          "| images/s trained |")
    print("|---|---|---|---|---|---|---|")
    names = sorted(DATASETS) if args.only is None else [args.only]
    for name in names:
        for row in bench_features(name, args.seeds, workspace, not args.no_kmeans, args.verbose):
            print(row, flush=True)
    if args.e2e or args.e2e_quality:
        for name in [n for n in names if n in CONVNET]:
            if args.e2e_quality:
                rows = bench_convnet(name, args.seeds, workspace, None, None, args.verbose)
            else:
                rows = bench_convnet(name, [args.seeds[0]], workspace, 1, 2048, args.verbose)
            for row in rows:
                print(row, flush=True)
    if torch.cuda.is_available():
        for row in gpu_speed():
            print(row, flush=True)
    print("\npipeline equivalent of a DAC row (per seed S):")
    for name in names:
        print(f"  python -m core run {_cli(name, params=DATASETS[name]['dac'])}")


if __name__ == "__main__":
    main()
