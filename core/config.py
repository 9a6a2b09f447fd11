"""Frozen configuration for every step, validated in one place (:func:`validate`)."""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from core.errors import ParameterError

DEFAULT_WORKSPACE = "workspace"
MAP_METHODS = ("umap", "tsne", "pca", "none")
METRICS = ("euclidean", "cosine", "mahalanobis")
# what a retrain's RUC refines: the labels the run's RUC started from, or the run's own (core.retrain)
RETRAIN_REFINE = ("start", "current")


def workspace_dir(explicit: str | os.PathLike | None = None) -> Path:
    """--workspace beats $CLUSTERLENS_HOME beats ./workspace."""
    return Path(explicit or os.environ.get("CLUSTERLENS_HOME") or DEFAULT_WORKSPACE)


@dataclass(frozen=True)
class DataConfig:
    source: str                       # folder, .zip, demo name ("digits") or "torchvision:mnist"
    limit: int | None = None          # keep the first N samples (ordered ids); None = all


@dataclass(frozen=True)
class FeatureConfig:
    backbone: str = "efficientnet_lite0"
    image_size: int | None = None     # None = the backbone's default
    batch_size: int = 64
    device: str = "auto"
    pca_dim: int | None = None        # raw pixels only: PCA-reduce to this many dimensions
    checkpoint: str | None = None     # backbone="checkpoint": path to a state dict
    # more spaces clustered beside the backbone's: "name" or "name@size" each; every space is reduced
    # as ClusterConfig.reduce says, scaled to one average spread and joined (core.pipeline.joined_space)
    join: tuple[str, ...] = ()

    def __post_init__(self) -> None:   # a stored run's config comes back from JSON with a list
        object.__setattr__(self, "join", tuple(self.join or ()))


@dataclass(frozen=True)
class ClusterConfig:
    algo: str = "kmeans"
    k: int = 10
    metric: str = "euclidean"
    seed: int = 0
    reduce: str = "none"              # "none" | "pca:N" | "umap:N": reduce features before clustering
    params: dict[str, Any] = field(default_factory=dict)   # algorithm-specific options


@dataclass(frozen=True)
class MapConfig:
    method: str = "umap"
    seed: int = 0


@dataclass(frozen=True)
class RunConfig:
    data: DataConfig
    features: FeatureConfig = FeatureConfig()
    cluster: ClusterConfig = ClusterConfig()
    map: MapConfig = MapConfig()
    workspace: str = DEFAULT_WORKSPACE

    def with_(self, **changes: Any) -> RunConfig:
        return replace(self, **changes)


def parse_reduce(spec: str) -> tuple[str, int | None]:
    """'pca:50' -> ('pca', 50); 'none' -> ('none', None)."""
    if spec in ("", "none", None):
        return "none", None
    method, _, n = spec.partition(":")
    if method not in ("pca", "umap") or not n.isdigit() or int(n) < 1:
        raise ParameterError(
            f"reduce={spec!r} is not understood; use 'none', 'pca:N' or 'umap:N' with N >= 1 (e.g. 'umap:10')"
        )
    return method, int(n)


def parse_space(spec: str) -> tuple[str, int | None]:
    """"name" or "name@size" (a FeatureConfig.join entry) -> (backbone name, image size or None)."""
    name, _, size = str(spec).partition("@")
    if not name or (size and not size.isdigit()):
        raise ParameterError(f"a joined space is a backbone name or name@size (e.g. efficientnet_lite0@64), "
                             f"got {spec!r}")
    if size and not 8 <= int(size) <= 1024:
        raise ParameterError(f"image size must be between 8 and 1024 pixels, got {spec!r}")
    return name, int(size) if size else None


def validate(cfg: RunConfig) -> RunConfig:
    """Check everything that can be checked before any data is read. Returns cfg."""
    d, f, c, m = cfg.data, cfg.features, cfg.cluster, cfg.map
    if not d.source:
        raise ParameterError("no data given: pass a folder, a .zip file or a demo name (see `python -m core datasets`)")
    if d.limit is not None and d.limit < 1:
        raise ParameterError(f"limit must be at least 1, got {d.limit}")
    if f.image_size is not None and not 8 <= f.image_size <= 1024:
        raise ParameterError(f"image size must be between 8 and 1024 pixels, got {f.image_size}")
    if f.batch_size < 1:
        raise ParameterError(f"batch size must be at least 1, got {f.batch_size}")
    if f.pca_dim is not None and f.pca_dim < 1:
        raise ParameterError(f"pca_dim must be at least 1, got {f.pca_dim}")
    for spec in f.join:
        parse_space(spec)
    if f.join and f.backbone == "auto":
        raise ParameterError("joined spaces need a fixed backbone (--backbone NAME --join OTHER): with backbone "
                             "auto the route chooses its spaces, joined ones included")
    if c.k < 2:
        raise ParameterError(f"k must be at least 2 (got {c.k}): one cluster holds everything and says nothing")
    if c.metric not in METRICS:
        raise ParameterError(f"unknown metric {c.metric!r}; choose one of: {', '.join(METRICS)}")
    if c.reduce != "auto":   # "auto": chosen from the data (core.route)
        parse_reduce(c.reduce)
    if m.method not in MAP_METHODS:
        raise ParameterError(f"unknown map method {m.method!r}; choose one of: {', '.join(MAP_METHODS)}")
    return cfg
