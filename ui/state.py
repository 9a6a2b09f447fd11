"""The app's durable state: ONE typed dataclass in ``st.session_state``, written by callbacks.

Widgets keep their own keys only while they are on screen (Streamlit drops them when a page is
left), so every widget reads its initial value from :class:`AppState` and writes back through a
callback. Pages never assign to the state directly; they call the functions below.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import streamlit as st

from core.config import ClusterConfig, DataConfig, FeatureConfig, MapConfig
from core.errors import ClusterLensError
from ui import engine
from ui.engine import FeatureInfo, TrainInfo
from ui.filters import Filter
from ui.jobs import Job, Work
from ui.settings import Settings, allowed_folder
from ui.uploads import Upload, save_uploads

_KEY = "clusterlens"


@dataclass
class Gallery:
    cluster: int | None = None      # None = the map selection
    order: str = "most typical first"
    page: int = 1
    sel_page: int = 1               # page of the map-selection gallery


@dataclass(frozen=True)
class TrainSettings:
    """The Features page's "train a backbone" form (defaults: core.ssl.train.train_backbone's)."""

    method: str = "simclr"
    arch: str = "auto"
    image_size: int | None = None   # None = the architecture's choice for these images
    epochs: int | None = None       # None = the engine's schedule (about 560 steps) for these images
    batch_size: int = 128
    lr: float | None = None         # None = the method's default
    temperature: float = 0.5        # simclr
    augment: str = "auto"           # simclr's views: auto | standard | mild | gentle
    init: str | None = None         # metric: the trained backbone to refine
    n_clusters: int = 10            # metric: pseudo-label clusters
    metric_loss: str = "triplet"    # metric
    margin: float = 0.2             # metric
    seed: int = 0
    device: str = "auto"
    name: str = ""                  # "" = the engine's METHOD-ARCH-DATASET


@dataclass
class Review:
    """The Review page (ui/review.py writes it); reset when the run under review changes."""

    run_id: int | None = None        # the run these fields belong to
    view: str = "queue"              # "queue" (most doubtful first) | "sample" (random: spot check) | "cluster"
    cluster: int = 0                 # the cluster browsed in the "cluster" view (-1 = outliers)
    page: int = 1
    selected: list[str] = field(default_factory=list)   # sample ids picked for the next edit
    pick_ack: float = 0.0            # the tile picker's last click taken in (ui/tile_picker.py)
    message: str | None = None       # the last edit's confirmation (set after the write returned)
    error: str | None = None
    area: str = "edit"               # where message / error show: "edit" (top) | "export" (its tab)
    confirm: tuple[str, str] | None = None   # (format, path) of an export waiting for "replace"
    history_id: str | None = None    # the sample whose edits are listed
    sel_page: int = 1                # page of the "what is selected" gallery (ui.review.selection_panel)


@dataclass
class AppState:
    data: DataConfig | None = None
    data_label: str = ""
    data_error: str | None = None
    features: FeatureConfig = FeatureConfig(backbone="auto", image_size=None, device="auto")   # core.route
    feature_info: FeatureInfo | None = None
    route: dict[str, Any] | None = None   # the last route chosen from this data (core.route), kept when another is used
    train: TrainSettings = TrainSettings()
    trained: TrainInfo | None = None  # the last training's outcome (its backbone is in the workspace)
    cluster: ClusterConfig = ClusterConfig(algo="kmeans", k=10, reduce="pca:50")
    algo_params: dict[str, dict[str, Any]] = field(default_factory=dict)   # per algorithm, edited values
    run_id: int | None = None
    compare: tuple[int | None, int | None] = (None, None)
    map: MapConfig = MapConfig(method="umap", seed=0)   # separates clusters; PCA past UMAP_MAX_POINTS
    color_by: str = "cluster"
    threshold: float = 0.2           # confidence below this counts as doubtful
    gallery: Gallery = field(default_factory=Gallery)
    selected_ids: list[str] = field(default_factory=list)
    filter: Filter = Filter()        # what Explore and Review show (ui/filters.py)
    labels_drawn: dict[str, int] = field(default_factory=dict)   # page → edit version its pick lists show
    review: Review = field(default_factory=Review)
    tile_size: str = "medium"        # image tiles on Review and Explore: small | medium | large (ui.tile_picker)
    enlarged: str | None = None      # the sample id shown in the enlarged view (ui/enlarged.py), None = closed
    map_shown: tuple[str, str, int] | None = None   # (feature key, method, seed) of the map Explore last drew
    job: Job | None = None
    notice: str | None = None        # one-line outcome of the last job, shown once
    outcome_page: str | None = None  # the page the notice / error belongs to (shown there only; ui.widgets)
    outcome_msg: tuple[str | None, str | None] = (None, None)   # the (error, notice) outcome_page is for
    error: str | None = None


def get_state() -> AppState:
    if _KEY not in st.session_state:
        st.session_state[_KEY] = AppState()
    return st.session_state[_KEY]


def settings() -> Settings:
    return Settings.from_env()


def bind(key: str, apply: Callable[[AppState, Any], None]) -> dict[str, Any]:
    """Widget kwargs: ``key`` plus a callback copying the widget's value into the state."""
    def callback() -> None:
        apply(get_state(), st.session_state[key])
    return {"key": key, "on_change": callback}


