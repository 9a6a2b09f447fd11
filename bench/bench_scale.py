"""Scale: k-means and the 2-D map on 10k, 100k and 1M rows of a SYNTHETIC 64-d feature matrix.

The matrix is synthetic (this machine cannot hold a million image files): a mixture of 50
Gaussian blobs in 64 dimensions with per-row spread 0.5-1.5, written once per size as a float32
.npy and opened memory-mapped, as the feature cache gives it. Each stage runs in a fresh process,
so its peak RSS (ru_maxrss: imports, the mapped pages it touched and its own arrays) is its own;
the peak of its anonymous memory (RssAnon, sampled: its own arrays, not mapped file pages) beside it.

Stages: ``ours`` (core.cluster.KMeans, algorithm="auto": Lloyd up to 200k rows, seeded on a
sample above), ``ours-lloyd`` (the same, algorithm="lloyd": 10 restarts on all rows),
``sklearn`` (MiniBatchKMeans, n_init=3, batch_size=2048), ``faiss`` (faiss.Kmeans
on all rows, 20 iterations, 1 run), ``extract`` (streaming extraction into the feature cache
of N synthetic 28x28 images held as a uint8 memory map, pixels backbone at 8 px: 64-d),
``map-umap`` (core.projection.project(..., "umap"): UMAP on a 50,000-row sample + placement
above 100k rows) and ``map-pca``. Inertia is measured on all rows
for every k-means, and shown relative to scikit-learn's. The growth exponent b fits t ~ N^b
between the smallest and the largest size.

    OMP_NUM_THREADS=1 python bench/bench_scale.py --sizes 10000 100000 1000000 --k 10 100
"""
from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DIM = 64


def make_matrix(path: Path, n: int, seed: int = 0) -> None:
    if path.is_file():
        return
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(50, DIM)).astype(np.float32)
    tmp = path.with_suffix(".tmp.npy")
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(n, DIM))
    for s in range(0, n, 100_000):   # chunk by chunk: never the matrix twice in memory
        m = min(100_000, n - s)
        lab = rng.integers(0, 50, m)
        spread = rng.uniform(0.5, 1.5, (m, 1)).astype(np.float32)
        out[s: s + m] = centres[lab] + rng.normal(size=(m, DIM)).astype(np.float32) * spread
    out.flush()
    del out
    os.replace(tmp, path)


def inertia(X: np.ndarray, C: np.ndarray) -> float:
    """Sum of squared distances of every row to its nearest centre (chunked, float64 sum)."""
    import torch

    from core.cluster.inputs import input_tensor

    Xt, Ct = input_tensor(X), torch.as_tensor(np.asarray(C, np.float32))
    c_sq = (Ct * Ct).sum(1)
    tot = 0.0
    for s in range(0, len(Xt), 100_000):
        x = Xt[s: s + 100_000]
        d = torch.addmm((x * x).sum(1, keepdim=True) + c_sq, x, Ct.T, alpha=-2).min(1).values
        tot += float(d.clamp_min(0).double().sum())
    return tot


def _extract_synthetic_images(path: Path, n: int) -> np.ndarray:
    """Streaming extraction of N synthetic 28x28 gray images (a uint8 memory map on disk, so the
    images are never all in memory either) with the pixels backbone at 8 px (64-d), through the
    feature cache (shards, then one memory-mapped matrix) in a fresh cache folder."""
    import shutil

    from core.data.base import ImageDataset
    from core.features import FeatureCache, cached_extract

    img_path = make_images(path, n)
    images = np.load(img_path, mmap_mode="r")

    class Images(ImageDataset):
        def native_array(self) -> np.ndarray:
            return images

    ds = Images(name="synthetic", ids=[f"s/{i}" for i in range(n)], fingerprint=f"synthetic-{n}")
    root = path.with_name(f"cache-{n}")
    shutil.rmtree(root, ignore_errors=True)
    feats, _, _ = cached_extract(FeatureCache(root), ds, "pixels", image_size=8, batch_size=512, device="cpu")
    return feats


def make_images(path: Path, n: int) -> Path:
    """N synthetic 28x28 uint8 images in a .npy beside the matrix (made once, chunk by chunk)."""
    img_path = path.with_name(f"synthetic-images-{n}x28x28.npy")
    if not img_path.is_file():
        rng = np.random.default_rng(0)
        out = np.lib.format.open_memmap(img_path.with_suffix(".tmp.npy"), mode="w+", dtype=np.uint8,
                                        shape=(n, 28, 28))
        for s in range(0, n, 100_000):
            out[s: s + 100_000] = rng.integers(0, 256, (min(100_000, n - s), 28, 28), dtype=np.uint8)
        out.flush()
        del out
        os.replace(img_path.with_suffix(".tmp.npy"), img_path)
    return img_path


class _AnonPeak:
    """Peak anonymous memory (RssAnon: the process's own arrays, not the pages of mapped files,
    which ru_maxrss counts too), sampled every 50 ms in a thread."""

    def __init__(self) -> None:
        import threading

        self.peak, self._stop = 0, threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    @staticmethod
    def now() -> int:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) * 1024
        return 0

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, self.now())

    def stop(self) -> float:
        self._stop.set()
        self._t.join()
        return max(self.peak, self.now()) / 2**30


