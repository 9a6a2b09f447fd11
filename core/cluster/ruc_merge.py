"""Merging clusters by their connectivity in a kNN graph (pure functions, numpy in and out).

RUC's ``overcluster`` option trains on k + m clusters and reports, after every epoch, those
clusters merged back to k. Why: a class that is two groups in the data (digits: upright and
slanted 1s) makes k-means with k clusters put one group with another class, and no label-noise
repair moves a tight, self-consistent group out of the cluster it was put in. With a few clusters
more the group can get its own cluster; RUC repairs the rest; then the two clusters whose
members' nearest neighbours cross over most are joined. Whether the start parts the group
depends on m and the data (bench/RESULTS.md, "Overcluster"). Nothing here reads ground truth.
"""
from __future__ import annotations

import numpy as np

from core.errors import ParameterError


def edge_counts(neighbors: np.ndarray, labels: np.ndarray, n_clusters: int) -> np.ndarray:
    """(k, k) counts of kNN edges: ``E[a, b]`` = edges from members of a to members of b.
    ``neighbors`` (N, K) neighbour indices, ``labels`` (N,) in [0, k)."""
    labels = np.asarray(labels, dtype=np.int64)
    neighbors = np.asarray(neighbors)
    if neighbors.ndim != 2 or len(neighbors) != len(labels):
        raise ParameterError(f"neighbors must be (N={len(labels)}, K), got shape {neighbors.shape}")
    k = int(n_clusters)
    edges = np.zeros((k, k), dtype=np.float64)
    np.add.at(edges, (np.repeat(labels, neighbors.shape[1]), labels[neighbors.ravel()]), 1.0)
    return edges


def connectivity(neighbors: np.ndarray, labels: np.ndarray, n_clusters: int) -> np.ndarray:
    """Symmetric (k, k) connectivity: ``C[a, b] = e(a->b) / e(a) + e(b->a) / e(b)``.

    ``neighbors`` (N, K) indices of each sample's K nearest neighbours (itself excluded);
    ``labels`` (N,) in [0, k). ``e(a->b)`` counts neighbour edges from members of a to members of
    b, ``e(a)`` all edges from members of a; each term is the share of a cluster's neighbourhood
    that lies in the other, so a small cluster next to a big one counts as much as two big ones.
    The diagonal is 0; an empty cluster has 0 everywhere.
    """
    edges = edge_counts(neighbors, labels, n_clusters)
    share = edges / np.maximum(edges.sum(1, keepdims=True), 1.0)
    conn = share + share.T
    np.fill_diagonal(conn, 0.0)
    return conn


def merge_plan(neighbors: np.ndarray, labels: np.ndarray, n_clusters: int, n_target: int,
               keep_apart: np.ndarray | None = None) -> np.ndarray:
    """Join the most connected pair of clusters, recompute, repeat until ``n_target`` remain.

    Returns ``plan`` (k,) int: cluster ``c`` ends in cluster ``plan[c]``: the id of the group's
    ``keep_apart`` cluster if it has one, otherwise its lowest id (so ``plan[labels]`` are the
    merged labels, using only surviving ids; a person's labels keep their ids). Empty
    clusters are not counted and are never merged. ``keep_apart`` (k,) bool: clusters that must
    not be joined with each other (those holding a person's corrections: the person said what
    they are); when only such pairs are left, merging stops early, above ``n_target``.
    """
    labels = np.asarray(labels, dtype=np.int64)
    k = int(n_clusters)
    if n_target < 1:
        raise ParameterError(f"n_target must be at least 1, got {n_target}")
    plan = np.arange(k)
    apart = np.zeros(k, bool) if keep_apart is None else np.asarray(keep_apart, bool).copy()
    present = np.bincount(labels, minlength=k) > 0
    while present.sum() > n_target:
        conn = connectivity(neighbors, plan[labels], k)
        allowed = present[:, None] & present[None, :] & ~(apart[:, None] & apart[None, :])
        np.fill_diagonal(allowed, False)
        if not allowed.any():
            break
        conn = np.where(allowed, conn, -1.0)
        a, b = np.unravel_index(int(np.argmax(conn)), conn.shape)
        keep, gone = (b, a) if apart[b] and not apart[a] else (a, b) if apart[a] else (min(a, b), max(a, b))
        plan[plan == gone] = keep
        present[gone] = False
        apart[keep] |= apart[gone]
    return plan
