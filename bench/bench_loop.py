"""The correction loop, measured: a person reviews the first tiles of the review queue, fixes the
wrong ones, and RUC is retrained with those fixes held (issues 5 and 6).

    OMP_NUM_THREADS=1 python bench/bench_loop.py --workspace .cache/bench_loop
    OMP_NUM_THREADS=1 python bench/bench_loop.py --dataset fmnist --budgets 0 200 1000
    OMP_NUM_THREADS=1 python bench/bench_loop.py --refine current     # the retrain refines the run's labels
    python bench/bench_loop.py --compare      # both refines' cached cells: can a label-free signal choose?

Per seed, the start is the README's RUC command for the dataset through ``run_pipeline`` (digits:
pixels -> UMAP-10 -> k-means -> RUC, images variant; fmnist, the 10,000 test images: lite0 @64 px ->
UMAP-10 -> k-means -> RUC, MLP heads on the raw pixels). Then, for each review order and budget B, a copy of
that workspace gets B tiles reviewed and ``core.retrain.retrain(..., algo="ruc")`` makes a new run
(``--refine start``, the default: RUC starts from the labels the run's RUC started from, the fixes
applied; ``--refine current``: from the run's own labels, the fixes applied).

The person is simulated, and this is the only place ground truth steers anything: it stands in
for what someone looking at the image knows. They name each cluster once, after the class most
of it holds (Hungarian matching of the run's labels to the classes, as one would name galleries),
then look at the first B tiles of the order and move each wrong tile to the cluster named after
its class (one ``ReviewSession.move`` per target cluster, as a lasso or a multi-select does).
Orders (``ReviewSession.review_queue``, as the Review page shows them): "doubtful" = the review
queue, given the run's features (RUC's unclean set first, then low confidence and odd-in-cluster);
"sample" = the spot check, a random order (seeded with the bench seed); "split" (``--orders
split``, B = tiles per part) = the Review page's Split (k = 2 on the run's features) applied to
each cluster in turn: the person looks at B random tiles of the new part and merges it into the
cluster named after the class most of them show, or undoes the split when that is its own.

Columns: wrong tiles found (samples the corrections moved from a wrong cluster to the right one;
for "doubtful" and "sample", the wrong ones among the B reviewed); ACC with the fixes alone (no retraining); ACC of
the retrained run. Each (seed, order, budget) runs in its own process with one thread
(``--jobs`` at a time); starts and finished cells are cached under ``--workspace``/<dataset>
(``--fresh`` redoes the cells). Each cell also records label-free signals of the retrained run
(RUC's final clean fraction, mean confidence, silhouette, Davies-Bouldin, Calinski-Harabasz);
``--compare`` asks, from the cells of both refines, whether picking by one of them per seed would
choose the better refine.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# the README's RUC commands (bench_ruc.py's settings, hybrid strategy): data, backbone, image size, RUC
DATASETS = {
    "digits": ("digits", "pixels", None, dict(strategy="hybrid", input="images", epochs=20, hidden=128,
                                              balance="uniform", max_clean=0.7, lambda_u=5.0)),
    "fmnist": ("fashion-mnist", "efficientnet_lite0", 64, dict(strategy="hybrid", input="pixels", epochs=20,
                                                                balance="start")),
}


def start_run(ws: Path, dataset: str, seed: int) -> int:
    """The README's RUC run for ``dataset`` in workspace ``ws`` (made once, reused after)."""
    from core.config import ClusterConfig, DataConfig, FeatureConfig, MapConfig, RunConfig
    from core.pipeline import run_pipeline
    from core.store import Store

    if (ws / "start.json").is_file():
        return int(json.loads((ws / "start.json").read_text())["run_id"])
    data, backbone, size, params = DATASETS[dataset]
    cfg = RunConfig(data=DataConfig(data), features=FeatureConfig(backbone=backbone, image_size=size),
                    cluster=ClusterConfig(algo="ruc", k=10, seed=seed, reduce="umap:10", params=dict(params)),
                    map=MapConfig(method="none"), workspace=str(ws))
    r = run_pipeline(cfg)
    with Store(ws) as s:
        assert s.run(r.run_id)["status"] == "done"
    (ws / "start.json").write_text(json.dumps({"run_id": r.run_id}))
    return r.run_id


def person_names(labels: np.ndarray, truth: np.ndarray) -> dict[int, int]:
    """class -> the cluster a person would name after it: the scorer's one-to-one (Hungarian)
    matching, which is one-to-one both ways here (k = the number of classes)."""
    from core.metrics import external_scores

    mapping = external_scores(truth, labels)["mapping"]            # {cluster: class}
    assert len(set(mapping.values())) == len(mapping), "k must equal the number of classes"
    return {cls: cl for cl, cls in mapping.items()}