def stage(name: str, path: Path, k: int) -> dict:
    """Run one stage here (in a fresh process) and return its figures."""
    sys.path.insert(0, str(ROOT))
    X = np.load(path, mmap_mode="r")
    anon = _AnonPeak()
    t = time.perf_counter()
    info: dict = {}
    if name == "ours":
        from core.cluster.kmeans import KMeans

        m = KMeans(n_clusters=k, random_state=0).fit(X)
        C, info["how"] = m.cluster_centers_, f"sample {m.sample_size_:,}" if m.sample_size_ else "lloyd"
    elif name == "ours-lloyd":   # our full k-means: every restart on all rows, whatever N
        from core.cluster.kmeans import KMeans

        C, info["how"] = KMeans(n_clusters=k, random_state=0, algorithm="lloyd").fit(X).cluster_centers_, "lloyd"
    elif name == "sklearn":
        from sklearn.cluster import MiniBatchKMeans

        C = MiniBatchKMeans(n_clusters=k, n_init=3, batch_size=2048, random_state=0).fit(X).cluster_centers_
    elif name == "faiss":
        import faiss

        km = faiss.Kmeans(DIM, k, niter=20, nredo=1, seed=1, max_points_per_centroid=10**9)
        km.train(np.ascontiguousarray(X))
        C = km.centroids
    elif name == "extract":
        feats = _extract_synthetic_images(path, len(X))
        info["how"] = f"pixels@8 -> {feats.shape[1]}-d, {len(feats):,} rows memory-mapped"
        C = None
    elif name in ("map-umap", "map-pca"):
        from core.projection import project

        xy = project(X, name.split("-")[1], seed=0)
        assert xy.shape == (len(X), 2) and np.isfinite(xy).all()
        C = None
    else:
        raise SystemExit(f"unknown stage {name!r}")
    info["seconds"] = time.perf_counter() - t
    info["rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    info["anon_gb"] = anon.stop()
    if C is not None:
        info["inertia"] = inertia(X, C)
    return info


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--k", type=int, nargs="+", default=[10, 100])
    ap.add_argument("--stages", nargs="+", default=["extract", "ours", "sklearn", "faiss", "map-umap", "map-pca"])
    ap.add_argument("--data", default="/tmp/clusterlens-scale", help="where the synthetic matrices are written")
    ap.add_argument("--one", nargs=3, metavar=("STAGE", "PATH", "K"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(stage(args.one[0], Path(args.one[1]), int(args.one[2]))))
        return
    data = Path(args.data)
    data.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    print(f"threads: OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}; load at start: "
          f"{os.getloadavg()[0]:.1f}", flush=True)
    for n in args.sizes:
        path = data / f"synthetic-{n}x{DIM}.npy"
        make_matrix(path, n)
        if "extract" in args.stages:
            make_images(path, n)
        for st in args.stages:
            for k in (args.k if st in ("ours", "ours-lloyd", "sklearn", "faiss") else [0]):
                out = subprocess.run([sys.executable, __file__, "--one", st, str(path), str(k)],
                                     capture_output=True, text=True, env=os.environ)
                if out.returncode:
                    print(out.stderr[-2000:], file=sys.stderr)
                    raise SystemExit(f"stage {st} at {n} failed")
                r = {"n": n, "stage": st, "k": k, **json.loads(out.stdout.strip().splitlines()[-1])}
                rows.append(r)
                print(json.dumps(r), flush=True)
    table(rows, args.sizes)


def table(rows: list[dict], sizes: list[int]) -> None:
    matrix_gb = {n: n * DIM * 4 / 2**30 for n in sizes}
    ref = {(r["n"], r["k"]): r["inertia"] for r in rows if r["stage"] == "sklearn"}
    print("\n| rows | stage | k | s | inertia vs sklearn | peak RSS GB | of it anonymous GB | 2x matrix + 1 GB | how |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        rel = (f"{100 * (r['inertia'] / ref[(r['n'], r['k'])] - 1):+.2f}%"
               if "inertia" in r and (r["n"], r["k"]) in ref else "")
        print(f"| {r['n']:,} | {r['stage']} | {r['k'] or ''} | {r['seconds']:.1f} | {rel} | {r['rss_gb']:.2f} | "
              f"{r.get('anon_gb', float('nan')):.2f} | {2 * matrix_gb[r['n']] + 1:.2f} | {r.get('how', '')} |")
    lo, hi = min(sizes), max(sizes)
    if lo < hi:
        print(f"\n| stage | k | growth exponent b (t ~ N^b, {lo:,} to {hi:,}) |")
        print("|---|---:|---:|")
        for st in dict.fromkeys(r["stage"] for r in rows):
            for k in dict.fromkeys(r["k"] for r in rows if r["stage"] == st):
                t = {r["n"]: r["seconds"] for r in rows if r["stage"] == st and r["k"] == k}
                if lo in t and hi in t:
                    print(f"| {st} | {k or ''} | {math.log(t[hi] / t[lo]) / math.log(hi / lo):.2f} |")


if __name__ == "__main__":
    main()
