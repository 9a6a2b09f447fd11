"""TEMI (core.cluster.temi): the head recovers clean clusters, is seeded, takes several spaces,
says what is wrong with bad input, and RUC can start from it."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_blobs

from core.cluster.registry import available, make_clusterer
from core.cluster.temi import TEMI
from core.errors import ParameterError
from core.metrics import external_scores

FAST = {"heads": 4, "epochs": 40, "batch_size": 64, "knn": 10, "pca_dim": 16, "hidden": 32, "device": "cpu"}


@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(n_samples=400, centers=4, n_features=12, cluster_std=1.0, random_state=3)
    return X.astype(np.float32), y


@pytest.fixture(scope="module")
def fitted(blobs, one_thread):
    X, _ = blobs
    return TEMI(n_clusters=4, random_state=0, **FAST).fit(X)


def test_recovers_blobs_and_contract(blobs, fitted):
    X, y = blobs
    assert external_scores(y, fitted.labels_)["acc"] >= 0.95
    assert fitted.labels_.shape == (400,) and fitted.labels_.dtype == np.int64
    assert fitted.confidence_.shape == (400,)
    assert float(fitted.confidence_.min()) >= 0 and float(fitted.confidence_.max()) <= 1
    assert len(fitted.history_) == 40 and fitted.history_[-1]["progress"] == 1.0
    assert 0 <= fitted.best_head_ < 4 and fitted.head_losses_.shape == (4,)
    assert fitted.head_losses_[fitted.best_head_] == fitted.head_losses_.min()
    assert fitted.history_[-1]["loss"] < fitted.history_[0]["loss"]
    np.testing.assert_array_equal(fitted.predict(X), fitted.probabilities_.argmax(1))


def test_same_seed_same_labels_and_eval_labels_only_score(blobs, fitted, one_thread):
    X, y = blobs
    again = TEMI(n_clusters=4, random_state=0, **FAST).fit(X, eval_labels=y)
    np.testing.assert_array_equal(again.labels_, fitted.labels_)
    assert "acc" in again.history_[-1] and "acc" not in fitted.history_[-1]


def test_several_spaces(blobs, one_thread):
    X, y = blobs
    rng = np.random.default_rng(0)
    noise = rng.normal(size=(400, 30)).astype(np.float32)     # a space with no structure
    both = TEMI(n_clusters=4, random_state=0, **FAST).fit([X, noise])
    assert both.n_spaces_ == 2 and both.space_dims_ == [12, 30] and len(both.neighbors_) == 2
    assert external_scores(y, both.labels_)["acc"] >= 0.8
    joint = TEMI(n_clusters=4, random_state=0, knn_space="joint", **FAST).fit([X, X[:, ::-1]])
    assert len(joint.neighbors_) == 1
    assert external_scores(y, joint.labels_)["acc"] >= 0.95
    with pytest.raises(ParameterError, match=r"expected 2 space\(s\) of dimensions \[12, 30\]"):
        both.predict(X)


def test_bad_input_lists_every_problem(blobs):
    X, _ = blobs
    bad = X[:10].copy()
    bad[0, 0] = np.nan
    with pytest.raises(ParameterError) as e:
        TEMI(n_clusters=4, **FAST).fit([X, X[:300], bad, X[:, 0]])
    msg = str(e.value)
    assert "space 2 has NaN or infinite values in 1 of 10 samples" in msg
    assert "space 3 must be 2-D" in msg
    assert "row counts differ: 400, 300, 10" in msg
    with pytest.raises(ParameterError, match="no feature space given"):
        TEMI(n_clusters=4).fit([])
    with pytest.raises(ParameterError, match="knn_space='both' is not known; choose one of: each, joint"):
        TEMI(n_clusters=4, knn_space="both").fit(X)
    with pytest.raises(ParameterError, match="beta must be a number in"):
        TEMI(n_clusters=4, beta=0).fit(X)
    with pytest.raises(ParameterError, match="n_clusters=500 is more than the 400 samples"):
        TEMI(n_clusters=500).fit(X)


def test_callback_stops_keeping_last_epoch(blobs, one_thread):
    X, _ = blobs
    seen = []
    est = TEMI(n_clusters=4, **FAST).fit(X, callback=lambda r: seen.append(r) or len(seen) < 3)
    assert len(est.history_) == 3 and est.labels_.shape == (400,)


def test_registry_and_ruc_start(blobs, one_thread):
    X, y = blobs
    assert "temi" in available()
    ruc = make_clusterer("ruc", n_clusters=4, initial="temi", initial_params=FAST, epochs=3, warmup=1,
                         random_state=0, device="cpu")
    ruc.fit(X)
    start = make_clusterer("temi", n_clusters=4, **FAST)
    assert ruc.initial_labels_.shape == (400,)
    assert external_scores(y, ruc.initial_labels_)["acc"] >= 0.95
    assert external_scores(y, ruc.labels_)["acc"] >= 0.95
    assert start.get_params()["heads"] == 4


def test_pipeline_hands_spaces_apart(blobs, one_thread):
    """--join with temi: the pipeline's cluster() gives TEMI the spaces as a list; k-means gets
    them side by side; RUC's temi start gets them apart too."""
    from core.config import ClusterConfig
    from core.pipeline import cluster, takes_spaces

    X, y = blobs
    other = X[:, ::-1] * 3.0
    est, joined = cluster(X, ClusterConfig(algo="temi", k=4, params=FAST), device="cpu", space=[X, other])
    assert est.n_spaces_ == 2 and joined.shape == (400, 24)
    assert external_scores(y, est.labels_)["acc"] >= 0.95
    km, joined = cluster(X, ClusterConfig(algo="kmeans", k=4), device="cpu", space=[X, other])
    assert joined.shape == (400, 24) and km.labels_.shape == (400,)
    assert takes_spaces(ClusterConfig(algo="temi")) and not takes_spaces(ClusterConfig(algo="kmeans"))
    assert takes_spaces(ClusterConfig(algo="ruc", params={"initial": "temi"}))
    assert not takes_spaces(ClusterConfig(algo="ruc"))
