"""A label-free suggestion of k: k-means for every k in a range, one criterion per k, the best k.

The default criterion is the silhouette (mean over points of (b - a) / max(a, b), a = mean distance
to the own cluster, b = to the nearest other one). It was chosen by measurement among five
label-free criteria (bench/bench_suggest_k.py, seeds 0-2 on digits pixels and UMAP-10, Fashion-MNIST
EfficientNet-Lite0 features and their UMAP-10, Fashion-MNIST pixels UMAP-10, lfw pixels and UMAP-10):
it was right or close to the true k on 11 of 21 (space, seed) pairs, the others on 8 at most. It
finds the digits' 10 (9, sometimes 14) and lfw's 2; on Fashion-MNIST it says 2 (footwear vs the
rest, the strongest split there), as most criteria do. A starting point for the k slider, not the
answer.

It runs in seconds on any data set: the points are a seeded subsample (``max_samples``), features
wider than ``PCA_DIM`` are PCA-reduced first (on Fashion-MNIST's 1,280-d features the same k, 3.6 s
instead of 18 s), and every fit is this project's k-means on the CPU.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from core.errors import ParameterError
from core.registry import Registry

if TYPE_CHECKING:
    from core.config import FeatureConfig
    from core.data.base import ImageDataset
    from core.pipeline import Progress

MAX_SAMPLES = 2000   # silhouette is O(n²): 2,000 points keep a 19-k sweep at a few seconds
PCA_DIM = 50         # wider features are PCA-reduced to this many dimensions first
N_INIT = 3           # k-means restarts per k: the sweep's cost, not its answer, grows with more


# (X, ks, seed) -> one score per k
Scorer = Callable[[np.ndarray, list[int], int], list[float]]


@dataclass(frozen=True)
class Criterion:
    """A label-free score of a k-means partition (or of the data, for ``eigengap``)."""

    name: str
    meaning: str                 # one line, shown next to the chart
    higher_is_better: bool


@dataclass(frozen=True)
class KSuggestion:
    k: int
    ks: tuple[int, ...]
    scores: tuple[float, ...]    # one per k in ``ks``; NaN where undefined
    criterion: Criterion
    n_samples: int               # points the criterion was computed on (after subsampling)
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (NaN as None)."""
        return {"k": self.k, "ks": list(self.ks),
                "scores": [None if math.isnan(s) else s for s in self.scores],
                "criterion": {"name": self.criterion.name, "meaning": self.criterion.meaning,
                              "higher_is_better": self.criterion.higher_is_better},
                "n_samples": self.n_samples, "seconds": round(self.seconds, 3)}


CRITERIA: Registry[Criterion] = Registry("k criterion")
_SCORERS: dict[str, Scorer] = {}   # kept apart from Criterion so that a suggestion pickles (st.cache_data)


def suggest_k(X: Any, *, k_min: int = 2, k_max: int = 20, seed: int = 0, max_samples: int = MAX_SAMPLES,
              criterion: str = "silhouette") -> KSuggestion:
    """Suggest k for ``X`` (N, D): the k in [k_min, k_max] with the best ``criterion`` score.

    Seeded: the same X, range, seed and max_samples give the same suggestion. Ties go to the
    smaller k (the simpler partition).
    """
    crit = CRITERIA.get(criterion)
    arr = _check(X, k_min, k_max, seed, max_samples)
    t = time.perf_counter()
    Z = _prepare(arr, seed, max_samples)
    ks = list(range(int(k_min), int(k_max) + 1))
    scores = np.asarray(_SCORERS[crit.name](Z, ks, int(seed)), dtype=np.float64)
    if np.isnan(scores).all():
        raise ParameterError(
            f"the {crit.name} is undefined for every k in {k_min}..{k_max} on these {len(Z)} points "
            "(too few distinct points?); lower k_max or use more samples"
        )
    best = np.nanargmax(scores) if crit.higher_is_better else np.nanargmin(scores)
    return KSuggestion(k=ks[int(best)], ks=tuple(ks), scores=tuple(float(s) for s in scores), criterion=crit,
                       n_samples=len(Z), seconds=time.perf_counter() - t)


def suggest_k_for(dataset: ImageDataset, features: FeatureConfig, workspace: str | Path, *, reduce: str = "none",
                  seed: int = 0, k_min: int = 2, k_max: int = 20, max_samples: int = MAX_SAMPLES,
                  criterion: str = "silhouette", progress: Progress | None = None) -> KSuggestion:
    """The suggestion for the space a run with these settings clusters in: the workspace's cached
    features (and any spaces joined to them), reduced (and that reduction cached) exactly as the
    pipeline does with this seed."""
    from core.config import ClusterConfig
    from core.pipeline import compute_features, joined_space

    feats, _, key, _ = compute_features(dataset, features, workspace, progress=progress)
    X = joined_space(dataset, feats, key, features, ClusterConfig(reduce=reduce, seed=seed), workspace,
                     progress=progress)
    return suggest_k(X, k_min=k_min, k_max=k_max, seed=seed, max_samples=max_samples, criterion=criterion)


