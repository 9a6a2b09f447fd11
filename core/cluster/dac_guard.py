"""Did a trained clusterer end below the clustering it started from? A label-free check.

DAC and RUC start from k-means' clusters and train on. Their training optimises their own losses,
not the clusters' fit to the data, and on some data it drifts away from a good start (RUC's
defaults on a UMAP map: digits 0.79 -> 0.68, Fashion-MNIST 0.71 -> 0.60; DAC at a sharp softmax on
1280-d features: digits 0.67 -> 0.55). So after fitting, both partitions are scored in the space
the start clustered in, and the trained one replaces the start only when it scores clearly higher.

The score: Newman modularity of the partition on the symmetrised kNN graph (10 cosine
neighbours in the centred space, :func:`core.cluster.ruc_select.knn_indices`;
:func:`core.cluster.knn_graph.modularity`). It rewards clusters whose members' neighbours are
members too, against what the cluster sizes alone would give, so neither merging two classes
nor splitting one pays. Checked against ACC (ground truth, for this check only) on 131 DAC and
RUC fits (digits, Fashion-MNIST test, LFW; pixels, EfficientNet-Lite0 features, UMAP-10 maps;
seeds 0-2): where ACC moved by more than 0.005, the modularity difference had ACC's sign in 89
of 108, kNN agreement in 82 (it rewards merging), silhouette in 61 (it rewards k-means' round
clusters, which k-means nearly optimises). It never rated a worse result more than 0.0041
higher, while the defaults' real gains scored 0.009 to 0.03 higher: hence ``MARGIN``. Where it
cannot tell results apart (digits pixels -> UMAP-10: 0.95 and 0.90 score 0.893-0.897 there), the
start stays. Nothing here reads ground truth.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

CRITERION = "kNN modularity"
MARGIN = 0.01           # a result must beat the start by this much modularity to replace it
K_NEIGHBORS = 10


@dataclass(frozen=True)
class Verdict:
    """Both partitions' scores and whether the start is kept."""

    criterion: str
    start: float
    result: float
    keep_start: bool

    def message(self, who: str, start: str) -> str:
        """One line for a person, e.g. ``message("DAC", "its k-means start")``."""
        how = "ended below" if self.result < self.start else "did not end clearly above"
        return (f"{who} {how} {start} by {self.criterion} ({self.result:.3f} against {self.start:.3f}); "
                "kept the start")

    def record(self) -> dict:
        """The history record of the check (no "epoch": it is no training step)."""
        return {"guard": self.criterion, "start_score": round(self.start, 6),
                "result_score": round(self.result, 6), "kept_start": self.keep_start}


def partition_score(neighbors: np.ndarray, labels: np.ndarray) -> float:
    """Modularity of ``labels`` (N,) on the kNN graph ``neighbors`` (N, K)."""
    from core.cluster.knn_graph import modularity

    labels = np.unique(np.asarray(labels), return_inverse=True)[1]
    return float(modularity(neighbors, labels, int(labels.max()) + 1))


def compare(space: np.ndarray, start: np.ndarray, result: np.ndarray, *, margin: float = MARGIN,
            device: str | torch.device = "cpu") -> Verdict:
    """Score ``start`` and ``result`` (N,) cluster ids on the kNN graph of ``space`` (N, D)
    (neighbours found on ``device``).

    ``keep_start`` unless the result scores at least ``margin`` higher. Identical partitions
    (up to renumbering) keep the result: there is nothing to choose."""
    # torch: imported here, so that kept_start_message (the app, the CLI) does not load it
    from core.cluster.ruc_select import knn_indices

    space = np.asarray(space, dtype=np.float32).reshape(len(space), -1)
    start, result = np.asarray(start), np.asarray(result)
    neighbors = knn_indices(space, min(K_NEIGHBORS, len(space) - 1), device=device)
    a, b = partition_score(neighbors, start), partition_score(neighbors, result)
    same = _same_partition(start, result)
    return Verdict(CRITERION, a, b, keep_start=not same and b < a + margin)


def _same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    pairs = np.unique(np.stack([a, b], 1), axis=0)
    return len(pairs) == len(np.unique(a)) == len(np.unique(b))


def kept_start_message(history: list[dict] | None) -> str | None:
    """The guard's message when a run's ``history`` says the start was kept, else None (for the
    CLI's and the app's run summaries)."""
    for record in reversed(history or []):
        if "guard" in record:
            return record.get("message") if record.get("kept_start") else None
    return None
