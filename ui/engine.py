"""Cached wrappers around engine calls, and the work functions that background jobs run.

Streamlit caching sits *on top of* the engine's own disk cache (features, manifests), never in
its place: a cold process still finds yesterday's features on disk. ``st.cache_resource`` holds
objects shared read-only by every session (datasets, id indexes); ``st.cache_data`` holds small
arrays and records (assignments of a finished run, 2-D maps, thumbnails).
"""
from __future__ import annotations

import base64
import io
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st
from PIL import Image

from core.config import ClusterConfig, DataConfig, FeatureConfig, MapConfig, RunConfig
from core.data.base import ImageDataset
from core.run_data import RunData, run_dataset
from core.store import Store

Report = Callable[[float | None, str], None]
ShouldStop = Callable[[], bool]


@dataclass(frozen=True)
class FeatureInfo:
    """What the Features step produced (the array itself stays in the engine's disk cache)."""

    data: DataConfig
    features: FeatureConfig
    key: str
    n: int
    dim: int
    from_cache: bool
    seconds: float
    images_per_s: float | None
    route: dict[str, Any] | None = None   # backbone "auto": the route chosen from the data (core.route)


@dataclass(frozen=True)
class TrainInfo:
    """What a training job produced: a backbone registered in the workspace under ``name``."""

    data: DataConfig                      # the images it was trained on
    name: str                             # usable as FeatureConfig.backbone
    path: str                             # its checkpoint file
    method: str
    epochs: int                           # asked for
    history: tuple[dict[str, Any], ...]   # one engine record per finished epoch
    stopped: bool                         # stopped early: the last finished epoch's checkpoint is kept

    @property
    def final_loss(self) -> float:
        return float(self.history[-1]["loss"])


# -- registries (cheap, but they import torch: once per process) -----------------------------

@st.cache_resource(show_spinner=False)
def demos() -> list[dict[str, Any]]:
    from core.data import list_datasets

    return [d for d in list_datasets() if not d["name"].startswith("torchvision:")]


def backbones(workspace: Path | str | None = None) -> list[dict[str, Any]]:
    """Built-in backbones, then those trained in ``workspace`` (default: the app's), re-listed as
    soon as training records a new epoch. A trained backbone's ``default_size`` is None: extraction
    then uses the size it was trained at (kept in its checkpoint)."""
    from core.ssl.registry import INDEX, backbones_dir
    from ui.settings import Settings

    ws = Path(workspace) if workspace is not None else Settings.from_env().workspace
    index = backbones_dir(ws) / INDEX
    return _backbones(str(ws), index.stat().st_mtime_ns if index.is_file() else 0)


@st.cache_resource(show_spinner=False, ttl=60, max_entries=8)
def _backbones(workspace: str, index_stamp: int) -> list[dict[str, Any]]:   # stamp: a new index is re-read
    from core.features import list_backbones

    rows = list_backbones(workspace=workspace)
    return [{**r, "default_size": None} if r.get("kind") == "trained" else r for r in rows]


AUTO_BACKBONE = {"name": "auto", "available": True, "default_size": None, "why": "",
                 "description": "Chosen from the data (recommended): pixels and EfficientNet-Lite0, each as they "
                                "are and through UMAP-10, each clustered with k-means; the route whose clusters "
                                "the others agree with most is used (the Cluster page shows why)."}


def backbone_choices(workspace: Path | str | None = None) -> list[dict[str, Any]]:
    """The Features page's list: "auto" (core.route) first, then every backbone."""
    return [AUTO_BACKBONE, *backbones(workspace)]


def backbone_label(row: dict[str, Any]) -> str:
    """How the Features page names a backbone: a foundation one with its state (ready / downloads
    N MB on first use / no internet: use efficientnet_lite0), others "(unavailable)" when so."""
    if row.get("state"):
        return f"{row['name']} ({row['state']})"
    return row["name"] if row["available"] else f"{row['name']} (unavailable)"


@st.cache_resource(show_spinner=False, ttl=60)
def algorithms() -> dict[str, dict[str, Any]]:
    """name -> the estimator's default parameters (controls are generated from these)."""
    from core.cluster.registry import available, clusterer_class

    return {name: clusterer_class(name)().get_params() for name in available()}


def param_choices(algo: str) -> dict[str, tuple[str, ...]]:
    """name -> the values a text parameter may take (offered as a pick list, not a text box)."""
    from core.cluster.registry import clusterer_class

    return dict(clusterer_class(algo).param_choices)


def param_docs(algo: str) -> dict[str, str]:
    """name -> what the estimator's docstring says about it (the controls' tooltips)."""
    from core.cluster.registry import clusterer_class

    return clusterer_class(algo).parameter_docs()


# -- datasets --------------------------------------------------------------------------------

