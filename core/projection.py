"""2-D maps (pca / tsne / umap) and feature reduction before clustering.

Seeded everywhere: the same seed and data give the same map. UMAP is run single-threaded when
seeded (umap-learn's rule), which is what makes it reproducible.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from core.config import parse_reduce
from core.errors import ParameterError
from core.registry import Registry

MapFn = Callable[[np.ndarray, int, int], np.ndarray]
METHODS: Registry[MapFn] = Registry("map method")

# UMAP settings for reducing features before clustering: min_dist=0 packs clusters tightly,
# 30 neighbours favour global structure (chosen from bench/bench_quality_explore.py).
CLUSTER_UMAP_NEIGHBORS = 30


def _check(X: Any) -> np.ndarray:
    arr = np.asarray(X, dtype=np.float32)
    if arr.ndim != 2:
        raise ParameterError(f"X must be a 2-D array (n_samples, n_features); got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ParameterError(f"X is empty (shape {arr.shape}): nothing to project")
    bad = np.flatnonzero(~np.isfinite(arr).all(1))
    if len(bad):
        raise ParameterError(
            f"X has {len(bad)} rows with NaN or infinite values (first rows: {bad[:5].tolist()}); drop or impute them"
        )
    return arr


def _pca(X: np.ndarray, n_components: int, seed: int) -> np.ndarray:
    """PCA to n_components; pads with zeros when the data has fewer dimensions or samples.

    BLAS runs on one thread here: with more, the sums are ordered differently, the last bits of
    the result change with the machine's core count, and UMAP after PCA turns those bits into a
    different map (digits: seed 0's UMAP-10 differed between 1 and 2 threads). One thread is not
    slower for PCA-50 of 70,000 x 784 on this 2-core machine (2.5 s vs 5.5 s, busy machine).
    """
    from sklearn.decomposition import PCA
    from threadpoolctl import threadpool_limits

    m = min(n_components, X.shape[1], X.shape[0])
    out = np.zeros((X.shape[0], n_components), dtype=np.float32)
    if m >= 1 and X.shape[0] > 1:
        with threadpool_limits(limits=1):
            out[:, :m] = PCA(n_components=m, random_state=seed).fit_transform(X)
    return out


def _umap(X: np.ndarray, n_components: int, seed: int, *, n_neighbors: int = 15,
          min_dist: float = 0.1) -> np.ndarray:
    import umap

    if X.shape[0] < 4:
        raise ParameterError(f"UMAP needs at least 4 samples; got {X.shape[0]} (use method='pca')")
    model = umap.UMAP(n_components=n_components, n_neighbors=min(n_neighbors, X.shape[0] - 1),
                      min_dist=min_dist, random_state=seed, n_jobs=1)
    return model.fit_transform(X).astype(np.float32)


def _tsne(X: np.ndarray, n_components: int, seed: int) -> np.ndarray:
    """openTSNE when installed (4x faster than scikit-learn's, see shared/MEASURED.md), else sklearn."""
    if X.shape[0] < 4:
        raise ParameterError(f"t-SNE needs at least 4 samples; got {X.shape[0]} (use method='pca')")
    perplexity = float(min(30.0, (X.shape[0] - 1) / 3))
    try:
        import openTSNE
    except ImportError:
        openTSNE = None
    if openTSNE is not None and n_components <= 2:
        emb = openTSNE.TSNE(n_components=n_components, perplexity=perplexity, random_state=seed,
                            n_jobs=1, verbose=False).fit(X)
        return np.asarray(emb, dtype=np.float32)
    from sklearn.manifold import TSNE

    return TSNE(n_components=n_components, perplexity=perplexity, init="pca", learning_rate="auto",
                random_state=seed).fit_transform(X).astype(np.float32)


METHODS.add("pca", _pca)
METHODS.add("tsne", _tsne)
METHODS.add("umap", _umap)


def project(X: Any, method: str = "umap", *, n_components: int = 2, seed: int = 0,
            pca_first: int | None = 50) -> np.ndarray:
    """A float32 (N, n_components) map of X. Unknown methods list the valid ones.

    For tsne/umap, X is first PCA-reduced to ``pca_first`` dimensions when it has more (fast,
    and denoises); None or 0 turns that off.
    """
    fn = METHODS.get(method)
    if n_components < 1:
        raise ParameterError(f"n_components must be at least 1, got {n_components}")
    arr = _check(X)
    if method != "pca" and pca_first and arr.shape[1] > pca_first:
        arr = _pca(arr, pca_first, seed)
    return np.ascontiguousarray(fn(arr, n_components, seed), dtype=np.float32)


def reduce(X: Any, spec: str, *, seed: int = 0, pca_first: int | None = 50) -> np.ndarray:
    """Reduce features before clustering: spec "none" | "pca:N" | "umap:N" (ClusterConfig.reduce).

    "umap:N" uses clustering-friendly settings (min_dist=0, 30 neighbours) after PCA-50.
    """
    method, n = parse_reduce(spec)
    arr = _check(X)
    if method == "none":
        return arr
    assert n is not None
    if n > arr.shape[1]:
        raise ParameterError(
            f"reduce={spec!r} asks for {n} dimensions but the features have only {arr.shape[1]}; "
            f"choose N <= {arr.shape[1]}"
        )
    if method == "pca":
        return _pca(arr, n, seed)
    if pca_first and arr.shape[1] > pca_first:
        arr = _pca(arr, pca_first, seed)
    return _umap(arr, n, seed, n_neighbors=CLUSTER_UMAP_NEIGHBORS, min_dist=0.0)


def warm_up_umap(n_samples: int = 5000, seed: int = 0) -> float:
    """Fit a tiny seeded UMAP so numba compiles now, not inside the first real fit.

    Needs more than 4,096 points, or NN-descent still compiles later (shared/MEASURED.md).
    Returns the seconds it took.
    """
    import time

    t = time.perf_counter()
    rng = np.random.default_rng(seed)
    _umap(rng.normal(size=(max(n_samples, 4200), 8)).astype(np.float32), 2, seed)
    return time.perf_counter() - t


def method_names() -> list[str]:
    return METHODS.names()


def describe() -> dict[str, Any]:
    """Names and one-line descriptions, for UI pickers."""
    return {"pca": "fast, linear, keeps global layout", "tsne": "keeps local neighbourhoods",
            "umap": "separates clusters, fast on large data"}
