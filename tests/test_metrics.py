"""Metrics: Hungarian ACC, ignoring unlabeled samples, internal scores, outliers, summaries."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.datasets import make_blobs

from core.metrics import confidence_summary, external_scores, internal_scores, mahalanobis_outlier_scores


def test_permuted_labels_are_perfect():
    y = np.array([0, 0, 1, 1, 2, 2])
    s = external_scores(y, np.array([2, 2, 0, 0, 1, 1]))
    assert s["acc"] == 1.0 and s["nmi"] == pytest.approx(1.0) and s["ari"] == pytest.approx(1.0)
    assert s["mapping"] == {2: 0, 0: 1, 1: 2}


def test_known_confusion_and_acc():
    y = np.array([0, 0, 0, 1, 1, 1])
    p = np.array([1, 1, 0, 0, 0, 0])
    s = external_scores(y, p)
    np.testing.assert_array_equal(s["confusion"], [[1, 2], [3, 0]])
    assert s["acc"] == pytest.approx(5 / 6)
    assert s["mapping"] == {0: 1, 1: 0}


def test_more_clusters_than_classes():
    y = np.array([0, 0, 0, 1, 1, 1])
    p = np.array([0, 0, 2, 1, 1, 1])
    s = external_scores(y, p)
    assert s["acc"] == pytest.approx(5 / 6)       # cluster 2 is unmatched: counts as an error
    assert s["mapping"] == {0: 0, 1: 1, 2: 0}      # ...but maps to its majority class


def test_negative_truth_is_ignored():
    y = np.array([0, 0, -1, 1, 1, -1])
    p = np.array([1, 1, 0, 0, 0, 1])
    s = external_scores(y, p)
    assert s["acc"] == 1.0 and s["n"] == 4
    assert external_scores([-1, -1], [0, 1])["acc"] is None


def test_internal_scores_match_sklearn():
    X, y = make_blobs(n_samples=200, centers=3, random_state=0)
    s = internal_scores(X, y)
    assert s["silhouette"] == pytest.approx(skm.silhouette_score(X, y))
    assert s["davies_bouldin"] == pytest.approx(skm.davies_bouldin_score(X, y))
    assert s["calinski_harabasz"] == pytest.approx(skm.calinski_harabasz_score(X, y))
    assert s["sizes"] == np.bincount(y).tolist() and s["n_clusters"] == 3
    sampled = internal_scores(X, y, sample_size=50, seed=3)
    assert sampled["silhouette"] == pytest.approx(skm.silhouette_score(X, y, sample_size=50, random_state=3))


def test_internal_scores_one_cluster_is_none():
    s = internal_scores(np.random.default_rng(0).normal(size=(10, 2)), np.zeros(10, int))
    assert s["silhouette"] is None and s["davies_bouldin"] is None and s["n_clusters"] == 1


def test_planted_outlier_scores_highest():
    X, y = make_blobs(n_samples=200, centers=2, n_features=4, random_state=0)
    X = np.vstack([X, X[y == 0].mean(0) + 15])
    y = np.append(y, 0)
    s = mahalanobis_outlier_scores(X, y)
    assert s.shape == (201,) and int(np.argmax(s)) == 200


def test_outliers_handle_singletons_and_high_dim():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 80))
    y = np.r_[np.zeros(30, int), np.ones(29, int), 2]
    s = mahalanobis_outlier_scores(X, np.where(np.arange(60) == 0, -1, y))
    assert np.isnan(s[0]) and s[59] == 0.0 and np.isfinite(s[1:]).all()


def test_confidence_summary():
    s = confidence_summary(np.array([0.1, 0.2, 0.9, 1.0]), labels=np.array([0, 0, 1, 1]))
    assert s["n"] == 4 and s["mean"] == pytest.approx(0.55) and s["below_threshold"] == 0.5
    assert sum(s["histogram"]) == 4 and s["per_cluster"] == {0: pytest.approx(0.15), 1: pytest.approx(0.95)}
    assert confidence_summary([])["mean"] is None