# -- data ------------------------------------------------------------------------------------

UMAP_MAX_POINTS = 100_000   # UMAP of 70,000 points ≈ 1 min on 2 cores (shared/MEASURED.md); past it, PCA


def choose_data(source: str, label: str, limit: int | None = None, n: int | None = None) -> None:
    """A new dataset: everything derived from the old one is forgotten (not deleted). The map opens
    on UMAP (it separates clusters) unless ``n`` images would make it slow."""
    s = get_state()
    stop_job()
    s.map = MapConfig(method="pca" if n is not None and n > UMAP_MAX_POINTS else "umap", seed=s.map.seed)
    s.data, s.data_label, s.data_error = DataConfig(source=source, limit=limit), label, None
    s.feature_info, s.run_id, s.compare, s.selected_ids = None, None, (None, None), []
    s.route = None
    s.gallery = Gallery()
    s.filter = Filter()   # its true class and corrected set were the old data's
    s.notice = s.error = None


def data_failed(message: str) -> None:
    s = get_state()
    s.data_error = message


def _open_and_choose(source: str, label: str, limit: int | None = None) -> None:
    """Open first (errors land on the Data page), then make it the current dataset."""
    try:
        ds = engine.open_data(DataConfig(source=source, limit=limit), settings().workspace)
    except ClusterLensError as e:
        data_failed(str(e))
        return
    choose_data(source, label, limit, n=len(ds))


def use_demo(name: str, limit: int | None) -> None:
    _open_and_choose(name, f"demo: {name}", limit)


def use_folder(text: str) -> None:
    try:
        path = allowed_folder(text, settings())
    except ClusterLensError as e:
        data_failed(str(e))
        return
    _open_and_choose(str(path), f"folder: {path}")


def use_uploads(files: list[Upload]) -> None:
    cfg = settings()
    try:
        target = save_uploads(files, cfg.workspace, cfg.max_upload_mb)
    except ClusterLensError as e:
        data_failed(str(e))
        return
    what = files[0].name if target.suffix == ".zip" else f"{len(files)} file(s)"
    _open_and_choose(str(target), f"upload: {what}")


# -- jobs ------------------------------------------------------------------------------------

def start_job(job_kind: str, title: str, work: Work, *, settle_s: float = 0.0, **params: Any) -> Job:
    """Start a job in place of the current one, which is stopped: the new one waits for it to end
    (and ``settle_s`` first, so a control moved again meanwhile replaces it before any work)."""
    s = get_state()
    old = s.job
    stop_job()
    s.notice = s.error = None
    s.job = Job.start(job_kind, title, work, settle_s=settle_s, after=old, **params)
    s.job.params.setdefault("page", current_page())   # its outcome shows on the page that started it
    return s.job


