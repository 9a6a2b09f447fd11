"""2-D maps (pca / tsne / umap) and feature reduction before clustering.

Seeded everywhere: the same seed and data give the same map. UMAP is run single-threaded when
seeded (umap-learn's rule), which is what makes it reproducible.

Large N (UMAP above :data:`UMAP_SAMPLE_ABOVE` rows): UMAP is fitted on a seeded sample of
:data:`UMAP_SAMPLE` rows (PCA-50 fitted on the same sample), and every other row is placed at
the distance-weighted mean of its 15 nearest sample rows' positions, found in the fitted
model's own nearest-neighbour index (umap-learn's ``transform`` starts from this placement; its
extra optimisation epochs placed 3,600 points/s against 67,000 here, and are skipped). Measured in bench/bench_scale.py.
At and below the threshold nothing changed.

Progress: ``project``/``reduce`` take ``progress(done, total, what)`` (``what`` says the step
and its rate); returning False raises :class:`Cancelled` at the next step. UMAP's own fit
reports only when it starts and ends (umap-learn has no hook inside it).
"""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from core.config import parse_reduce
from core.errors import Cancelled, ParameterError
from core.registry import Registry

MapFn = Callable[[np.ndarray, int, int], np.ndarray]
METHODS: Registry[MapFn] = Registry("map method")
Progress = Callable[[int, int, str], "bool | None"]   # (done, total, what) -> False stops

UMAP_SAMPLE_ABOVE = 100_000   # more rows: UMAP on a sample, the rest placed by nearest sample rows
UMAP_SAMPLE = 50_000
PLACE_CHUNK = 50_000

# UMAP settings for reducing features before clustering: min_dist=0 packs clusters tightly,
# 30 neighbours favour global structure (chosen from bench/bench_quality_explore.py).
CLUSTER_UMAP_NEIGHBORS = 30


def _check(X: Any) -> np.ndarray:
    arr = np.asarray(X, dtype=np.float32)   # a float32 memory map stays one (no copy)
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


class _Steps:
    """A caller's progress callback (or none); False from it raises Cancelled."""

    def __init__(self, progress: Progress | None, total: int) -> None:
        self.progress, self.total, self.t0 = progress, total, time.perf_counter()

    def __call__(self, done: int, what: str) -> None:
        if self.progress is not None and self.progress(done, self.total, what) is False:
            raise Cancelled("the map was stopped; nothing from it is shown")


