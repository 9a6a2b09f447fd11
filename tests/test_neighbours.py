"""core.neighbours: exact nearest neighbours of one row, against a brute-force reference."""
import numpy as np
import pytest

from core.errors import ParameterError
from core.neighbours import nearest, run_space


def test_euclidean_matches_brute_force_and_leaves_the_query_out():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 7)).astype(np.float32)
    rows, dist = nearest(X, 42, k=5)
    ref = np.linalg.norm(X.astype(np.float64) - X[42], axis=1)
    ref[42] = np.inf
    assert rows.tolist() == np.argsort(ref, kind="stable")[:5].tolist()
    assert np.allclose(dist, np.sort(ref)[:5], atol=1e-4)
    assert 42 not in rows.tolist()


def test_cosine_ignores_length_and_ties_go_to_the_smaller_row():
    X = np.array([[1, 0], [2, 0], [0, 3], [5, 0], [1, 1]], dtype=np.float32)
    rows, dist = nearest(X, 0, k=3, metric="cosine")
    assert rows.tolist() == [1, 3, 4]          # rows 1 and 3 point the same way: distance 0, by row
    assert np.allclose(dist, [0, 0, 1 - np.sqrt(0.5)], atol=1e-6)


def test_k_larger_than_the_rest_returns_every_other_row():
    X = np.arange(8, dtype=np.float32).reshape(4, 2)
    rows, _ = nearest(X, 3, k=10)
    assert rows.tolist() == [2, 1, 0]


def test_refusals_say_what_was_wrong():
    X = np.zeros((4, 2), np.float32)
    with pytest.raises(ParameterError, match="outside the 4 samples"):
        nearest(X, 4)
    with pytest.raises(ParameterError, match="euclidean, cosine"):
        nearest(X, 0, metric="manhattan")


def test_run_space_prefers_the_cached_reduction(tmp_path):
    X = np.ones((5, 3), np.float32)
    Z = np.zeros((5, 2), np.float32)
    np.save(tmp_path / "z.npy", Z)
    got, what = run_space(X, "pca:50", tmp_path / "z.npy")
    assert got.shape == (5, 2) and what == "the run's pca:50 space"
    got, what = run_space(X, "pca:50", tmp_path / "missing.npy")
    assert got is X and "not cached" in what
    np.save(tmp_path / "short.npy", Z[:3])
    got, _ = run_space(X, "umap:10", tmp_path / "short.npy")   # another dataset's rows: not used
    assert got is X
