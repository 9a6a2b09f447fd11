"""suggest_k: the k of well-separated blobs, one score per k, seeded, clear refusals."""
import pickle

import numpy as np
import pytest

from core.cluster.suggest_k import CRITERIA, KSuggestion, suggest_k
from core.errors import ParameterError, UnknownNameError


def blobs(centres: int, per: int = 60, dim: int = 8, seed: int = 0) -> np.ndarray:
    """``centres`` Gaussian blobs (std 1) on the axes, 14 apart: unmistakably ``centres`` groups."""
    rng = np.random.default_rng(seed)
    mu = 10.0 * np.eye(dim)[:centres]
    return (np.repeat(mu, per, axis=0) + rng.normal(size=(centres * per, dim))).astype(np.float32)


@pytest.mark.parametrize("centres", [4, 7])
def test_suggests_the_number_of_blobs(one_thread, centres):
    s = suggest_k(blobs(centres), k_max=12)
    assert s.k == centres
    assert s.criterion.name == "silhouette" and s.criterion.higher_is_better
    assert s.scores[s.ks.index(centres)] == max(s.scores)


def test_one_score_per_k(one_thread):
    s = suggest_k(blobs(4), k_min=3, k_max=9)
    assert isinstance(s, KSuggestion)
    assert s.ks == (3, 4, 5, 6, 7, 8, 9)
    assert len(s.scores) == len(s.ks) and all(np.isfinite(s.scores))
    assert all(-1.0 <= v <= 1.0 for v in s.scores)   # silhouette's range
    assert s.n_samples == 240 and s.seconds > 0


def test_seeded(one_thread):
    X = blobs(4) + np.random.default_rng(5).normal(scale=3.0, size=(240, 8)).astype(np.float32)  # blurred
    a, b = suggest_k(X, k_max=10, seed=3), suggest_k(X, k_max=10, seed=3)
    assert (a.k, a.ks, a.scores) == (b.k, b.ks, b.scores)


def test_subsamples_big_inputs(one_thread):
    s = suggest_k(blobs(4, per=400), k_max=8, max_samples=500)
    assert s.n_samples == 500 and s.k == 4


def test_wide_features_are_reduced_first(one_thread):
    X = np.concatenate([blobs(4), np.zeros((240, 200), np.float32)], axis=1)   # 208 features
    assert suggest_k(X, k_max=8).k == 4


@pytest.mark.parametrize("name", CRITERIA.names())
def test_every_criterion_gives_one_score_per_k(one_thread, name):
    s = suggest_k(blobs(4), k_max=8, criterion=name)
    assert s.criterion.name == name and len(s.scores) == 7
    best = max(s.scores) if s.criterion.higher_is_better else min(s.scores)
    assert s.scores[s.ks.index(s.k)] == best


def test_pickles_for_the_app_cache(one_thread):
    s = suggest_k(blobs(4), k_max=6)
    assert pickle.loads(pickle.dumps(s)) == s
    d = s.to_dict()
    assert d["k"] == 4 and d["ks"] == [2, 3, 4, 5, 6] and d["criterion"]["name"] == "silhouette"


def test_k_max_below_k_min_is_refused():
    with pytest.raises(ParameterError, match=r"k_max \(3\) is smaller than k_min \(5\): choose k_max >= k_min"):
        suggest_k(blobs(4), k_min=5, k_max=3)


def test_k_max_at_or_above_the_sample_count_is_refused():
    with pytest.raises(ParameterError, match=r"k_max=10 needs more points than the 10 samples: choose k_max <= 9"):
        suggest_k(blobs(2, per=5), k_max=10)
    with pytest.raises(ParameterError, match=r"than max_samples=50: choose k_max <= 49 or raise max_samples"):
        suggest_k(blobs(4), k_max=60, max_samples=50)


def test_nan_rows_are_refused_naming_them():
    X = blobs(4)
    X[[3, 17]] = np.nan
    with pytest.raises(ParameterError, match=r"X has 2 rows with NaN or infinite values \(first rows: \[3, 17\]\)"):
        suggest_k(X)


@pytest.mark.parametrize("kwargs, message", [
    ({"k_min": 1}, "k_min must be at least 2"),
    ({"k_max": 2.5}, r"k_max must be an integer \(got 2.5\)"),
    ({"seed": None}, r"seed must be an integer \(got None\)"),
])
def test_bad_parameters_are_refused(kwargs, message):
    with pytest.raises(ParameterError, match=message):
        suggest_k(blobs(4), **kwargs)


def test_bad_arrays_are_refused():
    with pytest.raises(ParameterError, match=r"non-empty 2-D array .* got shape \(240,\)"):
        suggest_k(np.zeros(240))
    with pytest.raises(ParameterError, match="could not be read as numbers"):
        suggest_k([["a", "b"], ["c", "d"]])


def test_unknown_criterion_lists_the_known_ones():
    with pytest.raises(UnknownNameError, match="unknown k criterion 'elbow'; choose one of: silhouette, "):
        suggest_k(blobs(4), criterion="elbow")


def test_the_suggestion_for_a_joined_route_is_made_in_the_joined_space(tmp_path, monkeypatch):
    """suggest_k_for with FeatureConfig.join clusters the same space the run does: every space
    reduced, scaled and side by side (here 2 + 2 PCA dimensions)."""
    import core.cluster.suggest_k as sk
    from core.config import FeatureConfig
    from core.data import open_dataset

    seen = []
    real = sk.suggest_k
    monkeypatch.setattr(sk, "suggest_k", lambda X, **kw: seen.append(X.shape) or real(X, **kw))
    ds = open_dataset("digits", workspace=tmp_path, limit=150)
    joined = FeatureConfig(backbone="pixels", join=("efficientnet_lite0@32",))
    s = sk.suggest_k_for(ds, joined, tmp_path, reduce="pca:2", k_max=6)
    single = sk.suggest_k_for(ds, FeatureConfig(backbone="pixels"), tmp_path, reduce="pca:2", k_max=6)
    assert seen == [(150, 4), (150, 2)]
    assert s.ks == single.ks == (2, 3, 4, 5, 6) and s.scores != single.scores