@st.cache_resource(show_spinner=False, max_entries=8)
def dataset(source: str, workspace: str, limit: int | None = None) -> ImageDataset:
    """The opened dataset; shared read-only by every session (opening a folder is slow)."""
    from core.pipeline import load_dataset

    return load_dataset(DataConfig(source=source, limit=limit), workspace)


def open_data(data: DataConfig, workspace: Path) -> ImageDataset:
    """The dataset, after the allowed-root check that every way of opening data in the app shares."""
    from ui.settings import Settings, check_source

    check_source(data.source, Settings.from_env())
    return dataset(data.source, str(workspace), data.limit)


def run_data(workspace: Path, run_id: int, ds: ImageDataset) -> RunData:
    """``ds`` row-aligned with run ``run_id`` (the folder may have changed since the run)."""
    return _run_data(str(workspace), int(run_id), ds.fingerprint, ds)


@st.cache_resource(show_spinner=False, max_entries=8)
def _run_data(workspace: str, run_id: int, fingerprint: str, _ds: ImageDataset) -> RunData:
    with Store(workspace) as store:
        return run_dataset(store, run_id, _ds)


@st.cache_resource(show_spinner=False, max_entries=8)
def id_index(fingerprint: str, _ds: ImageDataset) -> dict[str, int]:
    """sample id -> row, for reading a scatter selection (ids in customdata)."""
    return {sid: i for i, sid in enumerate(_ds.ids)}


def dataset_id(workspace: Path, ds: ImageDataset, source: str) -> int:
    with Store(workspace) as store:
        return store.upsert_dataset(ds, source)


# -- runs ------------------------------------------------------------------------------------

def runs(workspace: Path, ds_id: int) -> list[dict[str, Any]]:
    """Every run of this dataset, newest first (not cached: a run may finish any moment)."""
    with Store(workspace) as store:
        return list(reversed(store.runs(ds_id)))


@st.cache_data(show_spinner=False, max_entries=64)
def run_record(workspace: str, run_id: int) -> dict[str, Any]:
    """A *finished* run's record (immutable once done; callers only ask for done runs)."""
    with Store(workspace) as store:
        return store.run(run_id)


@st.cache_data(show_spinner=False, max_entries=16)
def unclean(workspace: str, run_id: int) -> np.ndarray | None:
    """RUC's final unclean set of a finished run (True = unclean), None for other runs."""
    from core.review import unclean_mask

    with Store(workspace) as store:
        return unclean_mask(store, run_id)


@st.cache_data(show_spinner=False, max_entries=16)
def assignments(workspace: str, run_id: int) -> tuple[np.ndarray, np.ndarray]:
    with Store(workspace) as store:
        return store.assignments(run_id)


# -- 2-D maps: computed in a job, kept as .npy in the workspace (t-SNE on 10k takes ~25 s) ----

def map_path(workspace: Path, feature_key: str, cfg: MapConfig) -> Path:
    return workspace / "maps" / f"{feature_key or 'nokey'}-{cfg.method}-{cfg.seed}.npy"


@st.cache_data(show_spinner=False, max_entries=16)
def load_map(path: str, mtime: float) -> np.ndarray:   # mtime: a rewritten file is re-read
    return np.load(path)


def _map_file(p: Path) -> np.ndarray | None:
    return load_map(str(p), p.stat().st_mtime) if p.is_file() else None


def saved_map(workspace: Path, feature_key: str, cfg: MapConfig) -> np.ndarray | None:
    return _map_file(map_path(workspace, feature_key, cfg))


def run_map(workspace: Path, run_id: int, cfg: MapConfig) -> np.ndarray | None:
    """The map a finished run drew of its own features (``runs/<id>/map.npy``, e.g. from the CLI),
    when it is the one asked for: same method and seed. None otherwise."""
    rec = run_record(str(workspace), run_id)
    drawn = (rec.get("config") or {}).get("map") or {}
    rel = (rec.get("artifacts") or {}).get("map")
    if not rel or drawn.get("method") != cfg.method or drawn.get("seed", 0) != cfg.seed:
        return None
    return _map_file(Path(workspace) / rel)


# -- thumbnails ------------------------------------------------------------------------------

# Shown where an image cannot be read at display time (removed, replaced by a non-image or by a
# link out of its folder since the scan): a grey tile with a cross, never a crash.
PLACEHOLDER_URI = "data:image/svg+xml;base64," + base64.b64encode(
    b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><rect width="10" height="10" fill="#ddd"/>'
    b'<path d="M3 3l4 4M7 3l-4 4" stroke="#888" stroke-width="0.8"/></svg>').decode("ascii")


def thumb_uri(fingerprint: str, i: int, size: int, _ds: ImageDataset) -> str:
    """Image ``i`` as a small PNG data URI, or :data:`PLACEHOLDER_URI` when it cannot be read now
    (not cached: the file may be back on the next look)."""
    from core.errors import ClusterLensError

    try:
        return _thumb_uri(fingerprint, i, size, _ds)
    except (ClusterLensError, OSError, ValueError):
        return PLACEHOLDER_URI


