"""Nearest neighbours of one image in a run's feature space (the enlarged view shows them).

Exact search: one query against N rows is a single matrix-vector product (10,000 × 784 in a few
milliseconds, 1,000,000 × 50 in well under a second), so no index is built or kept. Callers cache
the answer per (run, sample): the features of a finished run never change.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from core.errors import ParameterError

METRICS = ("euclidean", "cosine")


def nearest(X: np.ndarray, row: int, k: int = 8, *, metric: str = "euclidean") -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` rows of ``X`` nearest to row ``row`` (itself left out), nearest first, and their
    distances. Ties are broken by row number, so the answer is the same on every call.

    ``metric``: "euclidean" or "cosine" (1 - cosine similarity; a zero row is at distance 1 from all).
    """
    X = np.asarray(X)
    if X.ndim != 2:
        raise ParameterError(f"features must be a 2-D array (samples × dimensions); got shape {X.shape}")
    n = len(X)
    if not 0 <= int(row) < n:
        raise ParameterError(f"row {row} is outside the {n:,} samples (0..{n - 1})")
    if metric not in METRICS:
        raise ParameterError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")
    k = max(0, min(int(k), n - 1))
    q = X[int(row)].astype(np.float64)
    if metric == "cosine":
        norms = np.linalg.norm(X, axis=1).astype(np.float64)
        qn = float(np.linalg.norm(q))
        sims = (X @ q) / np.where(norms * qn > 0, norms * qn, np.inf)
        d = 1.0 - sims
    else:
        d = np.sqrt(np.maximum(np.einsum("ij,ij->i", X, X, dtype=np.float64) - 2.0 * (X @ q) + q @ q, 0.0))
    d = np.asarray(d, dtype=np.float64)
    d[int(row)] = np.inf
    rows = np.arange(n)
    if k == 0:
        return rows[:0], d[:0]
    cand = np.argpartition(d, k - 1)[:k] if k < n else rows
    # every row tied with the k-th distance competes, so the smallest rows win a tie
    cand = np.flatnonzero(d <= d[cand].max())
    order = np.lexsort((cand, d[cand]))[:k]
    best = cand[order]
    return best, d[best]


def run_space(features: np.ndarray | None, reduce: str, reduced: Path | None) -> tuple[np.ndarray | None, str]:
    """The space a run clustered in: its cached reduction (``reduced``, from
    core.pipeline.reduced_path) when it is on disk and row-aligned, else the features themselves.
    Returns (array or None, what it is in words)."""
    if reduce not in ("", "none") and reduced is not None and Path(reduced).is_file():
        try:
            Z = np.load(reduced, mmap_mode="r", allow_pickle=False)
            if features is None or len(Z) == len(features):
                return Z, f"the run's {reduce} space"
        except (OSError, ValueError):
            pass
    if features is None:
        return None, ""
    return features, "the features" if reduce in ("", "none") else f"the features ({reduce} not cached)"
