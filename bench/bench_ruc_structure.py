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

A third table (``--views``) is a diagnosis that uses the truth on purpose, to find which part of
RUC keeps those 1s with the 8s. Per seed and view (the images with the images variant's ConvNet;
the raw pixels and the ImageNet lite0@64 features with a logistic regression): a classifier given
the true labels of every other digit, and how many of the 1s it calls "1". Then what RUC does
with the view (the ConvNet, or MLP heads on lite0), with its normal initial clean set and with
those 1s taken out of it ("unanchored"): how many end in the 1s' cluster, and ACC. And how many
of them a kNN vote in lite0 keeps as "8" (which would let them into the clean set).
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


def _ones_classifier_view(X: np.ndarray, y: np.ndarray, held: np.ndarray, kind: str, seed: int) -> np.ndarray:
    """Probabilities (n_held, 10) a classifier trained on the truth of every sample but ``held``
    gives the held ones: ``kind`` "convnet" (RUC's images network, 30 epochs on its strong
    augmentation, X = uint8 images) or "logistic" (standardised X)."""
    if kind == "logistic":
        from sklearn.linear_model import LogisticRegression

        Z = (X - X.mean(0)) / (X.std(0) + 1e-6)
        return LogisticRegression(max_iter=2000, C=0.1).fit(Z[~held], y[~held]).predict_proba(Z[held])
    import torch

    from core.augment import strong_augment
    from core.cluster.ruc import RUC, _make_net

    # the float (N, 1, H, W) batch in [0, 1] RUC's images variant trains on
    _, T = RUC(input="images")._validate_params_and_x(X)
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    net = _make_net("images", T, 10, 128)
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    train, yt = np.flatnonzero(~held), torch.as_tensor(y)
    for _ in range(30):
        perm = train[torch.randperm(len(train), generator=g).numpy()]
        for b in range(0, len(perm), 128):
            i = perm[b:b + 128]
            loss = torch.nn.functional.cross_entropy(net(strong_augment(T[i], generator=g, hflip=False)), yt[i])
            opt.zero_grad()
            loss.backward()
            opt.step()
    net.eval()
    with torch.no_grad():
        return net(T[held]).softmax(1).numpy()


def _ruc_view(job: dict) -> dict:
    """One RUC fit (hybrid, selectors in the pixels' UMAP map) on a view, optionally with the
    held 1s taken out of its initial clean set. Runs in a worker process, one thread."""
    import torch

    torch.set_num_threads(1)
    from core.cluster.ruc import RUC
    from core.metrics import external_scores

    held = job["held"]

    class Unanchored(RUC):
        def _initial_split(self, emb, labels, k, fixed_ids):
            mask, neighbors = super()._initial_split(emb, labels, k, fixed_ids)
            return mask & ~held, neighbors

    cls = Unanchored if job["unanchored"] else RUC
    m = cls(strategy="hybrid", random_state=job["seed"], **job["params"])
    m.fit(job["X"], initial_labels=job["labels"], embedding=job["umap"])
    f, y = m.labels_, job["truth"]
    return dict(job=job["name"], seed=job["seed"], to_ones=int((f[held] == job["c1"]).sum()),
                anchored=int(m.initial_clean_mask_[held].sum()), acc=float(external_scores(y, f)["acc"]))


def views_table(seeds: list[int], workspace: str, jobs: int) -> None:
    from concurrent.futures import ProcessPoolExecutor

    import bench_ruc

    from core.cluster import ruc_select as sel
    from core.config import ClusterConfig, DataConfig, FeatureConfig, MapConfig, RunConfig
    from core.pipeline import run_pipeline

    rows, fits = [], []
    for seed in seeds:
        d = bench_ruc.pipeline_start("digits", "kmeans", seed, workspace)
        y, lab = d["truth"], d["labels"]
        cfg = RunConfig(data=DataConfig("digits"), features=FeatureConfig(backbone="efficientnet_lite0", image_size=64),
                        cluster=ClusterConfig(k=10, seed=seed), map=MapConfig(method="none"), workspace=workspace)
        lite = np.asarray(run_pipeline(cfg).features, dtype=np.float32)
        c8 = np.bincount(lab[y == 8]).argmax()
        held = (y == 1) & (lab == c8)
        c1 = np.bincount(lab[(y == 1) & ~held]).argmax()
        vote = sel.knn_vote_mask(sel.knn_indices(lite, 10), lab)[held]
        for view, X, kind in (("images, ConvNet", d["images"], "convnet"),
                              ("raw pixels, logistic", d["images"].reshape(len(y), -1) / 255.0, "logistic"),
                              ("lite0@64, logistic", lite, "logistic")):
            p = _ones_classifier_view(np.asarray(X), y, held, kind, seed)
            rows.append(dict(seed=seed, view=view, n=int(held.sum()), one=int((p.argmax(1) == 1).sum()),
                             eight=int((p.argmax(1) == 8).sum()), p1=float(p[:, 1].mean()),
                             vote8=int(vote.sum()) if view.startswith("lite0") else None))
            print(f"  seed {seed} {view}: {rows[-1]}", file=sys.stderr, flush=True)
        base = dict(seed=seed, labels=lab, umap=d["umap"], truth=y, held=held, c1=c1)
        for name, X, params in (("ConvNet on the images", d["images"], bench_ruc.PARAMS["digits"]),
                                ("MLP heads on lite0", lite, dict(input="features", epochs=20, balance="uniform"))):
            for unanchored in (False, True):
                fits.append(dict(base, name=name, X=X, params=params, unanchored=unanchored))
    with ProcessPoolExecutor(max_workers=max(1, jobs)) as pool:
        done = list(pool.map(_ruc_view, fits))
    print(f"\ndigits, start = pipeline pixels -> k-means, seeds {seeds}: classifiers given the truth of every "
          "other digit, and what they call the 1s in the 8s' cluster\n")
    print("| seed | view, classifier | 1s in the 8s' cluster | called 1 | called 8 | mean p(1) | lite0 kNN vote: 8 |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        vote = "" if r["vote8"] is None else str(r["vote8"])
        print(f"| {r['seed']} | {r['view']} | {r['n']} | {r['one']} | {r['eight']} | {r['p1']:.2f} | {vote} |")
    print("\nRUC (hybrid, selectors in the pixels' UMAP-10 map) on each view: those 1s anchored as the "
          "start's initial clean set has them, or taken out of it\n")
    print("| seed | RUC's networks | initial clean set | of them anchored | end in the 1s' cluster | ACC |")
    print("|---|---|---|---|---|---|")
    for f, r in zip(fits, done, strict=True):
        print(f"| {r['seed']} | {r['job']} | {'without them' if f['unanchored'] else 'as selected'} | "
              f"{r['anchored']} | {r['to_ones']} | {r['acc']:.3f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--workspace", default=".cache/bench_ruc")
    ap.add_argument("--geometry", action="store_true", help="only the table of where the misplaced 1s lie")
    ap.add_argument("--views", action="store_true",
                    help="only the diagnosis of which view and which part of RUC keeps those 1s with the 8s")
    ap.add_argument("--jobs", type=int, default=2, help="--views: RUC fits side by side, one thread each")
    a = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if a.views:
        views_table(a.seeds, a.workspace, a.jobs)
        return
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