def current_page() -> str | None:
    """The page this script run draws (its script hash), None outside a script run."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    return ctx.pages_manager.current_page_script_hash if ctx is not None else None


def stop_job() -> None:
    s = get_state()
    if s.job is not None and s.job.running:
        s.job.stop()


def adopt_finished_job() -> None:
    """Take a finished job's result into the state, once. Called at the top of every run."""
    s = get_state()
    job = s.job
    if job is None or job.running or job.adopted:
        return
    job.adopted = True
    try:
        _adopt(s, job)
    finally:   # the outcome belongs to the page that started the job
        s.outcome_page, s.outcome_msg = job.params.get("page"), (s.error, s.notice)


def _adopt(s: AppState, job: Job) -> None:
    if job.kind == "train":   # why first: a stopped training keeps a checkpoint, so it is an outcome too
        # lazy: ui.training imports this module
        from ui.training import adopt_training

        adopt_training(s, job)
        return
    if job.status == "cancelled":
        s.notice = f"{job.title} stopped; nothing from it is shown as finished."
        if job.kind == "features" and job.error:   # extraction keeps its finished shards and resumes
            s.notice = f"{job.title} stopped: {job.error}."
        return
    if job.status == "failed":
        s.error = f"{job.title} failed: {job.error}"
        return
    if job.kind == "features":
        info: FeatureInfo = job.result
        if s.data == info.data:   # still the dataset the person is looking at
            s.feature_info = info
            if info.route is not None:   # the chosen route's reduction goes to the Cluster page
                s.route = info.route
                s.cluster = replace(s.cluster, reduce=info.route["chosen"]["reduce"])
            if job.params.get("then_cluster"):
                start_cluster()
                return
            s.notice = (f"Features reused from the cache at once ({info.n:,} × {info.dim})." if info.from_cache
                        else f"Features extracted: {info.n:,} × {info.dim} in {info.seconds:.1f} s.")
    elif job.kind in ("cluster", "retrain"):
        if s.data == job.params.get("data"):
            s.run_id = int(job.result)
            s.gallery = replace(s.gallery, page=1)
            s.selected_ids = []
            if job.kind == "retrain":
                s.notice = f"{job.title} finished: this is now run #{s.run_id} (its parent keeps its edits)."
    elif job.kind == "map":
        s.notice = None


# -- features / cluster / map ----------------------------------------------------------------

def start_features() -> None:
    s, cfg = get_state(), settings()
    if s.data is None:
        return
    ds = engine.open_data(s.data, cfg.workspace)
    title = "Features (choosing the route from the data)" if s.features.backbone == "auto" else \
        f"Features ({s.features.backbone})"
    start_job("features", title, engine.features_work(ds, s.data, s.features, cfg.workspace, cluster=s.cluster),
              data=s.data)


def use_route(backbone: str, image_size: int | None, reduce: str, join: tuple[str, ...] = ()) -> None:
    """One click on a route of the Cluster page's list: its features (cached when the route search
    made them), the spaces joined to them and its reduction, then the clustering runs again."""
    s = get_state()
    s.features = replace(s.features, backbone=backbone, image_size=image_size, join=tuple(join))
    s.cluster = replace(s.cluster, reduce=reduce)
    st.session_state.pop("w_backbone", None)   # the Features page shows the new choice
    st.session_state.pop("w_size", None)
    st.session_state.pop("w_reduce", None)      # the Cluster page's select shows the route's reduction
    start_features()
    if s.job is not None:
        s.job.params["then_cluster"] = True


def set_features(**changes: Any) -> None:
    s = get_state()
    s.features = replace(s.features, **changes)


SIZE_DEFAULT = "backbone default"   # the image-size slider's first stop