def _umap_sampled(X: np.ndarray, n_components: int, seed: int, pca_first: int | None, steps: _Steps, *,
                  n_neighbors: int = 15, min_dist: float = 0.1) -> np.ndarray:
    """UMAP fitted on a seeded sample; the other rows placed from their nearest sample rows.
    ``steps.total`` is N: done counts rows that have a position."""
    import umap

    n = X.shape[0]
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(n, size=min(UMAP_SAMPLE, n), replace=False))
    sample = np.ascontiguousarray(X[idx], dtype=np.float32)
    pca = None
    if pca_first and X.shape[1] > pca_first:
        from sklearn.decomposition import PCA
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1):   # why: same bits on any core count (see _pca)
            pca = PCA(n_components=pca_first, random_state=seed).fit(sample)
            sample = pca.transform(sample).astype(np.float32)
    steps(0, f"UMAP on a sample of {len(idx):,} of {n:,} points (UMAP compiles for ~30 s the first time)")
    t = time.perf_counter()
    model = umap.UMAP(n_components=n_components, n_neighbors=min(n_neighbors, len(idx) - 1), min_dist=min_dist,
                      random_state=seed, n_jobs=1).fit(sample)
    out = np.empty((n, n_components), np.float32)
    out[idx] = model.embedding_
    steps(len(idx), f"UMAP of the sample took {time.perf_counter() - t:.0f} s; placing the other points")
    index = getattr(model, "_knn_search_index", None)   # umap-learn builds it above 4,096 rows
    if index is not None:
        def query(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            return index.query(q, k=n_neighbors)
    else:   # a small sample: umap-learn's exact neighbours kept no index
        from sklearn.neighbors import NearestNeighbors

        nn = NearestNeighbors(n_neighbors=min(n_neighbors, len(idx))).fit(sample)

        def query(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            dist, ind = nn.kneighbors(q)
            return ind, dist
    rest = np.ones(n, bool)
    rest[idx] = False
    rest_idx = np.flatnonzero(rest)
    done, t = len(idx), time.perf_counter()
    for s in range(0, len(rest_idx), PLACE_CHUNK):
        rows = rest_idx[s: s + PLACE_CHUNK]
        q = np.ascontiguousarray(X[rows], dtype=np.float32)
        if pca is not None:
            q = pca.transform(q).astype(np.float32)
        ind, dist = query(q)
        w = 1.0 / (dist.astype(np.float64) + 1e-6)
        w /= w.sum(1, keepdims=True)
        out[rows] = np.einsum("qk,qkc->qc", w, model.embedding_[ind].astype(np.float64))
        done += len(rows)
        rate = (done - len(idx)) / max(time.perf_counter() - t, 1e-9)
        steps(done, f"placed {done:,} of {n:,} points, {rate:,.0f} points/s")
    return out


METHODS.add("pca", _pca)
METHODS.add("tsne", _tsne)
METHODS.add("umap", _umap)


def project(X: Any, method: str = "umap", *, n_components: int = 2, seed: int = 0,
            pca_first: int | None = 50, progress: Progress | None = None) -> np.ndarray:
    """A float32 (N, n_components) map of X. Unknown methods list the valid ones.

    For tsne/umap, X is first PCA-reduced to ``pca_first`` dimensions when it has more (fast,
    and denoises); None or 0 turns that off. UMAP above 100,000 rows: fitted on a sample, the
    rest placed (see the module docstring). ``progress(done, total, what)``: done of N rows.
    """
    fn = METHODS.get(method)
    if n_components < 1:
        raise ParameterError(f"n_components must be at least 1, got {n_components}")
    arr = _check(X)
    n = arr.shape[0]
    steps = _Steps(progress, n)
    if method == "umap" and n > UMAP_SAMPLE_ABOVE:
        return _umap_sampled(arr, n_components, seed, pca_first, steps)
    steps(0, f"{method.upper()} of {n:,} points")
    if method != "pca" and pca_first and arr.shape[1] > pca_first:
        arr = _pca(arr, pca_first, seed)
    out = np.ascontiguousarray(fn(arr, n_components, seed), dtype=np.float32)
    steps(n, f"{method.upper()} of {n:,} points took {time.perf_counter() - steps.t0:.0f} s")
    return out


def reduce(X: Any, spec: str, *, seed: int = 0, pca_first: int | None = 50,
           progress: Progress | None = None) -> np.ndarray:
    """Reduce features before clustering: spec "none" | "pca:N" | "umap:N" (ClusterConfig.reduce).

    "umap:N" uses clustering-friendly settings (min_dist=0, 30 neighbours) after PCA-50; above
    100,000 rows fitted on a sample, the rest placed. ``progress`` as in :func:`project`.
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
    steps = _Steps(progress, arr.shape[0])
    if method == "umap" and arr.shape[0] > UMAP_SAMPLE_ABOVE:
        return _umap_sampled(arr, n, seed, pca_first, steps, n_neighbors=CLUSTER_UMAP_NEIGHBORS, min_dist=0.0)
    steps(0, f"{spec} of {arr.shape[0]:,} points")
    if method == "pca":
        out = _pca(arr, n, seed)
    else:
        if pca_first and arr.shape[1] > pca_first:
            arr = _pca(arr, pca_first, seed)
        out = _umap(arr, n, seed, n_neighbors=CLUSTER_UMAP_NEIGHBORS, min_dist=0.0)
    steps(arr.shape[0], f"{spec} of {arr.shape[0]:,} points took {time.perf_counter() - steps.t0:.0f} s")
    return out


def warm_up_umap(n_samples: int = 5000, seed: int = 0) -> float:
    """Fit a tiny seeded UMAP so numba compiles now, not inside the first real fit.

    Needs more than 4,096 points, or NN-descent still compiles later (shared/MEASURED.md).
    Returns the seconds it took.
    """
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
