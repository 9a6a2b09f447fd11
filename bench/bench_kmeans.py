"""k-means speed and quality: ours vs scikit-learn on Fashion-MNIST 70,000 × 784, k=10.

    python bench/bench_kmeans.py [--threads 2] [--repeats 2] [--n-init 3]

Equal work: k-means++, the same n_init, 2 threads each (threadpoolctl + torch.set_num_threads).
Peak memory: the largest RSS growth during fit (sampled every 2 ms), over the size of X.
"""
from __future__ import annotations

import argparse
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402
from _fmnist import load  # noqa: E402
from sklearn.cluster import KMeans as SKKMeans  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from core.cluster.kmeans import KMeans  # noqa: E402
from core.metrics import external_scores  # noqa: E402


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def timed(fit) -> tuple[float, float, object]:
    """(seconds, peak RSS growth in bytes, fitted model)."""
    base, peak, done = _rss(), [0], threading.Event()

    def watch() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _rss() - base)
            time.sleep(0.002)

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    t0 = time.perf_counter()
    model = fit()
    sec = time.perf_counter() - t0
    done.set()
    t.join()
    return sec, peak[0], model


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--n-init", type=int, default=3)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    X, y = load("all")
    print(f"Fashion-MNIST {X.shape} float32 ({X.nbytes / 2**20:.0f} MiB), k=10, n_init={a.n_init}, "
          f"{a.threads} threads, load average {os.getloadavg()[0]:.1f}")
    rows = []
    with threadpool_limits(a.threads):
        for rep in range(a.repeats):
            for name, make in [
                ("sklearn", lambda rep=rep: SKKMeans(n_clusters=10, n_init=a.n_init, random_state=rep)),
                ("ours", lambda rep=rep: KMeans(n_clusters=10, n_init=a.n_init, random_state=rep, device="cpu")),
            ]:
                sec, mem, m = timed(lambda make=make: make().fit(X))
                s = external_scores(y, m.labels_)
                rows.append((rep, name, sec, m.inertia_, mem / X.nbytes, m.n_iter_, s["acc"], s["nmi"]))
                print(f"  run {rep} {name:8s} {sec:7.2f} s  inertia {m.inertia_:.6g}  peak +{mem / X.nbytes:.2f}x X"
                      f"  iters {m.n_iter_}  acc {s['acc']:.3f}  nmi {s['nmi']:.3f}", flush=True)
    print("\n| run | sklearn s | ours s | time ours/sklearn | inertia ours/sklearn | peak mem over X (sk / ours) |")
    print("|---|---|---|---|---|---|")
    for rep in range(a.repeats):
        sk = next(r for r in rows if r[0] == rep and r[1] == "sklearn")
        us = next(r for r in rows if r[0] == rep and r[1] == "ours")
        print(f"| {rep} | {sk[2]:.2f} | {us[2]:.2f} | {us[2] / sk[2]:.2f} | {us[3] / sk[3]:.4f} | "
              f"{sk[4]:.2f}x / {us[4]:.2f}x |")
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
