"""Self-supervised backbones vs raw pixels vs ImageNet features, scored by k-means (issue 7).

For each dataset (Fashion-MNIST test set, 10,000 images; scikit-learn digits, 1,797) and seed:
train rotation prediction and SimCLR on the images themselves (labels unused), refine the SimCLR
backbone with pseudo-label metric learning, extract features through ``core.features.extract``
(``backbone="checkpoint"``, L2-normalised as the pipeline does), run k-means (k = 10,
scikit-learn, n_init=10, random_state = seed) and score ACC (Hungarian) / NMI / ARI against the
true labels (scoring only). Pixels and EfficientNet-Lite0 (ImageNet, 64 px) are scored the same way
in the same run. Prints one table: per row the mean and min over seeds, and the training rate.

    python bench/bench_ssl.py --datasets fashion-mnist --seeds 0 1 2 --workspace /tmp/ssl-ws
    python bench/bench_ssl.py --datasets fashion-mnist --fashion-train all --simclr-epochs fashion-mnist=2 ...
    python bench/bench_ssl.py --datasets digits --seeds 0 1 2 --workspace /tmp/ssl-ws

SimCLR uses the engine's defaults unless ``--augment`` / ``--feature`` say otherwise: views
"auto" (gentle for the 16 px digits, mild for Fashion-MNIST's 28 px), feature "auto" (the layer
before the projection head). A checkpoint saved with ``--feature projection`` is scored twice:
its projection and, from the same weights, the backbone layer under it. ``--fashion-train all``
trains the Fashion-MNIST backbones on the 70,000 train + test images (``fashion-mnist-all``,
labels unused) and still clusters and scores the 10,000 test images.

``--workspace``: trained checkpoints are kept there and reused when a later run asks for the same
(method, training images, seed, epochs, batch size, temperature, views, feature); the reused run's training rate is read
from the checkpoint's history. ``--eval-every N``: also score SimCLR's checkpoint every N epochs.
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
from core.ssl.registry import backbones_dir  # noqa: E402
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


def l2(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def trained(ds, method: str, epochs: int, seed: int, args: argparse.Namespace, ws: str, init: str | None,
            eval_every: int = 0) -> tuple[Path, float, float]:
    """(checkpoint, wall seconds, mean images/s); reuses a finished checkpoint of the same config."""
    import torch

    bs = args.batch_size[ds.name] if isinstance(args.batch_size, dict) else args.batch_size
    temp = args.temperature[ds.name]
    train_ds = ds
    if ds.name == "fashion-mnist" and args.fashion_train == "all":
        train_ds = load_fashion(("train", "test"), "fashion-mnist-all")
    name = f"{method}-{train_ds.name}-s{seed}-e{epochs}-b{bs}" + (
        f"-t{temp:g}-{args.augment}-{args.feature}" if method == "simclr" else "")
    path = backbones_dir(ws) / f"{name}.pt"
    # why wait: bench_quality.py --workspace may be training this very SimCLR backbone right now
    deadline = time.time() + (60 * args.wait_minutes if method == "simclr" else 0)
    while True:
        meta = torch.load(path, map_location="cpu", weights_only=True).get("meta", {}) if path.is_file() else {}
        if meta.get("epochs") == epochs:
            hist = meta.get("history", [])
            print(f"    reusing {path}", flush=True)
            return path, float(sum(h["seconds"] for h in hist)), float(np.mean([h["images_per_s"] for h in hist]))
        if time.time() > deadline:
            break
        time.sleep(10)
    if path.is_file():
        path.unlink()

    def progress(e: int, n: int, r: dict) -> None:
        print(f"    {method} epoch {e}/{n} loss {r['loss']:.4f} {r['images_per_s']:.0f} img/s", flush=True)
        if eval_every and e % eval_every == 0 and e < n:
            f = l2(extract_features(ds, "checkpoint", checkpoint=path, batch_size=512, device=args.device))
            a, nmi, ari = score(f, ds.labels, seed)
            print(f"      after epoch {e}: k-means ACC {a:.3f} NMI {nmi:.3f} ARI {ari:.3f}", flush=True)

    t = time.perf_counter()
    res = train_backbone(train_ds, method, workspace=ws, epochs=epochs, batch_size=bs, seed=seed, device=args.device,
                         init_checkpoint=init, temperature=temp, name=name, progress=progress,
                         augment=args.augment, feature=args.feature)
    return res.path, time.perf_counter() - t, float(np.mean([r["images_per_s"] for r in res.history]))


def load_checkpoint(path: Path) -> dict:
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)


def encoder_features(path: Path, meta: dict, ds) -> np.ndarray:
    """The backbone's output under a projection checkpoint's head (what feature="backbone" keeps);
    ``meta``: the checkpoint's "meta" record."""
    import torch

    from core.ssl.data import embed, load_images
    from core.ssl.train import trained_model

    model = trained_model(path)
    return embed(model.encoder, load_images(ds, int(meta["image_size"])), tuple(meta["mean"]), tuple(meta["std"]),
                 device=torch.device("cpu"))