def set_backbone(name: str, default_size: int | None) -> None:
    """A backbone without a size of its own (pixels) uses the images' native size."""
    s = get_state()
    s.features = replace(s.features, backbone=name, image_size=s.features.image_size if default_size else None,
                         join=())   # a backbone picked by hand is one space
    # set the slider itself: with key-based widget identity the browser would send its old value back
    st.session_state["w_size"] = s.features.image_size or SIZE_DEFAULT


def start_cluster(settle_s: float = 0.0) -> None:
    """Cluster with the page's settings (Run: at once; a moved control: after ``settle_s``)."""
    from ui.cluster_jobs import cluster_work

    s, cfg = get_state(), settings()
    if s.data is None or s.feature_info is None:
        return
    c = replace(s.cluster, params=dict(s.algo_params.get(s.cluster.algo, {})))
    info = s.feature_info
    start_job("cluster", f"Clustering ({c.algo}, k={c.k})",
              cluster_work(s.data, info.features, c, cfg.workspace, ds=engine.open_data(s.data, cfg.workspace),
                           feature_key=info.key, feature_dim=info.dim), settle_s=settle_s, data=s.data, cluster=c)


def set_cluster(rerun: bool = True, **changes: Any) -> None:
    """Change a clustering setting; with features at hand, re-cluster once the control has settled
    (ui.jobs.SETTLE_S): a newer change replaces a job that has not started or is still running."""
    from ui import jobs

    s = get_state()
    s.cluster = replace(s.cluster, **changes)
    if rerun and s.feature_info is not None:
        start_cluster(settle_s=jobs.SETTLE_S)


MAP_METHODS = ("pca", "tsne", "umap")   # the Explore page's choices


def adopt_run_settings(config: dict[str, Any] | None) -> None:
    """Put a finished run's settings on the pages: its clustering (algorithm, k, metric, reduction,
    seed and the algorithm's own parameters) on the Cluster page, so its controls show that run and
    Run starts from it, and its 2-D map on the Explore page. A setting this install does not offer
    (an algorithm, a map method) leaves that page as it was."""
    s, config = get_state(), dict(config or {})
    cluster, drawn = dict(config.get("cluster") or {}), dict(config.get("map") or {})
    if cluster.get("algo") in engine.algorithms():
        fields = set(ClusterConfig.__dataclass_fields__) - {"params"}
        s.cluster = replace(s.cluster, **{k: v for k, v in cluster.items() if k in fields})
        s.algo_params[s.cluster.algo] = dict(cluster.get("params") or {})
    if drawn.get("method") in MAP_METHODS:
        s.map = MapConfig(method=drawn["method"], seed=int(drawn.get("seed", 0)))


def set_algo_param(algo: str, name: str, value: Any) -> None:
    s = get_state()
    s.algo_params.setdefault(algo, {})[name] = value


def start_map() -> None:
    s, cfg = get_state(), settings()
    if s.data is None or s.feature_info is None:
        return
    ds = engine.open_data(s.data, cfg.workspace)
    info = s.feature_info
    start_job("map", f"2-D map ({s.map.method.upper()})",
              engine.map_work(ds, info.features, info.key, s.map, cfg.workspace), data=s.data, map=s.map)


def set_map(**changes: Any) -> None:
    """Another map: a map job still drawing the previous choice is stale, so the new map replaces it
    (it starts once the stale one has stopped; ui.jobs)."""
    s = get_state()
    s.map = replace(s.map, **changes)
    s.selected_ids = []
    if s.job is not None and s.job.running and s.job.kind == "map" and s.job.params.get("map") != s.map:
        start_map()


def set_compare(side: int, run_id: int) -> None:
    s = get_state()
    s.compare = (run_id, s.compare[1]) if side == 0 else (s.compare[0], run_id)


def set_gallery(**changes: Any) -> None:
    s = get_state()
    s.gallery = replace(s.gallery, **changes)


def set_selection(ids: list[str]) -> None:
    s = get_state()
    s.selected_ids = ids
    s.gallery = replace(s.gallery, sel_page=1)
    st.session_state.pop("w_sel_page", None)
