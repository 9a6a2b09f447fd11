"""Cluster quality: external (against ground truth), internal, outliers and confidence.

Every function returns plain values (None where a score is undefined, e.g. one cluster) rather
than raising, so pages and benchmarks can show whatever is meaningful.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn import metrics as skm

from core.errors import ParameterError


def _labels_1d(a: Any, name: str) -> np.ndarray:
    arr = np.asarray(a)
    if arr.ndim != 1:
        raise ParameterError(f"{name} must be a 1-D array of labels; got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if not np.all(np.mod(arr, 1) == 0):
            raise ParameterError(f"{name} must hold integer labels")
    return arr.astype(np.int64)


def external_scores(y_true: Any, y_pred: Any) -> dict[str, Any]:
    """Scores of a clustering against ground truth; samples with y_true < 0 are ignored.

    Returns acc (Hungarian one-to-one matching of clusters to classes; works for any number of
    clusters: unmatched clusters count as errors), nmi, ari, confusion (rows: ``classes``,
    columns: ``clusters``), mapping {cluster: class} (matched clusters by the Hungarian match,
    any extra cluster by its majority class) and n (samples scored).
    """
    yt, yp = _labels_1d(y_true, "y_true"), _labels_1d(y_pred, "y_pred")
    if yt.shape != yp.shape:
        raise ParameterError(f"y_true and y_pred differ in length ({len(yt)} vs {len(yp)})")
    keep = yt >= 0
    yt, yp = yt[keep], yp[keep]
    if len(yt) == 0:
        return {"acc": None, "nmi": None, "ari": None, "confusion": np.zeros((0, 0), np.int64),
                "classes": [], "clusters": [], "mapping": {}, "n": 0}
    classes, ti = np.unique(yt, return_inverse=True)
    clusters, pi = np.unique(yp, return_inverse=True)
    confusion = np.zeros((len(classes), len(clusters)), dtype=np.int64)
    np.add.at(confusion, (ti, pi), 1)
    rows, cols = linear_sum_assignment(-confusion)          # maximise matched samples
    mapping = {int(clusters[c]): int(classes[r]) for r, c in zip(rows, cols, strict=True)}
    for c in range(len(clusters)):                           # extra clusters: majority class
        mapping.setdefault(int(clusters[c]), int(classes[confusion[:, c].argmax()]))
    return {
        "acc": float(confusion[rows, cols].sum() / len(yt)),
        "nmi": float(skm.normalized_mutual_info_score(yt, yp)),
        "ari": float(skm.adjusted_rand_score(yt, yp)),
        "confusion": confusion,
        "classes": classes.tolist(),
        "clusters": clusters.tolist(),
        "mapping": dict(sorted(mapping.items())),
        "n": int(len(yt)),
    }


def internal_scores(X: Any, labels: Any, *, sample_size: int = 3000, seed: int = 0) -> dict[str, Any]:
    """Label-free scores; samples with a negative label (unassigned) are left out.

    silhouette is computed on a seeded sample of ``sample_size`` points when N is larger (it is
    O(N²)); silhouette, davies_bouldin and calinski_harabasz are None when undefined (fewer than
    2 clusters, or as many clusters as samples).
    """
    X = np.asarray(X)
    lab = _labels_1d(labels, "labels")
    if X.ndim != 2 or len(X) != len(lab):
        raise ParameterError(f"X must be 2-D with one row per label; got X {X.shape}, labels {lab.shape}")
    keep = lab >= 0
    X, lab = X[keep], lab[keep]
    sizes = np.bincount(lab).tolist() if len(lab) else []
    k = int(np.count_nonzero(sizes))
    out: dict[str, Any] = {"silhouette": None, "davies_bouldin": None, "calinski_harabasz": None,
                           "sizes": sizes, "n_clusters": k}
    if not 2 <= k <= len(lab) - 1:
        return out
    if len(lab) > sample_size:
        rng = np.random.RandomState(seed)    # the same draw as sklearn's sample_size argument
        idx = rng.permutation(len(lab))[:sample_size]
        Xs, ls = X[idx], lab[idx]
    else:
        Xs, ls = X, lab
    if 2 <= len(np.unique(ls)) <= len(ls) - 1:
        out["silhouette"] = float(skm.silhouette_score(Xs, ls))
    out["davies_bouldin"] = float(skm.davies_bouldin_score(X, lab))
    out["calinski_harabasz"] = float(skm.calinski_harabasz_score(X, lab))
    return out


def mahalanobis_outlier_scores(
    X: Any, labels: Any, *, max_dim: int = 50, min_cluster: int = 5, seed: int = 0
) -> np.ndarray:
    """(N,) Mahalanobis distance of each sample to its own cluster's mean (larger = odder).

    Covariance: Ledoit–Wolf shrinkage per cluster, in a PCA space of at most ``max_dim``
    dimensions (a full D×D covariance of high-D features is neither estimable nor cheap).
    Clusters smaller than ``min_cluster`` use the pooled within-cluster covariance (a singleton
    therefore scores 0). Samples with a negative label get NaN.
    """
    from sklearn.covariance import LedoitWolf
    from sklearn.decomposition import PCA

    X = np.asarray(X, dtype=np.float32)
    lab = _labels_1d(labels, "labels")
    if X.ndim != 2 or len(X) != len(lab):
        raise ParameterError(f"X must be 2-D with one row per label; got X {X.shape}, labels {lab.shape}")
    out = np.full(len(lab), np.nan, dtype=np.float64)
    keep = np.flatnonzero(lab >= 0)
    if len(keep) == 0:
        return out
    Z = X[keep]
    dim = min(max_dim, Z.shape[1], max(len(Z) - 1, 1))
    if Z.shape[1] > dim:
        Z = PCA(n_components=dim, random_state=seed).fit_transform(Z)
    Z = Z.astype(np.float64)
    lk = lab[keep]
    means = {c: Z[lk == c].mean(0) for c in np.unique(lk)}
    resid = Z - np.stack([means[c] for c in lk])
    pooled = LedoitWolf(assume_centered=True).fit(resid).covariance_ if len(Z) > 1 else np.eye(Z.shape[1])
    for c in means:
        m = lk == c
        cov = LedoitWolf(assume_centered=True).fit(resid[m]).covariance_ if m.sum() >= min_cluster else pooled
        # a tiny ridge keeps the solve stable for degenerate clusters (all rows identical)
        cov = cov + np.eye(len(cov)) * 1e-9 * max(float(np.trace(cov)) / len(cov), 1e-12)
        sol = np.linalg.solve(cov, resid[m].T).T
        out[keep[m]] = np.sqrt(np.maximum((resid[m] * sol).sum(1), 0))
    return out


def confidence_summary(conf: Any, labels: Any = None, *, threshold: float = 0.5) -> dict[str, Any]:
    """Summary of per-sample confidences in [0, 1]: n, mean, median, min, max, q10, q90,
    share below ``threshold`` (candidates for review), a 10-bin histogram, and the mean per
    cluster when labels are given."""
    c = np.asarray(conf, dtype=np.float64).ravel()
    c = c[np.isfinite(c)]
    if len(c) == 0:
        return {"n": 0, "mean": None, "median": None, "min": None, "max": None, "q10": None,
                "q90": None, "below_threshold": None, "threshold": threshold, "histogram": [0] * 10}
    out: dict[str, Any] = {
        "n": int(len(c)),
        "mean": float(c.mean()),
        "median": float(np.median(c)),
        "min": float(c.min()),
        "max": float(c.max()),
        "q10": float(np.quantile(c, 0.1)),
        "q90": float(np.quantile(c, 0.9)),
        "below_threshold": float((c < threshold).mean()),
        "threshold": threshold,
        "histogram": np.histogram(np.clip(c, 0, 1), bins=10, range=(0, 1))[0].tolist(),
    }
    if labels is not None:
        lab = _labels_1d(labels, "labels")
        cc = np.asarray(conf, dtype=np.float64).ravel()
        if len(lab) != len(cc):
            raise ParameterError(f"conf and labels differ in length ({len(cc)} vs {len(lab)})")
        out["per_cluster"] = {int(k): float(np.nanmean(cc[lab == k])) for k in np.unique(lab[lab >= 0])}
    return out