def run(ds_name: str, args: argparse.Namespace, ws: str) -> list[tuple]:
    ds = load_fashion(("test",), "fashion-mnist") if ds_name == "fashion-mnist" else load_digits_demo()
    y = ds.labels
    per_row: dict[str, list] = {}

    def row(name: str, feats: np.ndarray, seed: int, train_s: float | None, ips: float | None,
            epochs: int | None) -> None:
        a, n, r = score(l2(feats), y, seed)
        per_row.setdefault(name, []).append((a, n, r, train_s, ips, epochs))
        print(f"  {ds_name:14s} seed {seed} {name:22s} ACC {a:.3f} NMI {n:.3f} ARI {r:.3f}", flush=True)

    pix = ds.native_array().reshape(len(ds), -1).astype(np.float32) / 255.0
    cache = Path(ws) / f"lite0-{ds_name}-{args.lite_size}.npz"   # why: 10 min under load on 2 shared cores
    if cache.is_file():
        z = np.load(cache)
        lite, lite_s = z["x"], float(z["seconds"])
    else:
        t = time.perf_counter()
        lite = extract_features(ds, "efficientnet_lite0", image_size=args.lite_size, batch_size=256,
                                device=args.device)
        lite_s = time.perf_counter() - t
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, x=lite, seconds=lite_s)
    ep = {m: getattr(args, f"{m}_epochs")[ds_name] for m in ("simclr", "metric", "rotation")}
    for seed in args.seeds:
        row("pixels", pix, seed, None, None, None)
        row(f"efficientnet_lite0@{args.lite_size}", lite, seed, None, None, None)
    paths: dict[tuple[str, int], Path] = {}
    for method, init, label in (("rotation", None, "rotation"), ("simclr", None, "simclr"),
                                ("metric", "simclr", "metric (simclr init)")):
        for seed in args.seeds:
            if not ep[method]:
                continue
            p, secs, ips = trained(ds, method, ep[method], seed, args, ws,
                                   str(paths[init, seed]) if init else None,
                                   args.eval_every if method == "simclr" else 0)
            paths[method, seed] = p
            f = extract_features(ds, "checkpoint", checkpoint=p, batch_size=512, device=args.device)
            on = "fashion-mnist-all" if ds_name == "fashion-mnist" and args.fashion_train == "all" else ds_name
            ck = load_checkpoint(p)
            projected = "proj_dim" in ck["arch_params"]
            row(f"{label}{' (projection)' if projected else ''}, trained on {on}", f, seed, secs, ips, ep[method])
            if projected:   # the same checkpoint's layer before the head, as feature="backbone" saves it
                row(f"{label} (backbone layer), trained on {on}", encoder_features(p, ck["meta"], ds), seed, secs, ips,
                    ep[method])
    rows = []
    for name, vals in per_row.items():
        v = np.array([x[:3] for x in vals])
        secs = [x[3] for x in vals if x[3] is not None]
        ips = [x[4] for x in vals if x[4] is not None]
        rows.append((ds_name, name, v.mean(0), v.min(0), vals[0][5],
                     float(np.mean(secs)) if secs else (lite_s if "lite0" in name else None),
                     float(np.mean(ips)) if ips else None))
    return rows


def per_dataset(text: str, cast=int) -> dict[str, object]:
    """"15" -> same for both; "fashion-mnist=12,digits=40" -> per dataset."""
    if "=" not in text:
        return {"fashion-mnist": cast(text), "digits": cast(text)}
    out = {}
    for part in text.split(","):
        k, v = part.split("=")
        out[k] = cast(v)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", default="fashion-mnist,digits")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    ap.add_argument("--simclr-epochs", default="fashion-mnist=10,digits=40")
    ap.add_argument("--rotation-epochs", default="fashion-mnist=1,digits=5", help="0 skips the row")
    ap.add_argument("--metric-epochs", default="fashion-mnist=1,digits=3", help="0 skips the row")
    ap.add_argument("--temperature", default="0.5", help="SimCLR's; one value or per dataset")
    ap.add_argument("--augment", default="auto", help="SimCLR's views: auto | standard | gentle | mild")
    ap.add_argument("--feature", default="auto", help="SimCLR's saved output: auto | backbone | projection")
    ap.add_argument("--fashion-train", default="test", choices=["test", "all"],
                    help="images the Fashion-MNIST backbones train on: the 10,000 test images scored, "
                         "or all 70,000 (train + test); labels are never used")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lite-size", type=int, default=64)
    ap.add_argument("--eval-every", type=int, default=0)
    ap.add_argument("--workspace", default=None, help="keep and reuse trained checkpoints here")
    ap.add_argument("--wait-minutes", type=float, default=0.0,
                    help="wait this long for a SimCLR checkpoint another process is training in --workspace")
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    for m in ("simclr", "rotation", "metric"):
        setattr(args, f"{m}_epochs", per_dataset(getattr(args, f"{m}_epochs")))
    args.temperature = per_dataset(args.temperature, float)
    import torch

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, cuda={torch.cuda.is_available()}, "
          f"cpus={os.cpu_count()}; seeds {args.seeds}", flush=True)
    t0 = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        ws = args.workspace or tmp
        for name in args.datasets.split(","):
            rows += run(name, args, ws)
    print(f"\nk-means (k=10, n_init=10) on L2-normalised features; mean and min over seeds {args.seeds}")
    print("| dataset | features | ACC mean | ACC min | NMI mean | NMI min | ARI mean | ARI min | epochs "
          "| train s (lite: extract) | train images/s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for d, n, mean, mn, ep, secs, ips in rows:
        print(f"| {d} | {n} | {mean[0]:.3f} | {mn[0]:.3f} | {mean[1]:.3f} | {mn[1]:.3f} | {mean[2]:.3f} | "
              f"{mn[2]:.3f} | {ep or ''} | {'' if secs is None else f'{secs:.0f}'} | "
              f"{'' if ips is None else f'{ips:.0f}'} |")
    print(f"\ntotal wall {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
