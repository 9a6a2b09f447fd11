"""run_pipeline(config) -> RunResult: images → features → clustering → scores → 2-D map → workspace.

The app, the CLI and the benchmarks all go through these functions. Each step is also callable
on its own (the app caches them separately), and each takes the seed from the config.
"""
from __future__ import annotations

import csv
import errno
import inspect
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.cluster.base import BaseClusterer
from core.cluster.registry import clusterer_class
from core.config import ClusterConfig, DataConfig, FeatureConfig, MapConfig, RunConfig, validate
from core.data.base import ImageDataset
from core.errors import Cancelled, ParameterError, UnknownNameError, WorkspaceError
from core.route import AUTO, RouteChoice, choose_route
from core.store import DISK_FULL_ERRNOS, Store, disk_full_message

# progress(stage, fraction in [0, 1], message)
Progress = Callable[[str, float, str], None]
ShouldStop = Callable[[], bool]


@dataclass
class RunResult:
    run_id: int
    dataset: ImageDataset
    features: np.ndarray
    features_from_cache: bool
    labels: np.ndarray
    confidence: np.ndarray
    scores: dict[str, Any]
    history: list[dict[str, Any]]
    map_2d: np.ndarray | None
    artifacts: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    parent_run: int | None = None      # a retrained run: the reviewed run it came from
    route: dict[str, Any] | None = None   # the route chosen from the data (core.route), when asked

    def summary(self) -> dict[str, Any]:
        """The one JSON object `python -m core run --json` (and `retrain --json`) prints."""
        return {
            "run_id": self.run_id,
            **({"parent_run": self.parent_run} if self.parent_run is not None else {}),
            "dataset": self.dataset.name,
            "n_samples": len(self.dataset),
            "skipped": [{"id": s.id, "reason": s.reason} for s in self.dataset.skipped],
            "n_skipped": len(self.dataset.skipped),
            "features_from_cache": self.features_from_cache,
            "feature_dim": int(self.features.shape[1]),
            "scores": {k: v for k, v in self.scores.items() if k != "confusion"},
            "artifacts": self.artifacts,
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
            **({"route": self.route} if self.route is not None else {}),
        }


# -- steps ----------------------------------------------------------------------------------

def load_dataset(cfg: DataConfig, workspace: str | Path) -> ImageDataset:
    from core.data import open_dataset

    return open_dataset(cfg.source, workspace=workspace, limit=cfg.limit)


def compute_features(dataset: ImageDataset, cfg: FeatureConfig, workspace: str | Path, *,
                     progress: Progress | None = None,
                     should_stop: ShouldStop | None = None) -> tuple[np.ndarray, bool, str, Path]:
    """Features for ``dataset`` (from the content-keyed cache when possible).

    Returns (features, from_cache, cache_key, cache_path).
    """
    from core.features.backbones import BACKBONES
    from core.features.cache import FeatureCache, cached_extract

    cache = FeatureCache(Path(workspace) / "features")
    backbone, checkpoint = cfg.backbone, cfg.checkpoint
    if backbone not in BACKBONES:
        # a backbone trained in this workspace (`python -m core train-backbone`), used by its name;
        # an unknown name fails listing the built-in and the trained ones
        from core.ssl.registry import list_trained_backbones, trained_backbone_path

        if not any(b["name"] == backbone for b in list_trained_backbones(workspace)):
            BACKBONES.get(backbone)   # raises UnknownNameError listing the built-in names
        backbone, checkpoint = "checkpoint", str(trained_backbone_path(workspace, cfg.backbone))

    def on_batch(done: int, total: int, rate: float) -> None:
        if progress:
            left = (total - done) / rate if rate > 0 else float("nan")
            progress("features", done / max(total, 1), f"{done}/{total} images, {rate:.0f} img/s, {left:.0f} s left")

    feats, from_cache, key = cached_extract(
        cache, dataset, backbone, image_size=cfg.image_size, batch_size=cfg.batch_size,
        device=cfg.device, pca_dim=cfg.pca_dim, checkpoint=checkpoint,
        progress=on_batch, should_stop=should_stop,
    )
    return feats, from_cache, key, cache.root / key


