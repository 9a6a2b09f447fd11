"""kNN-graph scores the DAC/RUC guard judges partitions by."""
import numpy as np
import pytest

from core.cluster.knn_graph import edge_counts, modularity
from core.errors import ParameterError


def test_modularity_of_two_pairs_worked_out_by_hand():
    # samples 0-1 are each other's neighbour, so are 2-3: half the edge weight inside each pair
    neighbors = np.array([[1], [0], [3], [2]])
    assert modularity(neighbors, np.array([0, 0, 1, 1]), 2) == pytest.approx(0.5)    # 1 - 2 * 0.5^2
    assert modularity(neighbors, np.array([0, 1, 0, 1]), 2) == pytest.approx(-0.5)   # no edge inside
    assert modularity(neighbors, np.array([0, 0, 0, 0]), 1) == pytest.approx(0.0)


def test_edge_counts_count_directed_edges_between_clusters():
    neighbors = np.array([[1, 2], [0, 2], [0, 1]])
    e = edge_counts(neighbors, np.array([0, 0, 1]), 2)
    assert e.tolist() == [[2.0, 2.0], [2.0, 0.0]]
    with pytest.raises(ParameterError, match=r"neighbors must be \(N=3, K\), got shape \(2, 2\)"):
        edge_counts(neighbors[:2], np.array([0, 0, 1]), 2)
