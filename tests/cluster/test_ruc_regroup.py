"""RUC's regroup option: kNN modularity, group moves, and RUC training again after them."""
import numpy as np
import pytest

from core.cluster.registry import make_clusterer
from core.cluster.ruc import RUC
from core.cluster.ruc_regroup import modularity, regroup
from core.cluster.ruc_select import knn_indices
from core.errors import ParameterError
from core.metrics import external_scores

FAST = dict(epochs=6, warmup=2, batch_size=64, hidden=64, device="cpu", strategy="hybrid", balance="start")


pytestmark = pytest.mark.usefixtures("one_thread")   # tests/cluster/conftest.py


def test_modularity_of_two_pairs_worked_out_by_hand():
    # samples 0-1 are each other's neighbour, so are 2-3: half the edge weight inside each pair
    neighbors = np.array([[1], [0], [3], [2]])
    assert modularity(neighbors, np.array([0, 0, 1, 1]), 2) == pytest.approx(0.5)    # 1 - 2 * 0.5^2
    assert modularity(neighbors, np.array([0, 1, 0, 1]), 2) == pytest.approx(-0.5)   # no edge inside
    assert modularity(neighbors, np.array([0, 0, 0, 0]), 1) == pytest.approx(0.0)


def _hook(seed, bridge=40, reach=2.7, width=0.05):
    """Class 0 is a blob, a thin bridge and a small blob at the bridge's far end ("a class that
    is two groups"); class 1 is a bigger blob just above that far end, class 2 a blob far away.
    k-means with k = 3 puts the far end with class 1; it is joined to class 0 only by the bridge
    (``bridge`` samples from x = 0.8 to ``reach``, ``width`` thick: more make a stronger tie)."""
    rng = np.random.default_rng(seed)
    blob = rng.normal((0, 0), 0.5, (100, 2))
    line = np.c_[np.linspace(0.8, reach, bridge), rng.normal(0, width, bridge)]
    end = rng.normal((3, 0), 0.3, (50, 2))
    above = rng.normal((3.3, 2.1), 0.4, (200, 2))
    far = rng.normal((-3, 3), 0.5, (150, 2))
    X = np.r_[blob, line, end, above, far].astype(np.float32)
    return X, np.repeat([0, 0, 0, 1, 2], [100, bridge, 50, 200, 150])


def _wide_hook(seed):
    """The same with a wider, denser bridge: the far end's tie to class 0 is stronger."""
    return _hook(seed, bridge=60, reach=2.8, width=0.06)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_regroup_moves_the_far_group_to_the_cluster_it_is_linked_to(seed):
    X, y = _hook(seed)
    start = make_clusterer("kmeans", n_clusters=3, random_state=seed).fit(X).labels_
    assert external_scores(y, start)["acc"] < 0.91                 # k-means puts the far end with class 1
    graph = knn_indices(X, 10)
    # the thin bridge is a weak tie (link 0.02 to 0.07): below the default min_link, nothing moves
    same, none = regroup(X, graph, start, 3, min_group=5)
    assert none == [] and (same == start).all()
    moved, moves = regroup(X, graph, start, 3, min_group=5, min_link=0.02)
    assert external_scores(y, moved)["acc"] >= 0.99
    assert len(moves) == 1
    mv = moves[0]
    end = np.arange(140, 190)   # the far end's samples
    assert mv["source"] == np.bincount(start[end]).argmax()          # from the cluster holding the far end
    assert mv["target"] == np.bincount(start[:100]).argmax()         # to class 0's cluster
    assert 50 <= mv["size"] <= 80 and mv["cut"] < 0.05 and mv["link"] > mv["cut"]
    assert mv["modularity"] == pytest.approx(modularity(graph, moved, 3), abs=1e-4)
    assert mv["modularity"] > modularity(graph, start, 3)
    # nothing to gain on the right labels: no move
    again, none = regroup(X, graph, moved, 3, min_group=5, min_link=0.02)
    assert none == [] and (again == moved).all()


def test_small_groups_and_a_persons_samples_stay():
    X, y = _hook(0)
    start = make_clusterer("kmeans", n_clusters=3, random_state=0).fit(X).labels_
    graph = knn_indices(X, 10)
    same, moves = regroup(X, graph, start, 3, min_group=120, min_link=0.02)   # the far end: ~60 samples
    assert moves == [] and (same == start).all()
    # a person confirmed some of the far end where k-means put it: those never move, and the rest,
    # tied to them, is no longer a group apart (one confirmed sample is not enough: see below)
    for confirmed in (slice(150, 190), slice(150, 155)):
        frozen = np.zeros(len(y), bool)
        frozen[confirmed] = True
        moved, moves = regroup(X, graph, start, 3, min_group=5, min_link=0.02, frozen=frozen)
        assert moves == [] and (moved == start).all()