def clustering_space(features: np.ndarray, cfg: ClusterConfig, *, cache_dir: Path | None = None,
                     feature_key: str | None = None, progress: Progress | None = None,
                     should_stop: ShouldStop | None = None) -> np.ndarray:
    """The features the clusterer sees: as extracted, or reduced (PCA / UMAP) first.

    With ``cache_dir`` and ``feature_key`` a reduction is kept on disk, so moving k or the metric
    re-clusters at once instead of re-running UMAP. ``progress("reduce", fraction, message)`` and
    ``should_stop`` reach the reduction (rows placed, where it can tell; a stop raises Cancelled).
    """
    from core.projection import reduce

    rows = _rows_progress("reduce", progress, should_stop)
    if cfg.reduce in ("none", "") or cache_dir is None or not feature_key:
        return reduce(features, cfg.reduce, seed=cfg.seed, progress=rows)
    path = reduced_path(cache_dir, feature_key, cfg)
    if path.is_file():
        try:
            Z = np.load(path, allow_pickle=False)
            if len(Z) == len(features):
                return Z
        except (OSError, ValueError):
            pass   # unreadable: recompute and overwrite
    Z = reduce(features, cfg.reduce, seed=cfg.seed, progress=rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    try:
        np.save(tmp, Z)
        tmp.replace(path)   # atomic: a crash never leaves a half file under the final name
    except OSError:
        tmp.unlink(missing_ok=True)   # a full disk keeps no half file; the caller reports it
        raise
    return Z


def _rows_progress(stage: str, progress: Progress | None, should_stop: ShouldStop | None):
    """core.projection's ``fn(done, total, what) -> False to stop`` from a pipeline progress."""
    if progress is None and should_stop is None:
        return None

    def rows(done: int, total: int, what: str) -> bool:
        if progress is not None:
            progress(stage, done / max(total, 1), what)
        return not (should_stop is not None and should_stop())
    return rows


def scaled(X: np.ndarray) -> np.ndarray:
    """Centred and divided by its average per-dimension spread: spaces of any size or scale weigh
    alike when joined, and each keeps its own geometry (one factor per space)."""
    X = np.asarray(X, dtype=np.float32)
    spread = float(X.std(0).mean())
    return (X - X.mean(0)) / (spread if spread > 0 else 1.0)


def joined_space(dataset: ImageDataset, features: np.ndarray, feature_key: str, feat_cfg: FeatureConfig,
                 cfg: ClusterConfig, workspace: str | Path, *, progress: Progress | None = None,
                 should_stop: ShouldStop | None = None, apart: bool = False) -> np.ndarray | list[np.ndarray]:
    """The space the clusterer sees: the backbone's features reduced as ``cfg.reduce`` says, and,
    when ``feat_cfg.join`` names more spaces, each of those reduced the same way, every one
    :func:`scaled`, side by side (N, sum of their widths). Features and reductions are cached.
    ``apart``: the joined spaces as a list instead, for a head that takes several (``temi``)."""
    from dataclasses import replace

    from core.config import parse_space

    cache_dir = Path(workspace) / "reduced"
    X = clustering_space(features, cfg, cache_dir=cache_dir, feature_key=feature_key, progress=progress,
                         should_stop=should_stop)
    if not feat_cfg.join:
        return X
    parts = [scaled(X)]
    for spec in feat_cfg.join:
        name, size = parse_space(spec)
        part_cfg = replace(feat_cfg, backbone=name, image_size=size, checkpoint=None, join=())
        feats, _, key, _ = compute_features(dataset, part_cfg, workspace, progress=progress, should_stop=should_stop)
        parts.append(scaled(clustering_space(feats, cfg, cache_dir=cache_dir, feature_key=key, progress=progress,
                                             should_stop=should_stop)))
    return parts if apart else np.concatenate(parts, axis=1)


def takes_spaces(cfg: ClusterConfig) -> bool:
    """Whether the algorithm (or RUC's start) takes several spaces apart (``--join`` with temi)."""
    algo = cfg.params.get("initial", "kmeans") if cfg.algo == "ruc" else cfg.algo
    try:
        return bool(getattr(clusterer_class(str(algo)), "multi_space", False))
    except (UnknownNameError, ImportError, AttributeError):   # the estimator's own check says what is wrong
        return False


def reduced_path(cache_dir: Path, feature_key: str, cfg: ClusterConfig) -> Path:
    """Where :func:`clustering_space` keeps ``cfg.reduce`` of these features (seeded)."""
    return Path(cache_dir) / f"{feature_key}-{cfg.reduce.replace(':', '')}-s{cfg.seed}.npy"


def build_clusterer(cfg: ClusterConfig, *, device: str = "auto") -> BaseClusterer:
    """The configured clusterer; unknown algorithm or parameter names list the valid ones."""
    cls = clusterer_class(cfg.algo)
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self"}
    base = {"n_clusters": cfg.k, "random_state": cfg.seed, "device": device, "metric": cfg.metric}
    params = {k: v for k, v in base.items() if k in accepted}
    unknown = sorted(set(cfg.params) - accepted)
    if unknown:
        raise ParameterError(
            f"{cfg.algo} has no parameter {', '.join(unknown)}; its parameters are: {', '.join(sorted(accepted))}"
        )
    params.update(cfg.params)
    return cls(**params)


def cluster(features: np.ndarray, cfg: ClusterConfig, *, device: str = "auto",
            dataset: ImageDataset | None = None, eval_labels: np.ndarray | None = None,
            fixed_labels: np.ndarray | None = None, initial_labels: np.ndarray | None = None,
            callback: Callable[[dict[str, Any]], bool | None] | None = None,
            space: np.ndarray | list[np.ndarray] | None = None) -> tuple[BaseClusterer, np.ndarray]:
    """Fit the configured clusterer. Returns (fitted estimator, the space it clustered in).

    ``eval_labels`` (ground truth) only reaches history records for display; ``fixed_labels``
    are a person's corrections (-1 = not corrected), honoured by DAC and RUC. ``space`` is the
    already reduced features when the caller has them (see :func:`clustering_space`); a list of
    spaces (:func:`joined_space` with ``apart``) goes as it is to a head that takes several, side by
    side to the others, and the returned space is always the side-by-side one.
    ``initial_labels`` (RUC only): the clustering to refine, instead of a fresh run of its
    ``initial`` clusterer (retraining passes the reviewed labels).
    """
    X = clustering_space(features, cfg) if space is None else space
    parts = X if isinstance(X, list) else None   # several spaces apart, for a head that takes them
    if parts is not None:
        X = np.concatenate(parts, axis=1)
    est = build_clusterer(cfg, device=device)
    fit_params = set(inspect.signature(est.fit).parameters)
    kwargs: dict[str, Any] = {}
    if "eval_labels" in fit_params and eval_labels is not None:
        kwargs["eval_labels"] = eval_labels
    if "callback" in fit_params and callback is not None:
        kwargs["callback"] = callback
    if "fixed_labels" in fit_params and fixed_labels is not None:
        kwargs["fixed_labels"] = fixed_labels
    inputs = parts if parts is not None and getattr(est, "multi_space", False) else X
    kind = getattr(est, "input", "auto")
    if kind in ("images", "pixels"):
        if dataset is None:
            raise ParameterError(f"{cfg.algo} with input={kind!r} needs the dataset, not only features")
        from core.data.image_array import images_as_array

        if kind == "images":
            size = int(cfg.params.get("image_size", 0)) or _native_size(dataset)
            inputs = images_as_array(dataset, size)
        else:   # RUC's heads on the raw pixels (a second view), at the native size
            size = _native_size(dataset, floor=1)
            inputs = images_as_array(dataset, size).reshape(len(dataset), -1).astype(np.float32) / 255.0
    if cfg.algo == "ruc" and initial_labels is not None:
        kwargs["initial_labels"] = np.asarray(initial_labels, dtype=np.int64)
        kwargs["embedding"] = X
    elif cfg.algo == "ruc":
        # RUC refines an initial clustering of the (reduced) features; its metric selector
        # votes in that same space
        initial = ClusterConfig(algo=est.initial, k=cfg.k, metric=cfg.metric, seed=cfg.seed,
                                params=dict(est.initial_params or {}))
        init_est = build_clusterer(initial, device=device)
        init_est.fit(parts if parts is not None and getattr(init_est, "multi_space", False) else X)
        kwargs["initial_labels"] = init_est.labels_
        kwargs["embedding"] = X
    est.fit(inputs, **kwargs)
    return est, X


def _native_size(dataset: ImageDataset, floor: int = 16) -> int:
    """Array datasets: their side, at least ``floor`` px (the ConvNets want 16); others 32."""
    arr = dataset.native_array()
    if arr is not None:
        return max(floor, int(arr.shape[1]))
    return 32


def score(X: np.ndarray, labels: np.ndarray, confidence: np.ndarray,
          truth: np.ndarray | None, *, seed: int = 0) -> dict[str, Any]:
    """Internal scores always; ACC/NMI/ARI/confusion when ground truth exists (scoring only)."""
    from core.metrics import external_scores, internal_scores

    scores: dict[str, Any] = {"n_samples": int(len(labels)),
                              "n_clusters": int(len(np.unique(labels))),
                              "confidence_mean": float(np.mean(confidence))}
    scores.update(internal_scores(X, labels, seed=seed))
    if truth is not None and (truth >= 0).any():
        ext = external_scores(truth, labels)
        scores.update({k: ext[k] for k in ("acc", "nmi", "ari")})
        scores["confusion"] = np.asarray(ext["confusion"]).tolist()
    return _plain(scores)


def make_map(features: np.ndarray, cfg: MapConfig, *, progress: Progress | None = None,
             should_stop: ShouldStop | None = None) -> np.ndarray | None:
    from core.projection import project

    if cfg.method == "none":
        return None
    return project(features, cfg.method, n_components=2, seed=cfg.seed,
                   progress=_rows_progress("map", progress, should_stop))


# -- the whole run ------------------------------------------------------------------------

@dataclass
class Inputs:
    """What a run clusters: the opened dataset and its (cached) features, recorded in the store."""

    dataset: ImageDataset
    dataset_id: int
    features: np.ndarray
    from_cache: bool
    feature_key: str
    feature_set_id: int


# finish(labels, confidence) -> (labels, confidence, extra config): a caller's last word on the
# estimator's result before it is scored and saved (retraining re-applies held corrections here)
Finish = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray, dict[str, Any]]]


