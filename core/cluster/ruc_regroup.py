"""Regrouping: move a separate group out of the cluster it was put in (pure functions).

RUC repairs single mislabeled samples: a sample whose neighbours and networks disagree with its
label. It cannot repair a *group* put in the wrong cluster: a tight, self-consistent group
(digits: 90 upright 1s that k-means on pixels put with the 8s) agrees with itself, so its
members look clean. RUC's ``regroup`` option looks for such groups after training:

1. split each cluster in two (2-means in the embedding);
2. a split is a candidate when the smaller part is a group apart: at least ``min_group``
   samples, and less than ``max_cut`` of the two parts' kNN edges cross between them
   (:func:`core.cluster.ruc_merge.connectivity`, summed both ways);
3. the group goes to the other cluster its neighbour edges reach most, if that link is at
   least ``min_link`` (twice ``max_cut``: a real tie, not a stray edge) and stronger than its
   link to the rest of its own cluster;
4. of all candidates, the move that raises the modularity of the kNN graph most is made; repeat
   until no move raises it. A sample moves at most once.

k stays the same; no cluster is emptied (the larger part stays). Samples a person corrected
never move, and they anchor their group: the rest of it counts as tied to them, so a group with
several corrections in it stays where the person put them. Nothing here reads ground truth.
Where the classes themselves overlap in the embedding (Fashion-MNIST), higher modularity is not
closer to the classes, and regrouping hurts (bench/RESULTS.md, "RUC", "Regroup").
"""
from __future__ import annotations

import numpy as np

from core.cluster.ruc_merge import connectivity, edge_counts
from core.errors import ParameterError


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


def _smaller_part(points: np.ndarray, seed: int) -> np.ndarray:
    """Boolean mask of the smaller of two 2-means parts of ``points`` (M, D)."""
    from sklearn.cluster import KMeans

    part = KMeans(n_clusters=2, n_init=4, random_state=seed).fit_predict(points)
    return part == int(np.argmin(np.bincount(part, minlength=2)))


def regroup(embedding: np.ndarray, neighbors: np.ndarray, labels: np.ndarray, n_clusters: int, *,
            min_group: int, max_cut: float = 0.05, min_link: float = 0.1, frozen: np.ndarray | None = None,
            seed: int = 0, max_moves: int | None = None) -> tuple[np.ndarray, list[dict]]:
    """Greedy group moves that raise the kNN graph's modularity (steps in the module docstring).

    embedding (N, D) where clusters are split; neighbors (N, K) the kNN graph in that space;
    labels (N,) in [0, k); frozen (N,) bool: samples that never move (a person's corrections).
    Returns (new labels, moves): each move a dict with ``source``, ``target``, ``size``, ``cut``
    (connectivity between the group and the rest of its cluster), ``link`` (between the group and
    its target; both as in :func:`connectivity`, 0 to 2) and ``modularity`` after it.
    ``max_moves`` defaults to 2 k.
    """
    labels = np.asarray(labels, dtype=np.int64).copy()
    k = int(n_clusters)
    if min_group < 1:
        raise ParameterError(f"min_group must be at least 1, got {min_group}")
    if not 0.0 < max_cut <= 1.0:
        raise ParameterError(f"max_cut must be in (0, 1], got {max_cut}")
    if not 0.0 <= min_link <= 2.0:
        raise ParameterError(f"min_link must be in [0, 2], got {min_link}")
    frozen = np.zeros(len(labels), bool) if frozen is None else np.asarray(frozen, bool).copy()
    new = k   # the id a group gets while it is weighed
    q = modularity(neighbors, labels, k)
    moves: list[dict] = []
    for _ in range(2 * k if max_moves is None else max_moves):
        best = None
        for c in range(k):
            members = np.flatnonzero(labels == c)
            if len(members) < 2 * min_group:
                continue
            group = members[_smaller_part(embedding[members], seed) & ~frozen[members]]
            if len(group) < min_group:
                continue
            trial = labels.copy()
            trial[group] = new
            conn = connectivity(neighbors, trial, k + 1)
            if conn[c, new] >= max_cut:
                continue
            target = int(np.argmax(conn[new, :k] - np.where(np.arange(k) == c, np.inf, 0.0)))
            if conn[new, target] < min_link or conn[new, target] <= conn[new, c]:
                continue
            trial[group] = target
            after = modularity(neighbors, trial, k)
            if after > (q if best is None else best[0]) + 1e-4:
                best = (after, trial, dict(source=c, target=target, size=len(group),
                                          cut=round(float(conn[c, new]), 4),
                                          link=round(float(conn[new, target]), 4)))
        if best is None:
            break
        # a sample moves once: a group that has no strong tie anywhere would otherwise wander
        # from cluster to cluster, each hop raising modularity a little by evening out sizes
        frozen = frozen | (best[1] != labels)
        q, labels = best[0], best[1]
        moves.append({**best[2], "modularity": round(q, 4)})
    return labels, moves
