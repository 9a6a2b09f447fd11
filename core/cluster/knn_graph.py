"""kNN-graph scores of a partition (pure functions, numpy in and out).

Used by the keep-the-start guard of DAC and RUC (:mod:`core.cluster.dac_guard`): a partition
whose members' nearest neighbours stay inside their own cluster scores high. Nothing here reads
ground truth.
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


def modularity(neighbors: np.ndarray, labels: np.ndarray, n_clusters: int) -> float:
    """Newman modularity of ``labels`` on the symmetrised kNN graph.

    ``neighbors`` (N, K) neighbour indices, ``labels`` (N,) in [0, k). Every directed edge i -> j
    counts half for (i, j) and half for (j, i): Q = sum_c e_cc - a_c^2, e the share of edge weight
    between clusters, a_c the share touching c. 1 - 1/k at best for k equal, unlinked clusters;
    0 for labels unrelated to the graph.
    """
    e = edge_counts(neighbors, labels, n_clusters)
    e = (e + e.T) / (2.0 * e.sum())
    a = e.sum(1)
    return float(np.trace(e) - a @ a)