def run_pipeline(cfg: RunConfig, *, progress: Progress | None = None,
                 should_stop: ShouldStop | None = None, dataset: ImageDataset | None = None) -> RunResult:
    """Run every step and record the run in the workspace; see module docstring.

    ``dataset``: the already opened ``cfg.data`` (the app keeps it in memory between runs).
    """
    validate(cfg)
    say = progress or (lambda stage, frac, msg: None)
    stop = should_stop or (lambda: False)
    seconds: dict[str, float] = {}
    store = Store(cfg.workspace)
    try:
        extra: dict[str, Any] = {}
        if cfg.features.backbone == AUTO or cfg.cluster.reduce == AUTO:
            dataset = dataset if dataset is not None else load_dataset(cfg.data, cfg.workspace)
            cfg, choice = resolve_route(cfg, dataset, say, stop, seconds)
            extra["route"] = choice.as_dict()
        inputs = prepare_inputs(cfg, store, say, stop, seconds, dataset=dataset)
        result = record_run(cfg, store, inputs, say, stop, seconds, config_extra=extra or None)
        result.route = extra.get("route")
        return result
    finally:
        store.close()


def resolve_route(cfg: RunConfig, dataset: ImageDataset, say: Progress, stop: ShouldStop,
                  seconds: dict[str, float]) -> tuple[RunConfig, RouteChoice]:
    """``cfg`` with its ``auto`` backbone / reduction replaced by the route chosen from the data
    (core.route); the person's fixed choices stay."""
    from dataclasses import replace

    t = time.perf_counter()
    f, c = cfg.features, cfg.cluster
    choice = choose_route(dataset, c.k, cfg.workspace, seed=c.seed, backbone=f.backbone, image_size=f.image_size,
                          reduce=c.reduce, device=f.device, metric=c.metric, progress=say, should_stop=stop)
    r = choice.chosen
    seconds["route"] = time.perf_counter() - t
    return cfg.with_(features=replace(f, backbone=r.backbone, image_size=r.image_size, join=r.join),
                     cluster=replace(c, reduce=r.reduce)), choice


