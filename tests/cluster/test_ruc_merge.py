"""RUC's overcluster option: kNN connectivity, the merge plan, and RUC merging back to k."""
import numpy as np
import pytest

from core.cluster.registry import make_clusterer
from core.cluster.ruc import RUC
from core.cluster.ruc_merge import connectivity, merge_plan
from core.errors import ParameterError
from core.metrics import external_scores

FAST = dict(epochs=6, warmup=2, batch_size=64, hidden=64, device="cpu", strategy="hybrid", balance="uniform")


pytestmark = pytest.mark.usefixtures("one_thread")   # tests/cluster/conftest.py


# four clusters of two samples; each row: the sample's two neighbours
LABELS = np.array([0, 0, 1, 1, 2, 2, 3, 3])
NEIGHBORS = np.array([
    [1, 2],   # 0 -> 0, 1
    [0, 1],   # 0 -> 0, 0 (itself twice does not matter here: only labels are counted)
    [3, 6],   # 1 -> 1, 3
    [2, 7],   # 1 -> 1, 3
    [5, 4],   # 2 -> 2, 2
    [0, 1],   # 2 -> 0, 0
    [7, 2],   # 3 -> 3, 1
    [6, 3],   # 3 -> 3, 1
])


def test_connectivity_is_the_shared_share_of_neighbourhoods():
    c = connectivity(NEIGHBORS, LABELS, 4)
    # cluster 1 sends 2 of its 4 edges to 3, cluster 3 sends 2 of 4 to 1: 0.5 + 0.5
    assert c[1, 3] == c[3, 1] == 1.0
    # 0 sends 1 of 4 to 1 (1 sends none back); 2 sends 2 of 4 to 0; 2 and 3 never meet
    assert c[0, 1] == 0.25 and c[0, 2] == 0.5 and c[2, 3] == 0.0
    assert np.allclose(np.diag(c), 0.0) and np.allclose(c, c.T)


def test_merge_plan_joins_the_most_connected_pairs_first():
    np.testing.assert_array_equal(merge_plan(NEIGHBORS, LABELS, 4, 3), [0, 1, 2, 1])
    # then, recomputed: 0-2 (0.5) before 0-(1+3) (0.25)
    np.testing.assert_array_equal(merge_plan(NEIGHBORS, LABELS, 4, 2), [0, 1, 0, 1])
    # an empty cluster is neither counted nor merged
    np.testing.assert_array_equal(merge_plan(NEIGHBORS, LABELS, 5, 3), [0, 1, 2, 1, 4])


def test_a_persons_clusters_keep_their_ids_and_are_never_joined():
    apart = np.array([False, True, False, True])    # a person put samples in clusters 1 and 3
    plan = merge_plan(NEIGHBORS, LABELS, 4, 3, keep_apart=apart)
    assert plan[1] == 1 and plan[3] == 3            # the most connected pair stays apart
    np.testing.assert_array_equal(plan, [0, 1, 0, 3])
    apart = np.array([False, False, False, True])   # a merge into a corrected cluster keeps its id
    np.testing.assert_array_equal(merge_plan(NEIGHBORS, LABELS, 4, 3, keep_apart=apart), [0, 3, 2, 3])
    # only corrected clusters left to join: merging stops above the target
    everyone = np.ones(4, bool)
    np.testing.assert_array_equal(merge_plan(NEIGHBORS, LABELS, 4, 2, keep_apart=everyone), [0, 1, 2, 3])


def _bar_and_blobs(seed):
    """Class 0 is a long bar (two groups for k-means), class 1 a blob just past its right end,
    class 2 a blob above: k-means with k = 3 cuts the bar and joins its right end to class 1."""
    rng = np.random.default_rng(seed)
    bar = np.c_[rng.uniform(0, 16, 160), rng.normal(0, 0.4, 160)]
    right = rng.normal((19.5, 0), 0.6, (160, 2))
    top = rng.normal((8, 10), 0.8, (160, 2))
    return np.r_[bar, right, top].astype(np.float32), np.repeat([0, 1, 2], 160)


@pytest.mark.parametrize("seed", [0, 1])
def test_overcluster_repairs_a_class_that_is_two_groups(seed):
    X, y = _bar_and_blobs(seed)
    start = make_clusterer("kmeans", n_clusters=3, random_state=seed).fit(X).labels_
    assert external_scores(y, start)["acc"] < 0.95                     # k-means cuts the bar
    plain = RUC(n_clusters=3, random_state=seed, **FAST).fit(X)
    assert external_scores(y, plain.labels_)["acc"] < 0.97               # RUC alone keeps the cut
    m = RUC(n_clusters=3, overcluster=1, random_state=seed, **FAST).fit(X)
    assert len(np.unique(m.initial_labels_)) == 4                         # it started from k + 1
    assert external_scores(y, m.labels_)["acc"] >= 0.99
    kept = np.unique(m.labels_)
    assert len(kept) == 3 and set(kept) <= set(np.unique(m.initial_labels_))
    np.testing.assert_array_equal(m.classes_, kept)
    assert m.probabilities_.shape == (len(y), 3)
    np.testing.assert_allclose(m.probabilities_.sum(1), 1.0, atol=1e-5)   # merged columns summed
    pred = m.predict(X)                                                   # merged the same way
    assert set(np.unique(pred)) <= set(kept) and (pred == m.labels_).mean() >= 0.95
    assert (m.confidence_ > 1 / 3).all()


def test_overcluster_with_given_labels_and_a_persons_corrections():
    X, y = _bar_and_blobs(0)
    start = make_clusterer("kmeans", n_clusters=4, random_state=0).fit(X).labels_
    fixed = np.full(len(y), -1)
    fixed[:3] = 7                                      # a person's cluster id, kept as given
    m = RUC(n_clusters=3, overcluster=1, random_state=0, **FAST)
    with pytest.raises(ParameterError, match="at most 4: raise overcluster"):
        m.fit(X, initial_labels=start, fixed_labels=fixed)   # 5 ids in all
    fixed[:3] = start[:3]
    m.fit(X, initial_labels=start, fixed_labels=fixed)
    assert len(np.unique(m.labels_)) == 3
    np.testing.assert_array_equal(m.labels_[:3], start[:3])


@pytest.mark.parametrize("kwargs, match", [
    (dict(overcluster=1), "overcluster needs n_clusters"),
    (dict(n_clusters=3, overcluster=-1), "overcluster must be a whole number >= 0, got -1"),
    (dict(n_clusters=3, overcluster=0.5), "overcluster must be a whole number >= 0, got 0.5"),
])
def test_bad_overcluster(kwargs, match):
    X, y = _bar_and_blobs(0)
    with pytest.raises(ParameterError, match=match):
        RUC(**{**FAST, **kwargs}).fit(X, initial_labels=y)