def one_cell(job: dict) -> dict:
    """Review ``budget`` tiles in ``order`` on a copy of the seed's workspace, then retrain RUC."""
    import torch

    torch.set_num_threads(1)
    from core.config import DataConfig
    from core.features import FeatureCache
    from core.metrics import external_scores
    from core.pipeline import load_dataset
    from core.retrain import retrain
    from core.review import ReviewSession
    from core.store import Store

    src, dst = Path(job["start_ws"]), Path(job["cell_ws"])
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst)
    truth = np.asarray(load_dataset(DataConfig(DATASETS[job["dataset"]][0]), str(dst)).labels)
    acc = lambda p: float(external_scores(truth, p)["acc"])  # noqa: E731
    t = time.perf_counter()
    with Store(dst) as store:
        run = store.run(job["run_id"])
        session = ReviewSession(store, job["run_id"])
        labels = session.current_labels()
        key = store.query("SELECT cache_key FROM feature_sets WHERE id=?", (run["feature_set_id"],))[0]["cache_key"]
        feats = FeatureCache(dst / "features").get(key)   # what the app's review queue is given
        names = person_names(labels, truth)
        if job["order"] == "split":
            n_seen = split_and_look(session, feats, truth, names, job["budget"], job["seed"])
        else:
            order = session.review_queue(order=job["order"], features=feats, seed=job["seed"])
            seen = order[: job["budget"]]
            want = np.array([names[int(c)] for c in truth[seen]])
            off = want != labels[seen]
            wrong, where = seen[off], want[off]
            for to in np.unique(where):
                session.move(wrong[where == to], int(to))
            n_seen = len(seen)
        fixed_only = session.current_labels()
        right = np.array([names[int(c)] for c in truth])       # each sample's right cluster
        found = int(((labels != right) & (fixed_only == right)).sum())
        made_wrong = int(((labels == right) & (fixed_only != right)).sum())
    r = retrain(dst, job["run_id"], algo="ruc", refine=job.get("refine", "start"))
    unclean = np.load(dst / r.artifacts["unclean"]) if "unclean" in r.artifacts else np.zeros(len(r.labels), bool)
    # what a person could see without ground truth, to ask whether one of them picks the better refine
    signals = dict(clean=float(1.0 - unclean.mean()), confidence=float(r.scores["confidence_mean"]),
                   **{k: float(r.scores[k]) for k in ("silhouette", "davies_bouldin", "calinski_harabasz")
                      if r.scores.get(k) is not None})
    out = dict(seed=job["seed"], order=job["order"], budget=job["budget"], start=acc(labels), seen=n_seen,
               found=found, made_wrong=made_wrong, fixed_only=acc(fixed_only), retrained=acc(r.labels),
               seconds=time.perf_counter() - t, signals=signals)
    shutil.rmtree(dst, ignore_errors=True)
    return out


def split_and_look(session, feats: np.ndarray, truth: np.ndarray, names: dict[int, int], per_part: int,
                   seed: int) -> int:
    """The "split" order: the Review page's Split (k = 2, k-means on the run's features) on every
    cluster in turn; the person looks at ``per_part`` random tiles of the new part and, when most
    of them show a class another cluster is named after, merges the part into that cluster;
    otherwise undoes the split. Returns the number of tiles looked at."""
    rng = np.random.default_rng(seed)
    seen = 0
    for c in session.clusters():
        if (session.current_labels() == c).sum() < 2:
            continue
        session.split(c, 2, feats, seed=seed)
        new = session.log()[-1]["detail"]["new"][0]
        part = np.flatnonzero(session.current_labels() == new)
        look = rng.choice(part, size=min(per_part, len(part)), replace=False)
        seen += len(look)
        counts = np.bincount(truth[look])
        target = names[int(counts.argmax())]
        if target != c and counts.max() > len(look) / 2:
            session.merge(target, new)
        else:
            session.undo()
    return seen


# label-free signals of a retrained run and which way is better: +1 higher, -1 lower
SIGNALS = {"clean": 1, "confidence": 1, "silhouette": 1, "davies_bouldin": -1, "calinski_harabasz": 1}


def compare_refines(cells: Path, seeds: list[int], budgets: list[int], orders: list[str]) -> None:
    """Per cell, ACC of both refines, and the ACC one gets by letting each signal pick per seed."""
    def load(seed: int, order: str, budget: int, tag: str) -> dict | None:
        p = cells / f"s{seed}-{order}-{budget}{tag}.json"
        r = json.loads(p.read_text()) if p.is_file() else None
        return r if r and "signals" in r else None

    print("\nretrained ACC, mean over the seeds with both refines' cells; 'pick by X' = per seed, the refine whose "
          "retrained run scores better on X (no ground truth); (n/m) = seeds where that is the better ACC\n")
    print("| order | tiles | seeds | refine=start | refine=current | "
          + " | ".join(f"pick by {k}" for k in SIGNALS) + " |")
    print("|---|---|---|---|---|" + "---|" * len(SIGNALS))
    for b in budgets:
        for o in (orders if b else ["doubtful"]):
            pairs = [(load(s, o, b, ""), load(s, o, b, "-current")) for s in seeds]
            pairs = [(x, y) for x, y in pairs if x and y]
            if not pairs:
                continue
            cols = []
            for k, sign in SIGNALS.items():
                picks = [x if sign * (x["signals"][k] - y["signals"][k]) >= 0 else y for x, y in pairs]
                right = sum(p["retrained"] == max(x["retrained"], y["retrained"])
                            for p, (x, y) in zip(picks, pairs, strict=True))
                cols.append(f"{np.mean([p['retrained'] for p in picks]):.3f} ({right}/{len(pairs)})")
            start, current = np.mean([x["retrained"] for x, _ in pairs]), np.mean([y["retrained"] for _, y in pairs])
            print(f"| {'none' if b == 0 else o} | {b} | {len(pairs)} | {start:.3f} | {current:.3f} | "
                  + " | ".join(cols) + " |")