@pytest.mark.parametrize("kwargs, match", [
    (dict(min_group=0), "min_group must be at least 1, got 0"),
    (dict(min_group=5, max_cut=0.0), r"max_cut must be in \(0, 1\], got 0.0"),
    (dict(min_group=5, min_link=-1), r"min_link must be in \[0, 2\], got -1"),
])
def test_bad_regroup_arguments(kwargs, match):
    X, y = _hook(0)
    with pytest.raises(ParameterError, match=match):
        regroup(X, knn_indices(X, 10), y, 3, **kwargs)


@pytest.mark.parametrize("seed", [0, 5])
def test_ruc_with_regroup_repairs_what_ruc_alone_keeps(seed):
    """A wider bridge: after RUC the far end's tie to class 0 reaches min_link on these seeds
    (on others, e.g. 1 and 4, it stays below and RUC's result is kept unchanged)."""
    X, y = _wide_hook(seed)
    start = make_clusterer("kmeans", n_clusters=3, random_state=seed).fit(X).labels_
    # guard off: this is about what RUC's training does, not about keeping the start
    plain = RUC(n_clusters=3, random_state=seed, guard=False, **FAST).fit(X, initial_labels=start)
    assert external_scores(y, plain.labels_)["acc"] < 0.91             # a whole group is no label noise
    assert plain.regroup_moves_ == [] and len(plain.history_) == FAST["epochs"]
    m = RUC(n_clusters=3, regroup=True, random_state=seed, **FAST).fit(X, initial_labels=start, eval_labels=y)
    assert external_scores(y, m.labels_)["acc"] >= 0.99
    assert len(m.regroup_moves_) >= 1 and m.regroup_moves_[0]["size"] >= 50
    # trained again after the move: the history runs on, and the last record is the result
    assert [h["epoch"] for h in m.history_] == list(range(1, 2 * FAST["epochs"] + 1))
    assert m.history_[-1]["acc"] == pytest.approx(external_scores(y, m.labels_)["acc"])
    said = [h["epoch"] for h in m.history_ if "regrouped" in h]    # the CLI prints it
    assert said == [FAST["epochs"] + 1]
    assert m.history_[FAST["epochs"]]["regrouped"] == sum(mv["size"] for mv in m.regroup_moves_)
    assert m.probabilities_.shape == (len(y), 3)
    assert (m.predict(X) == m.labels_).mean() >= 0.95
    np.testing.assert_array_equal(m.initial_labels_, start)            # the start is still the given one


def test_regroup_keeps_a_persons_corrections_and_a_stop_skips_it():
    X, y = _wide_hook(5)
    start = make_clusterer("kmeans", n_clusters=3, random_state=5).fit(X).labels_
    fixed = np.full(len(y), -1)
    fixed[[0, 170, 400]] = start[[0, 170, 400]]      # one of them in the far end, kept where it was put
    m = RUC(n_clusters=3, regroup=True, random_state=5, **FAST).fit(X, initial_labels=start, fixed_labels=fixed)
    assert len(m.regroup_moves_) == 1 and external_scores(y, m.labels_)["acc"] >= 0.99
    assert (m.labels_[[0, 170, 400]] == start[[0, 170, 400]]).all()
    assert (m.labels_[160:210] == start[170]).sum() == 1   # the far end moved, but for the one corrected
    stopped = RUC(n_clusters=3, regroup=True, random_state=5, **FAST).fit(
        X, initial_labels=start, callback=lambda rec: rec["epoch"] < 3)
    assert stopped.regroup_moves_ == [] and len(stopped.history_) == 3


@pytest.mark.parametrize("kwargs, match", [
    (dict(regroup="yes"), "regroup must be true or false, got 'yes'"),
    (dict(n_clusters=3, overcluster=1, regroup=True), "regroup and overcluster cannot be combined"),
])
def test_bad_regroup(kwargs, match):
    X, y = _hook(0)
    with pytest.raises(ParameterError, match=match):
        RUC(**{**FAST, **kwargs}).fit(X, initial_labels=y)