def prepare_inputs(cfg: RunConfig, store: Store, say: Progress, stop: ShouldStop,
                   seconds: dict[str, float], *, dataset: ImageDataset | None = None) -> Inputs:
    """Open the dataset and compute (or reuse) its features; both recorded in ``store``."""
    t = time.perf_counter()
    say("data", 0.0, f"opening {cfg.data.source}")
    if dataset is None:
        dataset = load_dataset(cfg.data, cfg.workspace)
    if cfg.cluster.k > len(dataset):
        raise ParameterError(f"k={cfg.cluster.k} is larger than the number of images ({len(dataset)}): "
                             f"choose k ≤ {len(dataset)}")
    ds_id = store.upsert_dataset(dataset, cfg.data.source)
    seconds["data"] = time.perf_counter() - t
    say("data", 1.0, f"{len(dataset)} images, {len(dataset.skipped)} skipped")

    t = time.perf_counter()
    feats, from_cache, key, fpath = compute_features(dataset, cfg.features, cfg.workspace,
                                                     progress=say, should_stop=stop)
    fs_id = store.record_features(ds_id, key, cfg.features.backbone, cfg.features.image_size,
                                  int(feats.shape[1]), fpath)
    seconds["features"] = time.perf_counter() - t
    say("features", 1.0, "features reused from the cache" if from_cache else "features extracted")
    _check_stop(stop)
    return Inputs(dataset, ds_id, feats, from_cache, key, fs_id)