def main() -> None:
    from core.config import RETRAIN_REFINE

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", choices=list(DATASETS), default="digits")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--budgets", nargs="+", type=int, default=[0, 50, 100, 200])
    ap.add_argument("--orders", default="doubtful,sample")
    ap.add_argument("--refine", choices=list(RETRAIN_REFINE), default="start",
                    help="what the retrain's RUC starts from: the run's RUC start (the default) or its labels")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--workspace", default=".cache/bench_loop")
    ap.add_argument("--fresh", action="store_true")
    ap.add_argument("--compare", action="store_true",
                    help="no runs: from the cached cells of both refines, can a label-free signal pick the better one?")
    a = ap.parse_args()
    if a.compare:
        compare_refines(Path(a.workspace) / a.dataset / "cells", a.seeds, a.budgets, a.orders.split(","))
        return
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    root = Path(a.workspace) / a.dataset
    t0 = time.perf_counter()
    starts = {s: start_run(root / f"start-s{s}", a.dataset, s) for s in a.seeds}
    t_start = time.perf_counter() - t0
    cache = root / "cells"
    cache.mkdir(parents=True, exist_ok=True)
    tag = "" if a.refine == "start" else f"-{a.refine}"
    jobs = [dict(dataset=a.dataset, seed=s, order=o, budget=b, run_id=starts[s], start_ws=str(root / f"start-s{s}"),
                 cell_ws=str(root / f"cell-s{s}-{o}-{b}{tag}"), refine=a.refine)
            for s in a.seeds for b in a.budgets for o in (a.orders.split(",") if b else ["doubtful"])]
    results, todo = [], []
    for j in jobs:
        p = cache / f"s{j['seed']}-{j['order']}-{j['budget']}{tag}.json"
        (todo.append(j) if a.fresh or not p.is_file() else results.append(json.loads(p.read_text())))
    with ProcessPoolExecutor(max_workers=max(1, a.jobs)) as pool:
        futures = {pool.submit(one_cell, j): j for j in todo}
        for fut in as_completed(futures):
            r = fut.result()
            (cache / f"s{r['seed']}-{r['order']}-{r['budget']}{tag}.json").write_text(json.dumps(r))
            print(f"  seed {r['seed']} {r['order']:8s} B={r['budget']:4d}: {r['found']} wrong found "
                  f"({r.get('made_wrong', 0)} right ones moved wrong), "
                  f"fixes alone {r['fixed_only']:.3f}, retrained {r['retrained']:.3f} ({r['seconds']:.0f} s)",
                  file=sys.stderr)
            results.append(r)

    def mm(v) -> str:
        v = np.asarray(v, dtype=float)
        return f"{v.mean():.3f} ({v.min():.3f})"

    data, backbone, size, params = DATASETS[a.dataset]
    print(f"\n{data}: start = the README's RUC run ({backbone}{f'@{size}' if size else ''} → UMAP-10 → k-means → "
          f"RUC {params}), "
          f"seeds {a.seeds} ({t_start:.0f} s for the starts incl. cached ones); retrain = RUC with the fixes held, "
          f"refine={a.refine}, "
          f"one thread per cell, {a.jobs} at a time\n")
    print("| order | tiles reviewed | wrong found, mean | start ACC mean (min) | fixes alone: ACC mean (min) "
          "| retrained: ACC mean (min) | s / cell |")
    print("|---|---|---|---|---|---|---|")
    for b in a.budgets:
        for o in (a.orders.split(",") if b else ["doubtful"]):
            rs = [r for r in results if r["budget"] == b and r["order"] == o]
            if not rs:
                continue
            name = "none (retrain only)" if b == 0 else o
            tiles = b if o != "split" else f"{b} per part ({np.mean([r['seen'] for r in rs]):.0f} seen)"
            print(f"| {name} | {tiles} | {np.mean([r['found'] for r in rs]):.0f} | {mm([r['start'] for r in rs])} "
                  f"| {mm([r['fixed_only'] for r in rs])} | **{mm([r['retrained'] for r in rs])}** "
                  f"| {np.mean([r['seconds'] for r in rs]):.0f} |")


if __name__ == "__main__":
    main()
