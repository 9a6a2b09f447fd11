"""What a person gets with no flags: the default route (core.route) and each algorithm's defaults.

    python bench/bench_defaults.py [--sets digits,fashion-mnist,lfw,fmnist-train-folder,photos]
                                   [--algos kmeans,dac,ruc] [--seeds 0,1,2] [--workspace /tmp/bd-ws]

For each data set and seed: `run_pipeline` with backbone and reduction "auto" (exactly what
`python -m core run --data D --k K` does), then ACC/NMI of each algorithm with its defaults in the
chosen space, the route chosen, and the wall time. Beside it, the best of the candidate routes for
k-means **by ACC** (an oracle: the best fixed route there is, which no label-free rule can beat)
and the best recipe known from bench/RESULTS.md. Labels only score; k is the number of classes.

Data sets: the digits, Fashion-MNIST test and lfw demos; the first 10,000 of the Fashion-MNIST
*train* split written as a folder of PNGs with class sub-folders; and "photos": 240 colour crops
(128 px) of six scikit-image photographs, a class per photograph, as a folder of PNGs.
"""
from __future__ import annotations

import argparse
import gzip
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.config import ClusterConfig, DataConfig, FeatureConfig, MapConfig, RunConfig  # noqa: E402
from core.metrics import external_scores  # noqa: E402
from core.pipeline import build_clusterer, compute_features, joined_space, load_dataset, run_pipeline  # noqa: E402
from core.route import candidate_routes  # noqa: E402

FMNIST = Path("/usr/share/datasets/fashion-mnist")
# Best fixed recipes known (label-free routes with flags someone tuned), from bench/RESULTS.md.
KNOWN = {"digits": (0.971, "SimCLR backbone → UMAP-10 → DAC, 4 flags"),
         "fashion-mnist": (0.761, "Lite0@64 → UMAP-10 → k-means → RUC on pixels, 5 flags"),
         "lfw": (0.990, "Lite0 → k-means (issue 29)")}


def fmnist_train_folder(root: Path, n: int = 10_000) -> Path:
    out = root / "fmnist-train-10k"
    if (out / ".done").exists():
        return out
    with gzip.open(FMNIST / "train-images-idx3-ubyte.gz") as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)[:n]
    with gzip.open(FMNIST / "train-labels-idx1-ubyte.gz") as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8)[:n]
    for i, (img, c) in enumerate(zip(x, y, strict=True)):
        (out / f"class{c}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(out / f"class{c}" / f"{i:05d}.png")
    (out / ".done").write_text("")
    return out


def photos_folder(root: Path, per_photo: int = 40, side: int = 128) -> Path:
    import skimage.data as data

    out = root / "photos"
    if (out / ".done").exists():
        return out
    rng = np.random.default_rng(0)
    for name in ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry"):
        img = Image.fromarray(getattr(data, name)()).convert("RGB")
        (out / name).mkdir(parents=True, exist_ok=True)
        for j in range(per_photo):
            s = int(min(img.size) * rng.uniform(0.3, 0.6))
            x0, y0 = rng.integers(0, img.width - s + 1), rng.integers(0, img.height - s + 1)
            img.crop((x0, y0, x0 + s, y0 + s)).resize((side, side), Image.Resampling.BILINEAR).save(
                out / name / f"{j:03d}.png")
    (out / ".done").write_text("")
    return out


def source(name: str, root: Path) -> str:
    if name == "fmnist-train-folder":
        return str(fmnist_train_folder(root))
    if name == "photos":
        return str(photos_folder(root))
    return name


def oracle(ds, k: int, seed: int, ws: str) -> tuple[float, str]:
    """The best candidate route for k-means by ACC (uses labels: a ceiling, not a choice)."""
    best = (-1.0, "")
    for r in candidate_routes(ds):
        fcfg = FeatureConfig(backbone=r.backbone, image_size=r.image_size, join=r.join)
        feats, _, key, _ = compute_features(ds, fcfg, ws)
        cfg = ClusterConfig(k=k, seed=seed, reduce=r.reduce)
        X = joined_space(ds, feats, key, fcfg, cfg, ws)
        acc = external_scores(ds.labels, build_clusterer(cfg).fit(X).labels_)["acc"]
        best = max(best, (acc, r.name))
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sets", default="digits,fashion-mnist,lfw,fmnist-train-folder,photos")
    ap.add_argument("--algos", default="kmeans,dac,ruc")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--workspace", default="/tmp/bd-ws")
    a = ap.parse_args()
    ws, seeds = a.workspace, [int(s) for s in a.seeds.split(",")]
    rows = []
    for name in a.sets.split(","):
        src = source(name, Path(ws) / "data")
        ds = load_dataset(DataConfig(source=src), ws)
        k = len(ds.class_names or np.unique(ds.labels))
        for algo in a.algos.split(","):
            accs, nmis, secs, routes, oracles = [], [], [], [], []
            for seed in seeds:
                t = time.perf_counter()
                cfg = RunConfig(data=DataConfig(source=src),
                                features=FeatureConfig(backbone="auto"),
                                cluster=ClusterConfig(algo=algo, k=k, seed=seed, reduce="auto"),
                                map=MapConfig(method="none"), workspace=ws)
                res = run_pipeline(cfg, dataset=ds)
                secs.append(time.perf_counter() - t)
                accs.append(res.scores["acc"])
                nmis.append(res.scores["nmi"])
                routes.append(res.route["chosen_name"])
                if algo == "kmeans":
                    oracles.append(oracle(ds, k, seed, ws))
                print(f"  {name} {algo} seed {seed}: acc {accs[-1]:.3f} nmi {nmis[-1]:.3f} route {routes[-1]} "
                      f"{secs[-1]:.0f} s", file=sys.stderr, flush=True)
            best = (f"{np.mean([o[0] for o in oracles]):.3f} ({oracles[0][1]})" if oracles else "")
            known = KNOWN.get(name)
            rows.append((name, algo, np.mean(accs), np.min(accs), np.mean(nmis), ", ".join(dict.fromkeys(routes)),
                         best, f"{known[0]:.3f} ({known[1]})" if known else "", np.mean(secs)))
    print("| set | algorithm | ACC mean | ACC min | NMI mean | route chosen | best candidate route (k-means, by ACC) "
          "| best known recipe | s / run |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]:.3f} | {r[3]:.3f} | {r[4]:.3f} | {r[5]} | {r[6]} | {r[7]} | {r[8]:.0f} |")


if __name__ == "__main__":
    main()