def record_run(cfg: RunConfig, store: Store, inputs: Inputs, say: Progress, stop: ShouldStop,
               seconds: dict[str, float], *, config_extra: dict[str, Any] | None = None,
               fixed_labels: np.ndarray | None = None, initial_labels: np.ndarray | None = None,
               finish: Finish | None = None, map_2d: np.ndarray | None = None,
               start_labels: np.ndarray | None = None) -> RunResult:
    """Start a run row, cluster, score, map and save; a failure or a stop marks the run so.

    ``config_extra`` is stored next to the config (e.g. ``parent_run``); ``fixed_labels`` /
    ``initial_labels`` go to the estimator (see :func:`cluster`); ``finish`` post-processes its
    labels; ``map_2d`` reuses an existing 2-D map instead of computing one. ``start_labels``: the
    labels RUC started from in the run's own cluster ids, saved as the run's ``start`` artifact
    (default: the estimator's ``initial_labels_`` when there is no ``finish`` to renumber them).
    """
    config = {**_plain(asdict(cfg)), **_plain(config_extra or {})}
    run_id = store.start_run(inputs.dataset_id, inputs.feature_set_id, cfg.cluster.algo, cfg.cluster.k, config)
    try:
        result = _cluster_and_save(cfg, store, run_id, inputs.dataset, inputs.features, inputs.from_cache,
                                   inputs.feature_key, say, stop, seconds, fixed_labels=fixed_labels,
                                   initial_labels=initial_labels, finish=finish, map_2d=map_2d,
                                   start_labels=start_labels)
        result.parent_run = (config_extra or {}).get("parent_run")
        return result
    except Cancelled as e:
        store.fail_run(run_id, str(e), cancelled=True)
        raise
    except BaseException as e:
        try:
            store.fail_run(run_id, f"{type(e).__name__}: {e}")
        except WorkspaceError:
            pass   # the workspace went read-only: the first error is the one to show
        raise