@st.cache_data(show_spinner=False, max_entries=50_000)
def _thumb_uri(fingerprint: str, i: int, size: int, _ds: ImageDataset) -> str:
    """Tiny images are scaled up with nearest pixels."""
    img = _ds.load(i)
    img.thumbnail((size, size), Image.Resampling.LANCZOS)
    if max(img.size) < size // 2:   # 8×8 digits: blocky beats blurry
        scale = max(1, size // max(img.size))
        img = img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


# -- job work (runs in a thread: no Streamlit calls in here) ---------------------------------

def features_work(ds: ImageDataset, data: DataConfig, cfg: FeatureConfig, workspace: Path,
                  cluster: ClusterConfig | None = None) -> Callable[[Report, ShouldStop], FeatureInfo]:
    """Extract (or reuse) features; backbone "auto" first chooses the route from the data with
    ``cluster``'s k and seed (core.route), then gives the chosen route's features."""
    def work(report: Report, should_stop: ShouldStop) -> FeatureInfo:
        from dataclasses import replace

        from core.pipeline import compute_features
        from core.route import AUTO, choose_route

        t0 = time.perf_counter()
        report(0.0, f"preparing {cfg.backbone}")

        def progress(stage: str, frac: float, msg: str) -> None:
            report(frac, msg)

        used, route = cfg, None
        if cfg.backbone == AUTO:
            c = cluster or ClusterConfig()
            choice = choose_route(ds, c.k, workspace, seed=c.seed, image_size=cfg.image_size, device=cfg.device,
                                  metric=c.metric, progress=lambda st_, f, m: report(f, f"choosing the route: {m}"),
                                  should_stop=should_stop)
            used = replace(cfg, backbone=choice.chosen.backbone, image_size=choice.chosen.image_size,
                           join=choice.chosen.join)
            route = choice.as_dict()
        feats, from_cache, key, path = compute_features(ds, used, workspace, progress=progress,
                                                         should_stop=should_stop)
        with Store(workspace) as store:   # the workspace lists what was extracted (as the CLI does)
            ds_id = store.upsert_dataset(ds, data.source)
            if key:
                store.record_features(ds_id, key, used.backbone, used.image_size,
                                      int(feats.shape[1]), path)
        secs = time.perf_counter() - t0
        return FeatureInfo(data=data, features=used, key=key, n=len(feats), dim=int(feats.shape[1]),
                           from_cache=from_cache, seconds=secs,
                           images_per_s=None if from_cache else len(feats) / max(secs, 1e-9), route=route)
    return work


def cluster_work(data: DataConfig, feats: FeatureConfig, cluster: ClusterConfig, workspace: Path,
                 ds: ImageDataset | None = None) -> Callable[[Report, ShouldStop], int]:
    """One recorded run (run_pipeline, without its map: the Explore page draws maps itself)."""
    cfg = RunConfig(data=data, features=feats, cluster=cluster, map=MapConfig(method="none"),
                    workspace=str(workspace))

    def work(report: Report, should_stop: ShouldStop) -> int:
        from core.pipeline import run_pipeline

        def progress(stage: str, frac: float, msg: str) -> None:
            if stage == "cluster" and msg.startswith("{"):
                msg = _epoch_message(msg)
            report(frac if stage in ("features", "cluster") else None, f"{stage}: {msg}")

        return run_pipeline(cfg, progress=progress, should_stop=should_stop, dataset=ds).run_id
    return work


def _epoch_message(record_json: str) -> str:
    import json

    rec = json.loads(record_json)
    shown = {k: v for k, v in rec.items() if isinstance(v, int | float) and k != "progress"}
    return ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in list(shown.items())[:5])


def map_work(ds: ImageDataset, feats: FeatureConfig, key: str, cfg: MapConfig, workspace: Path
             ) -> Callable[[Report, ShouldStop], str]:
    def work(report: Report, should_stop: ShouldStop) -> str:
        from core.pipeline import compute_features
        from core.projection import project

        report(None, "loading features")
        X, _, _, _ = compute_features(ds, feats, workspace, should_stop=should_stop)
        report(None, f"{cfg.method.upper()} of {len(X):,} points (UMAP compiles for ~30 s the first time)")

        def rows_placed(done: int, total: int, what: str) -> bool:   # core.projection's progress; False stops
            report(done / total if total and done else None, what)
            return not should_stop()

        xy = project(X, cfg.method, n_components=2, seed=cfg.seed, progress=rows_placed)   # = make_map, with progress
        path = map_path(workspace, key, cfg)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npy")
        np.save(tmp, np.asarray(xy, dtype=np.float32))
        tmp.replace(path)   # why: a half-written map must never be read as finished
        return str(path)
    return work
