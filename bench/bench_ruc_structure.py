"""Why RUC stops near 0.91 on digits from raw-pixel k-means: the start's errors are structural.

    OMP_NUM_THREADS=1 python bench/bench_ruc_structure.py --workspace .cache/bench_ruc

The raw-pixel k-means start (ACC about 0.79) has a cluster holding 1s and 8s and splits the 1s
over two others. RUC fixes noisy members of a cluster, not the set of clusters, so this bench
asks whether any label-free re-clustering of the start, in the best maps the pipeline has,
would give RUC a start with the right structure. Per seed, ACC of:

  start       the pipeline's pixels -> k-means labels (what bench_ruc.py --dataset digits refines)
  lloyd       k-means iterations from the start's own centroids in the map (keeps its ids)
  kmeans      the engine's k-means in the map (k-means++, 10 restarts)
  gmm         full-covariance Gaussian mixture from the start's means and covariances
  ward        Ward agglomerative clustering of the map
  balanced    k-means with equal cluster sizes (Sinkhorn assignment, entropy eps x median
              squared distance) from the start's centroids: the equipartition prior DAC's and
              RUC's "uniform" balance use

Maps: "pixels" = the pipeline's UMAP-10 of the raw pixels (where RUC's selectors work in
bench_ruc.py); "simclr" = UMAP-10 of the digits' own SimCLR backbone (bench_dac.py's
"digits-simclr", trained into the workspace when missing). Ground truth only scores.

A second table (``--geometry`` prints only it; no SimCLR training) asks where the 1s the start
puts in the 8s' cluster lie, in the raw pixels RUC's networks see and in the pixels' UMAP-10 map
its selectors use: is the mean of those 1s nearer the 8s' mean or the other 1s' mean, which class
mean is nearest each of them (the 1s' mean taken without them), and whose are their 10 nearest
neighbours. Ground truth names the groups here, to explain the ceiling; nothing trains on it.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def centroids(E: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    return np.stack([E[labels == j].mean(0) for j in range(k)])


def lloyd(E: np.ndarray, C: np.ndarray, iters: int = 100) -> np.ndarray:
    for _ in range(iters):
        lab = ((E[:, None] - C[None]) ** 2).sum(-1).argmin(1)
        new = np.stack([E[lab == j].mean(0) if (lab == j).any() else C[j] for j in range(len(C))])
        if np.allclose(new, C):
            break
        C = new
    return ((E[:, None] - C[None]) ** 2).sum(-1).argmin(1)


def balanced_kmeans(E: np.ndarray, C: np.ndarray, eps: float, iters: int = 50) -> np.ndarray:
    """Lloyd with soft assignments constrained to equal cluster sizes (Sinkhorn, log domain)."""
    from scipy.special import logsumexp

    n, k = len(E), len(C)
    for _ in range(iters):
        d2 = ((E[:, None] - C[None]) ** 2).sum(-1)
        logk = -d2 / (eps * np.median(d2))
        u, v = np.zeros(n), np.zeros(k)
        for _ in range(100):
            u = -logsumexp(logk + v[None], axis=1)
            v = np.log(n / k) - logsumexp(logk + u[:, None], axis=0)
        P = np.exp(logk + u[:, None] + v[None])
        new = (P.T @ E) / P.sum(0)[:, None]
        if np.allclose(new, C, atol=1e-5):
            break
        C = new
    return P.argmax(1)


def relabelings(E: np.ndarray, start: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    from sklearn.cluster import AgglomerativeClustering
    from sklearn.mixture import GaussianMixture

    from core.config import ClusterConfig
    from core.pipeline import build_clusterer

    k = int(start.max()) + 1
    C = centroids(E, start, k)
    cov = np.stack([np.cov(E[start == j].T) + 1e-3 * np.eye(E.shape[1]) for j in range(k)])
    gmm = GaussianMixture(k, covariance_type="full", weights_init=np.bincount(start, minlength=k) / len(start),
                          means_init=C, precisions_init=np.linalg.inv(cov), reg_covar=1e-4, random_state=seed)
    return {
        "start": start,
        "lloyd": lloyd(E, C),
        "kmeans": build_clusterer(ClusterConfig(algo="kmeans", k=k, seed=seed,
                                                params={"n_init": 10}), device="cpu").fit(E).labels_,
        "gmm": gmm.fit(E).predict(E),
        "ward": AgglomerativeClustering(k).fit_predict(E),
        "balanced eps 0.02": balanced_kmeans(E, C, 0.02),
        "balanced eps 0.05": balanced_kmeans(E, C, 0.05),
    }


def misplaced_ones(E: np.ndarray, start: np.ndarray, y: np.ndarray, n_neighbors: int = 10) -> dict:
    """Where the 1s that ``start`` puts in the 8s' cluster (the one holding most 8s) lie in ``E``."""
    from sklearn.neighbors import NearestNeighbors

    c8 = np.bincount(start[y == 8]).argmax()
    moved = (y == 1) & (start == c8)
    groups = {"8": y == 8, "other 1s": (y == 1) & ~moved}
    groups.update({str(d): y == d for d in range(10) if d not in (1, 8)})
    means = {g: E[m].mean(0) for g, m in groups.items()}
    names = list(means)
    d = np.linalg.norm(E[moved][:, None] - np.stack([means[g] for g in names])[None], axis=-1)
    nearest = np.array(names)[d.argmin(1)]
    centre = E[moved].mean(0)
    _, idx = NearestNeighbors(n_neighbors=n_neighbors + 1).fit(E).kneighbors(E[moved])
    nb = idx[:, 1:].ravel()
    return {
        "n": int(moved.sum()),
        "to 8s / to other 1s": float(np.linalg.norm(centre - means["8"]) / np.linalg.norm(centre - means["other 1s"])),
        "nearest mean 8s": float(np.mean(nearest == "8")),
        "nearest mean other 1s": float(np.mean(nearest == "other 1s")),
        "neighbours 8s": float(np.mean(groups["8"][nb])),
        "neighbours same group": float(np.mean(moved[nb])),
        "neighbours other 1s": float(np.mean(groups["other 1s"][nb])),
    }


def geometry_table(seeds: list[int], workspace: str) -> None:
    import bench_ruc

    rows = []
    for seed in seeds:
        d = bench_ruc.pipeline_start("digits", "kmeans", seed, workspace)
        for name, E in (("raw pixels (64-d)", d["features"]), ("pixels UMAP-10", d["umap"])):
            rows.append((seed, name, misplaced_ones(np.asarray(E, dtype=np.float64), d["labels"], d["truth"])))
    print(f"\ndigits, start = pipeline pixels -> k-means: the 1s in the 8s' cluster, seeds {seeds}\n")
    keys = list(rows[0][2])
    print("| seed | space | " + " | ".join(keys) + " |")
    print("|---|---|" + "---|" * len(keys))
    for seed, name, r in rows:
        print(f"| {seed} | {name} | {r['n']} | " + " | ".join(f"{r[k]:.2f}" for k in keys[1:]) + " |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--workspace", default=".cache/bench_ruc")
    ap.add_argument("--geometry", action="store_true", help="only the table of where the misplaced 1s lie")
    a = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if a.geometry:
        geometry_table(a.seeds, a.workspace)
        return
    import bench_dac
    import bench_ruc

    from core.metrics import external_scores

    rows: dict[tuple[str, str], list[float]] = {}
    for seed in a.seeds:
        d = bench_ruc.pipeline_start("digits", "kmeans", seed, a.workspace)
        sim, y, _ = bench_dac.space("digits-simclr", seed, Path(a.workspace))
        assert np.array_equal(y, d["truth"])
        for name, E in (("pixels", d["umap"]), ("simclr", np.asarray(sim, dtype=np.float64))):
            for method, lab in relabelings(np.asarray(E, dtype=np.float64), d["labels"], seed).items():
                acc = float(external_scores(y, lab)["acc"])
                rows.setdefault((name, method), []).append(acc)
                print(f"  seed {seed} {name:6s} {method:18s} ACC {acc:.3f}", file=sys.stderr, flush=True)
    print(f"\ndigits N=1797, start = pipeline pixels -> k-means, seeds {a.seeds}; ACC per seed, mean\n")
    print("| map | method | " + " | ".join(f"seed {s}" for s in a.seeds) + " | mean |")
    print("|---|---|" + "---|" * (len(a.seeds) + 1))
    for (name, method), accs in rows.items():
        print(f"| {name} UMAP-10 | {method} | " + " | ".join(f"{v:.3f}" for v in accs) + f" | {np.mean(accs):.3f} |")
    geometry_table(a.seeds, a.workspace)


if __name__ == "__main__":
    main()