def _cluster_and_save(cfg: RunConfig, store: Store, run_id: int, dataset: ImageDataset,
                      feats: np.ndarray, from_cache: bool, feature_key: str, say: Progress,
                      stop: ShouldStop, seconds: dict[str, float], *,
                      fixed_labels: np.ndarray | None = None, initial_labels: np.ndarray | None = None,
                      finish: Finish | None = None, map_2d: np.ndarray | None = None,
                      start_labels: np.ndarray | None = None) -> RunResult:
    t = time.perf_counter()
    say("cluster", 0.0, f"{cfg.cluster.algo}, k={cfg.cluster.k}")

    def on_epoch(record: dict[str, Any]) -> bool:
        say("cluster", float(record.get("progress", 0.0)), json.dumps(_plain(record)))
        return not stop()

    truth = dataset.labels if dataset.has_labels else None
    space = joined_space(dataset, feats, feature_key, cfg.features, cfg.cluster, store.root,
                         progress=say, should_stop=stop, apart=takes_spaces(cfg.cluster))
    est, X = cluster(feats, cfg.cluster, device=cfg.features.device, dataset=dataset,
                     eval_labels=truth, fixed_labels=fixed_labels, initial_labels=initial_labels,
                     callback=on_epoch, space=space)
    _check_stop(stop)
    labels = np.asarray(est.labels_, dtype=np.int64)
    confidence = np.asarray(est.confidence_, dtype=np.float32)
    extra: dict[str, Any] = {}
    if finish is not None:
        labels, confidence, extra = finish(labels.copy(), confidence.copy())
        labels = np.asarray(labels, dtype=np.int64)
        confidence = np.asarray(confidence, dtype=np.float32)
    clean = getattr(est, "clean_mask_", None)
    unclean = None if clean is None else ~np.asarray(clean, dtype=bool)
    if start_labels is None and finish is None:
        start_labels = getattr(est, "initial_labels_", None)
    seconds["cluster"] = time.perf_counter() - t

    t = time.perf_counter()
    say("scores", 0.0, "scoring")
    scores = score(X, labels, confidence, truth, seed=cfg.cluster.seed)
    seconds["scores"] = time.perf_counter() - t

    t = time.perf_counter()
    if map_2d is None:
        say("map", 0.0, f"2-D map ({cfg.map.method})")
        map_2d = make_map(feats, cfg.map, progress=say, should_stop=stop)
    else:
        say("map", 1.0, "2-D map reused")
    seconds["map"] = time.perf_counter() - t
    _check_stop(stop)

    folder = store.root / "runs" / str(run_id)
    try:
        artifacts = write_artifacts(folder, dataset, labels, confidence, scores, map_2d, unclean=unclean,
                                    start=start_labels)
    except OSError as e:
        if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise WorkspaceError(
                f"the workspace {store.root} is read-only: cannot write {folder} ({e.strerror}); earlier runs "
                "are intact — choose a writable folder with --workspace") from None
        if e.errno in DISK_FULL_ERRNOS:
            raise WorkspaceError(disk_full_message(f"the workspace {store.root}", saved="earlier runs are intact; "
                                                   "this one was not saved")) from None
        raise WorkspaceError(f"cannot write {folder} ({e.strerror}); earlier runs are intact — free some "
                             "space or choose another folder with --workspace") from None
    history = [_plain(h) for h in getattr(est, "history_", [])]
    store.finish_run(run_id, labels, confidence, scores, history, artifacts, config_extra=extra or None)
    say("done", 1.0, f"run {run_id} saved")
    return RunResult(run_id=run_id, dataset=dataset, features=feats, features_from_cache=from_cache,
                     labels=labels, confidence=confidence, scores=scores, history=history,
                     map_2d=map_2d, artifacts={k: store.rel(v) for k, v in artifacts.items()},
                     seconds=seconds)


def write_artifacts(folder: Path, dataset: ImageDataset, labels: np.ndarray, confidence: np.ndarray,
                    scores: dict[str, Any], map_2d: np.ndarray | None, *,
                    unclean: np.ndarray | None = None, start: np.ndarray | None = None) -> dict[str, str | Path]:
    """labels.csv (sample id, path, cluster, confidence), scores.json, map.npy and — for RUC —
    unclean.npy ((N,) bool, True = in RUC's unclean set) and start.npy ((N,) int64, the labels RUC
    started from, which a retrain refines again), both row-aligned with the dataset's ids."""
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, str | Path] = {}
    from core.export import csv_cell  # file names starting with "=" must not become formulas

    labels_csv = folder / "labels.csv"
    with open(labels_csv, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["sample_id", "path", "cluster", "confidence"])
        for i, sid in enumerate(dataset.ids):
            w.writerow([csv_cell(sid), csv_cell(dataset.path(i) or ""), int(labels[i]),
                        f"{float(confidence[i]):.6f}"])
    out["labels_csv"] = labels_csv
    scores_json = folder / "scores.json"
    scores_json.write_text(json.dumps(scores, indent=2), encoding="utf-8")
    out["scores_json"] = scores_json
    if map_2d is not None:
        np.save(folder / "map.npy", map_2d.astype(np.float32))
        out["map"] = folder / "map.npy"
    if unclean is not None:
        np.save(folder / "unclean.npy", np.asarray(unclean, dtype=bool))
        out["unclean"] = folder / "unclean.npy"
    if start is not None:
        np.save(folder / "start.npy", np.asarray(start, dtype=np.int64))
        out["start"] = folder / "start.npy"
    return out


def _check_stop(stop: ShouldStop) -> None:
    if stop():
        raise Cancelled("stopped by the user; nothing from this run is shown as finished")


def _plain(obj: Any) -> Any:
    """numpy scalars/arrays → JSON-ready Python values, recursively."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj
