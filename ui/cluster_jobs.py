"""The Cluster page's job: the engine's clustering work (ui.engine.cluster_work) with the steps it
runs silently said out loud, each with an estimate from the data's size (ui.jobs.estimate_seconds).

Why a wrapper: run_pipeline reports "cluster: kmeans, k=10" and then reduces the features (UMAP-10
of 60,000 points: two minutes) before k-means' first iteration says anything; k-means' iterations
carry no fraction. This names the reduction as its own step and gives both steps an estimate, so
the panel shows "reducing: UMAP-10 of 60,000 points · 40 s of about 2 min 25 s", never a frozen
line over an empty bar.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.config import ClusterConfig, DataConfig, FeatureConfig
from core.data.base import ImageDataset
from ui import engine
from ui.jobs import estimate_seconds, umap_finished


def space_dims(reduce: str, feature_dim: int) -> int:
    """Width of the space the clusterer sees: "pca:50" → 50 (at most the features'), "none" → theirs."""
    if reduce in ("", "none") or ":" not in reduce:
        return int(feature_dim)
    try:
        return min(int(reduce.split(":", 1)[1]), int(feature_dim))
    except ValueError:
        return int(feature_dim)


def reduction_cached(workspace: Path, feature_key: str | None, cluster: ClusterConfig) -> bool:
    from core.pipeline import reduced_path

    if cluster.reduce in ("", "none") or not feature_key:
        return True
    return reduced_path(Path(workspace) / "reduced", feature_key, cluster).is_file()


def cluster_work(data: DataConfig, feats: FeatureConfig, cluster: ClusterConfig, workspace: Path, *,
                 ds: ImageDataset, feature_key: str | None, feature_dim: int) -> Callable[..., int]:
    inner = engine.cluster_work(data, feats, cluster, workspace, ds=ds)
    n = len(ds)
    method = cluster.reduce.split(":", 1)[0] if cluster.reduce not in ("", "none") else ""
    dims = space_dims(cluster.reduce, feature_dim)
    reduce_first = bool(method) and not reduction_cached(workspace, feature_key, cluster)
    restarts = int((cluster.params or {}).get("n_init") or 10)
    kmeans_s = estimate_seconds("kmeans", n, features=dims, k=cluster.k, restarts=restarts)

    def work(report: Callable[..., None], should_stop: Callable[[], bool]) -> int:
        reducing = {"on": False}

        def said(fraction: float | None, message: str, *_: Any) -> None:
            if message.startswith("cluster: ") and not reducing["on"] and reduce_first and fraction in (None, 0.0) \
                    and "iteration" not in message and "epoch" not in message:
                reducing["on"] = True   # the start message: the reduction runs now, silently
                est = estimate_seconds(method, n, dims=dims, features=min(int(feature_dim), 50))
                report(None, f"reducing: {method.upper()}-{dims} of {n:,} points before clustering", est)
                return
            if reducing["on"] and message.startswith("cluster: "):
                reducing["on"] = False
                if method == "umap":
                    umap_finished()
            if message.startswith("cluster: ") and cluster.algo == "kmeans":
                report(None if not fraction else fraction, message, kmeans_s)
                return
            report(fraction, message)

        return inner(said, should_stop)
    return work