# ---------------------------------------------------------------------- inputs
def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _check(X: Any, k_min: Any, k_max: Any, seed: Any, max_samples: Any) -> np.ndarray:
    for name, v in (("k_min", k_min), ("k_max", k_max), ("seed", seed), ("max_samples", max_samples)):
        if not _is_int(v):
            raise ParameterError(f"{name} must be an integer (got {v!r})")
    if k_min < 2:
        raise ParameterError(f"k_min must be at least 2 (got {k_min}): one cluster holds everything and says nothing")
    if k_max < k_min:
        raise ParameterError(f"k_max ({k_max}) is smaller than k_min ({k_min}): choose k_max >= k_min")
    try:
        arr = np.asarray(X, dtype=np.float32)
    except (TypeError, ValueError) as e:
        raise ParameterError(f"X must be a numeric array; it could not be read as numbers ({e})") from None
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ParameterError(f"X must be a non-empty 2-D array (n_samples, n_features); got shape {arr.shape}")
    n = min(arr.shape[0], max_samples)
    if k_max >= n:
        where = f"the {arr.shape[0]} samples" if n == arr.shape[0] else f"max_samples={max_samples}"
        raise ParameterError(f"k_max={k_max} needs more points than {where}: choose k_max <= {n - 1}"
                             + ("" if n == arr.shape[0] else " or raise max_samples"))
    bad = np.flatnonzero(~np.isfinite(arr).all(1))
    if len(bad):
        raise ParameterError(
            f"X has {len(bad)} rows with NaN or infinite values (first rows: {bad[:5].tolist()}); "
            "drop or impute those samples (e.g. re-extract their features) before suggesting k"
        )
    return arr


def _prepare(X: np.ndarray, seed: int, max_samples: int) -> np.ndarray:
    """A seeded subsample (rows in their original order), PCA-reduced when wide."""
    if len(X) > max_samples:
        idx = np.sort(np.random.default_rng(seed).choice(len(X), max_samples, replace=False))
        X = X[idx]
    if X.shape[1] > PCA_DIM:
        from core.projection import reduce

        X = reduce(X, f"pca:{PCA_DIM}", seed=seed)
    return np.ascontiguousarray(X, dtype=np.float32)


# ---------------------------------------------------------------------- the criteria
def _kmeans(X: np.ndarray, k: int, seed: int):
    from core.cluster.kmeans import KMeans

    # the CPU on purpose: a small subsample, and the same answer on every machine
    return KMeans(n_clusters=k, n_init=N_INIT, random_state=seed, device="cpu").fit(X)


def _on_labels(fn: Callable[[np.ndarray, np.ndarray], float]) -> Callable[[np.ndarray, list[int], int], list[float]]:
    """A score of (X, labels), computed on each k's k-means labels; NaN where it is undefined."""
    def score(X: np.ndarray, ks: list[int], seed: int) -> list[float]:
        out = []
        for k in ks:
            labels = _kmeans(X, k, seed).labels_
            m = len(np.unique(labels))
            out.append(float(fn(X, labels)) if 2 <= m <= len(X) - 1 else math.nan)
        return out
    return score


def _silhouette(X: np.ndarray, labels: np.ndarray) -> float:
    from sklearn.metrics import silhouette_score

    return silhouette_score(X, labels)


def _calinski_harabasz(X: np.ndarray, labels: np.ndarray) -> float:
    from sklearn.metrics import calinski_harabasz_score

    return calinski_harabasz_score(X, labels)


def _davies_bouldin(X: np.ndarray, labels: np.ndarray) -> float:
    from sklearn.metrics import davies_bouldin_score

    return davies_bouldin_score(X, labels)


def _stability(X: np.ndarray, ks: list[int], seed: int, reps: int = 2, frac: float = 0.8) -> list[float]:
    """Mean ARI between k-means fitted on two random 80% subsamples, both labelling every point."""
    from sklearn.metrics import adjusted_rand_score

    rng = np.random.default_rng(seed)
    m = int(frac * len(X))
    draws = [(rng.choice(len(X), m, replace=False), rng.choice(len(X), m, replace=False)) for _ in range(reps)]
    out = []
    for k in ks:
        aris = [adjusted_rand_score(_kmeans(X[a], k, seed + 2 * r).predict(X),
                                    _kmeans(X[b], k, seed + 2 * r + 1).predict(X))
                for r, (a, b) in enumerate(draws)]
        out.append(float(np.mean(aris)))
    return out


def _eigengap(X: np.ndarray, ks: list[int], seed: int, neighbors: int = 10) -> list[float]:
    """Gap λ_k − λ_{k−1} in the spectrum of the normalized Laplacian of a symmetric kNN graph:
    k well-separated groups give k eigenvalues near 0, then a jump."""
    from scipy.sparse.csgraph import laplacian
    from sklearn.neighbors import kneighbors_graph

    A = kneighbors_graph(X, n_neighbors=min(neighbors, len(X) - 1), include_self=False)
    A = ((A + A.T) > 0).astype(np.float64)
    ev = np.linalg.eigvalsh(laplacian(A, normed=True).toarray())   # ascending; ev[0] = 0
    return [float(ev[k] - ev[k - 1]) for k in ks]


def _criterion(name: str, meaning: str, higher_is_better: bool, scorer: Scorer) -> None:
    CRITERIA.add(name, Criterion(name, meaning, higher_is_better))
    _SCORERS[name] = scorer


_criterion("silhouette", "how much closer each point is to its own cluster than to the next one; "
           "-1..1, higher is better", True, _on_labels(_silhouette))
_criterion("calinski_harabasz", "between-cluster over within-cluster spread, per degree of freedom; "
           "higher is better", True, _on_labels(_calinski_harabasz))
_criterion("davies_bouldin", "mean over clusters of the worst (spread + spread) / centre distance; "
           "lower is better", False, _on_labels(_davies_bouldin))
_criterion("stability", "agreement (ARI) of k-means fitted on two random 80% subsamples; "
           "0..1, higher is better", True, _stability)
_criterion("eigengap", "jump after the k-th smallest eigenvalue of the kNN graph's Laplacian; "
           "higher is better", True, _eigengap)
