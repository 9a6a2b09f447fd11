"""RUC benchmark: what RUC adds on top of the pipeline's own clustering, per clean-set strategy.

One command prints one table (mean and min over seeds; start -> after RUC; split precision):

    OMP_NUM_THREADS=1 python bench/bench_ruc.py --dataset digits            # raw-pixel k-means start
    OMP_NUM_THREADS=1 python bench/bench_ruc.py --dataset fmnist            # lite0@64 -> UMAP-10 -> k-means
    OMP_NUM_THREADS=1 python bench/bench_ruc.py --dataset digits --start dac
    OMP_NUM_THREADS=1 python bench/bench_ruc.py --dataset digits-simclr --start dac   # on the best start

Starting labels come from ``run_pipeline`` exactly as ``python -m core run`` makes them (same
features, reduction and seed), so the "start" columns are the pipeline's own figures:

- digits: pixels -> k-means (``--start kmeans``), pixels -> UMAP-10 -> k-means (``--start
  kmeans-umap``, the README's digits command) or pixels -> UMAP-10 -> DAC with the settings
  tuned in bench_dac.py (``--start dac``). RUC's images variant trains the small ConvNet on the
  8x8 images; its metric/confidence selectors work in the pipeline's UMAP-10 map of the same
  pixels (label-free; ``--embedding start`` uses the start's own space instead).
- digits-simclr: the same digits, but the start comes from the digits' own SimCLR backbone
  (``simclr-digits-sS``, trained into the workspace when missing, labels unused, as in
  bench_dac.py): SimCLR -> k-means, or SimCLR -> UMAP-10 -> DAC (bench_dac's "digits-simclr"
  settings, the pipeline's best digits route). RUC as for digits; selectors in the SimCLR
  features' UMAP-10 map.
- fmnist (test set, 10,000): EfficientNet-Lite0 @64 px -> UMAP-10 -> k-means / DAC. RUC's
  features variant trains MLP heads on the raw pixels (784-d: a second view of the images,
  not the space the start clustered in; ``--x umap`` / ``--x lite0`` for the others);
  selectors in the UMAP-10 space the start clustered in.

Ground truth is used only to score: RUC sees it only as ``eval_labels`` (history records), the
split precision is measured after the fact, and the final labels are the last epoch's (no
picking the best epoch). Split precision = share of the clean set whose label is right after
Hungarian matching of all labels to the classes. Each (strategy, seed) fit runs in its own
process with one thread (``--jobs`` at a time; ``--device cuda``: the fits share the GPU);
"seconds" is the wall time of one fit on this shared machine. Features, maps and finished fits
are cached under ``--workspace`` (default .cache/bench_ruc; ``--fresh`` refits).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# tuned RUC settings per dataset (see bench/RESULTS.md, "RUC"); --params overrides single keys
PARAMS = {
    "digits": dict(input="images", epochs=20, hidden=128, balance="uniform", max_clean=0.7, lambda_u=5.0),
    "fmnist": dict(input="features", epochs=20, balance="start"),
}
PARAMS["digits-simclr"] = dict(PARAMS["digits"])
DATA = {"digits": "digits", "fmnist": "fashion-mnist", "digits-simclr": "digits"}
BENCH_DAC_NAME = {"digits": "digits", "fmnist": "fashion", "digits-simclr": "digits-simclr"}


def pipeline_start(dataset: str, start: str, seed: int, ws: str, k: int = 10) -> dict:
    """The pipeline's labels for this seed plus what RUC needs (images, features, UMAP-10 map).
    ``k``: clusters of the start."""
    from core.config import ClusterConfig, DataConfig, FeatureConfig, MapConfig, RunConfig
    from core.pipeline import clustering_space, run_pipeline

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    algo = "kmeans" if start == "kmeans-umap" else start
    if dataset == "digits":
        feats = FeatureConfig(backbone="pixels")
        reduce = "none" if start == "kmeans" else "umap:10"
    elif dataset == "digits-simclr":
        import bench_dac

        bench_dac.space("digits-simclr", seed, Path(ws))   # trains simclr-digits-sS into ws when missing
        feats = FeatureConfig(backbone=f"simclr-digits-s{seed}")
        reduce = "none" if start == "kmeans" else "umap:10"
    else:
        feats = FeatureConfig(backbone="efficientnet_lite0", image_size=64)
        reduce = "umap:10"
    params: dict = {}
    if start == "dac":
        import bench_dac  # whatever the DAC engineer tuned last

        if hasattr(bench_dac, "DATASETS"):
            params = dict(bench_dac.DATASETS[BENCH_DAC_NAME[dataset]].get("dac", {}))
        else:
            params = dict(getattr(bench_dac, "FEATURE_PARAMS", {}))
    cfg = RunConfig(data=DataConfig(DATA[dataset]), features=feats,
                    cluster=ClusterConfig(algo=algo, k=k, seed=seed, reduce=reduce, params=params),
                    map=MapConfig(method="none"), workspace=ws)
    # the start labels are kept too: a DAC start costs minutes per seed on a busy CPU
    saved = Path(ws) / "bench_ruc_starts" / (
        f"{dataset}-{start}-s{seed}-" + (f"k{k}-" if k != 10 else "")
        + hashlib.sha1(repr(sorted(params.items())).encode()).hexdigest()[:10] + ".npy")
    t = time.perf_counter()
    if saved.is_file():
        r = run_pipeline(cfg.with_(cluster=ClusterConfig(k=10, seed=seed)))   # features only: quick k-means
        labels = np.load(saved)
    else:
        r = run_pipeline(cfg)
        labels = np.asarray(r.labels, dtype=np.int64)
        saved.parent.mkdir(parents=True, exist_ok=True)
        np.save(saved, labels)
    secs = time.perf_counter() - t
    key_dir = Path(ws) / "reduced"
    umap = clustering_space(r.features, ClusterConfig(reduce="umap:10", seed=seed), cache_dir=key_dir,
                            feature_key=f"{dataset}-{feats.backbone}-{feats.image_size}")
    return dict(labels=labels, truth=np.asarray(r.dataset.labels),
                images=r.dataset.native_array(), features=np.asarray(r.features, dtype=np.float32),
                umap=umap.astype(np.float32), seconds=secs,
                space=np.asarray(r.features, dtype=np.float32) if reduce == "none" else umap.astype(np.float32))


def _load(path: Path) -> dict:
    r = json.loads(path.read_text())
    r["start"], r["final"] = np.array(r["start"]), np.array(r["final"])
    return r


def scores(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    from core.metrics import external_scores

    s = external_scores(y, p)
    return np.array([s["acc"], s["nmi"], s["ari"]], dtype=float)


def fit_one(job: dict) -> dict:
    """One RUC fit (in a worker process, one CPU thread; on the GPU with ``--device cuda``)."""
    import torch

    torch.set_num_threads(1)
    from core.cluster.ruc import RUC, clean_precision

    d, strat, seed, params = job["data"], job["strategy"], job["seed"], job["params"]
    y = d["truth"]
    if params.get("input") == "images":
        X = d["images"]
    elif job["x"] == "pixels":
        X = d["images"].reshape(len(y), -1).astype(np.float32) / 255.0
    else:
        X = d["features"] if job["x"] == "lite0" else d["umap"]
    emb = d["umap"] if job["embedding"] == "umap" else job["start_space"]
    t = time.perf_counter()
    labels, rounds = d["labels"], []
    for r in range(job.get("rounds", 1)):
        # round r > 0 starts from round r-1's labels, as "retrain" in the app or CLI does
        first = labels
        m = RUC(strategy=strat, device=job.get("device", "cpu"), random_state=seed + 1000 * r, **params)
        m.fit(X, initial_labels=labels, embedding=emb, eval_labels=y)
        labels = m.labels_
        rounds.append(round(float(scores(y, labels)[0]), 3))
    secs = (time.perf_counter() - t) / len(rounds)
    # what the networks alone predict for every sample (RUC reports the clean set's own labels
    # for clean samples): kept to show what trusting the clean set adds
    networks = m.classes_[m.probabilities_.argmax(1)]
    return dict(strategy=strat, seed=seed, start=scores(y, d["labels"]), final=scores(y, m.labels_),
                networks_acc=float(scores(y, networks)[0]),
                init_frac=float(m.initial_clean_mask_.mean()),
                init_prec=clean_precision(first, m.initial_clean_mask_, y), rounds=rounds,
                clean_frac=float(m.clean_mask_.mean()), clean_prec=clean_precision(m.labels_, m.clean_mask_, y),
                seconds=secs, curve=[round(h["acc"], 3) for h in m.history_])


def split_row(d: dict, strategy: str, params: dict, embedding: np.ndarray) -> tuple[float, float]:
    """The initial clean split alone (no training): (fraction, precision). Cheap, so the table
    shows every strategy's split on every seed even when only some fits were run."""
    from core.cluster.ruc import RUC, clean_precision

    m = RUC(strategy=strategy, **{k: v for k, v in params.items() if k != "input"})
    labels = d["labels"]
    mask, _ = m._initial_split(embedding, labels, int(labels.max()) + 1, np.full(len(labels), -1))
    return float(mask.mean()), clean_precision(labels, mask, d["truth"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", choices=list(PARAMS), default="digits")
    ap.add_argument("--start", choices=["kmeans", "kmeans-umap", "dac"], default="kmeans",
                    help="digits: k-means on the raw pixels, k-means on their UMAP-10 map (the README's "
                         "digits command), or DAC on that map")
    ap.add_argument("--strategies", default="confidence,metric,hybrid")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--x", choices=["pixels", "umap", "lite0"], default="pixels",
                    help="features variant (fmnist): what the MLP heads see: the raw pixels (a second view, "
                         "not the space the start clustered in), the UMAP-10 map or the lite0 features")
    ap.add_argument("--embedding", choices=["umap", "start"], default="umap",
                    help="space of the selectors: the UMAP-10 map, or the space the start clustered in")
    ap.add_argument("--params", default="{}", help="RUC params overriding the tuned ones, a dict literal")
    ap.add_argument("--rounds", type=int, default=1,
                    help="RUC again on its own output this many times in all (the app's retrain, without corrections)")
    ap.add_argument("--jobs", type=int, default=2, help="fits run side by side, one thread each")
    ap.add_argument("--device", default="cpu", help="cpu | cuda: where each fit trains (fits share one GPU)")
    ap.add_argument("--workspace", default=".cache/bench_ruc")
    ap.add_argument("--fresh", action="store_true", help="refit even when a fit is cached")
    ap.add_argument("--cached-only", action="store_true", help="print the table of the fits already cached")
    a = ap.parse_args()
    if a.rounds < 1:
        ap.error(f"--rounds must be at least 1, got {a.rounds}")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import ast

    params = {**PARAMS[a.dataset], **ast.literal_eval(a.params)}
    t0 = time.perf_counter()
    data = {s: pipeline_start(a.dataset, a.start, s, a.workspace, k=10) for s in a.seeds}
    t_start = time.perf_counter() - t0
    jobs = []
    for strat in a.strategies.split(","):
        for s in a.seeds:
            d = data[s]
            start_space = d["space"]
            jobs.append(dict(data=d, strategy=strat, seed=s, params=params, x=a.x, embedding=a.embedding,
                             start_space=start_space, rounds=a.rounds, device=a.device))
    # every finished fit is kept on disk (keyed by dataset, start, strategy, seed and settings), so
    # an interrupted run resumes and a finished one re-prints its table at once; --fresh refits
    cache = Path(a.workspace) / "bench_ruc_fits"
    cache.mkdir(parents=True, exist_ok=True)
    tag = hashlib.sha1(repr((sorted(params.items()), a.x, a.embedding)
                            + ((a.rounds,) if a.rounds > 1 else ())
                            + ((a.device,) if a.device != "cpu" else ())).encode()).hexdigest()[:10]

    def path(j: dict) -> Path:
        return cache / f"{a.dataset}-{a.start}-{j['strategy']}-s{j['seed']}-{tag}.json"

    results = []
    todo = []
    for j in jobs:
        if path(j).is_file() and not a.fresh:
            results.append(_load(path(j)))
        else:
            todo.append(j)
    if a.cached_only:
        todo = []
    # CUDA cannot be used in a forked child of a process that touched it: start fresh workers
    ctx = multiprocessing.get_context("spawn" if a.device.startswith("cuda") else None)
    with ProcessPoolExecutor(max_workers=max(1, a.jobs), mp_context=ctx) as pool:
        futures = {pool.submit(fit_one, j): j for j in todo}
        for fut in as_completed(futures):
            r = fut.result()
            path(futures[fut]).write_text(json.dumps({k: (v.tolist() if isinstance(v, np.ndarray) else v)
                                                      for k, v in r.items()}))
            results.append(_load(path(futures[fut])))
    for r in sorted(results, key=lambda r: (r["strategy"], r["seed"])):
        nets = f" (networks alone {r['networks_acc']:.3f})" if "networks_acc" in r else ""
        more = f" (ACC after each round {r['rounds']})" if len(r.get("rounds", [])) > 1 else ""
        print(f"  {r['strategy']:10s} seed {r['seed']}: start ACC {r['start'][0]:.3f} -> {r['final'][0]:.3f}"
              f"{more}{nets}; "
              f"ACC per epoch {r['curve']}", file=sys.stderr)

    start_name = {"digits": {"kmeans": "pixels → k-means", "kmeans-umap": "pixels → UMAP-10 → k-means",
                             "dac": "pixels → UMAP-10 → DAC"},
                  "digits-simclr": {"kmeans": "SimCLR (digits) → k-means",
                                    "kmeans-umap": "SimCLR (digits) → UMAP-10 → k-means",
                                    "dac": "SimCLR (digits) → UMAP-10 → DAC"},
                  "fmnist": {"kmeans": "lite0@64 → UMAP-10 → k-means", "kmeans-umap": "lite0@64 → UMAP-10 → k-means",
                             "dac": "lite0@64 → UMAP-10 → DAC"}}
    st = np.array([scores(data[s]["truth"], data[s]["labels"]) for s in a.seeds])
    rounds_note = (f", {a.rounds} rounds (each on the last one's labels; ACC / split columns: the last round)"
                   if a.rounds > 1 else "")
    print(f"\n{DATA[a.dataset]} N={len(data[a.seeds[0]]['truth'])}, start = {start_name[a.dataset][a.start]} "
          f"(pipeline, seeds {a.seeds}; {t_start:.0f} s incl. cached features), RUC {params}, "
          f"selectors in {a.embedding}, X = {'images' if params.get('input') == 'images' else a.x}"
          f"{rounds_note}, fits on {a.device}{'' if a.device != 'cpu' else ' (one thread each)'}, {a.jobs} at a time\n")
    print("| strategy | start ACC mean (min) | → ACC mean (min) | NMI mean (min) | ARI mean (min) "
          "| init clean: frac, precision mean (min) | final clean: frac, precision | s / fit |")
    print("|---|---|---|---|---|---|---|---|")

    def mm(v: np.ndarray) -> str:
        return f"{v.mean():.3f} ({v.min():.3f})"

    print(f"| start | {mm(st[:, 0])} | – | {mm(st[:, 1])} | {mm(st[:, 2])} | – | – | – |")
    for strat in a.strategies.split(","):   # split precision of every strategy on every seed
        sp = np.array([split_row(data[s], strat, params, next(j for j in jobs if j["seed"] == s)["start_space"]
                                 if a.embedding == "start" else data[s]["umap"]) for s in a.seeds])
        print(f"| {strat}: initial split only | – | – | – | – | {sp[:, 0].mean():.2f}, {mm(sp[:, 1])} | – | – |")
    for strat in a.strategies.split(","):
        rs = [r for r in results if r["strategy"] == strat]
        if not rs:
            print(f"| {strat} | not run yet | | | | | | |")
            continue
        f = np.array([r["final"] for r in rs])
        seeds = sorted(r["seed"] for r in rs)
        name = strat if seeds == sorted(a.seeds) else f"{strat} (seeds {seeds} only)"
        print(f"| {name} | {mm(np.array([r['start'][0] for r in rs]))} | **{mm(f[:, 0])}** | {mm(f[:, 1])} "
              f"| {mm(f[:, 2])} | {np.mean([r['init_frac'] for r in rs]):.2f}, "
              f"{mm(np.array([r['init_prec'] for r in rs]))} | {np.mean([r['clean_frac'] for r in rs]):.2f}, "
              f"{mm(np.array([r['clean_prec'] for r in rs]))} | {np.mean([r['seconds'] for r in rs]):.0f} |")
    if a.rounds > 1:
        print("\nACC after each round, mean (min) over seeds:")
        for strat in a.strategies.split(","):
            rs = np.array([r["rounds"] for r in results
                           if r["strategy"] == strat and len(r.get("rounds", [])) == a.rounds])
            if len(rs):
                print(f"- {strat}: " + ", ".join(f"round {i + 1} {rs[:, i].mean():.3f} ({rs[:, i].min():.3f})"
                                                  for i in range(a.rounds)))


if __name__ == "__main__":
    main()
