"""Review and correct: edits over a real workspace (real SQLite), replayed from the log."""
import numpy as np
import pytest

from core.errors import ParameterError, StaleEditError
from core.review import ReviewSession
from core.store import Store
from tests.review_helpers import make_run


@pytest.fixture
def ws(tmp_path):
    run, ids, labels = make_run(tmp_path / "ws", n=12, k=3)
    store = Store(tmp_path / "ws")
    yield store, run, ids, labels
    store.close()


def test_move_changes_labels_durably_and_fixed_labels_mark_corrections(ws, tmp_path):
    store, run, ids, base = ws
    s = ReviewSession(store, run)
    assert s.version == 0 and (s.current_labels() == base).all()
    v = s.move([ids[0], ids[1]], 2)
    assert v == s.version > 0
    want = base.copy()
    want[[0, 1]] = 2
    assert (s.current_labels() == want).all()
    assert s.fixed_labels().tolist() == [2, 2] + [-1] * 10
    with Store(tmp_path / "ws") as other:            # another connection sees it: committed
        assert (ReviewSession(other, run).current_labels() == want).all()
    assert (store.assignments(run)[0] == base).all()   # the run itself never changes


def test_move_by_row_index_to_new_cluster_and_outliers(ws):
    store, run, ids, base = ws
    s = ReviewSession(store, run)
    new = s.new_cluster_id()
    assert new == 3
    s.move(np.array([4, 5]), new)
    s.mark_outliers([ids[6]])
    lab = s.current_labels()
    assert lab[4] == lab[5] == 3 and lab[6] == -1
    assert 3 in s.clusters() and s.cluster_names()[-1] == "outliers"


def test_undo_redo_round_trip_is_appended_not_destructive(ws):
    store, run, ids, base = ws
    s = ReviewSession(store, run)
    s.move([ids[0]], 1)
    after_first = s.current_labels()
    s.move([ids[0], ids[3]], 2)
    after_second = s.current_labels()
    s.undo()
    assert (s.current_labels() == after_first).all()
    s.undo()
    assert (s.current_labels() == base).all() and not s.can_undo()
    with pytest.raises(ParameterError, match="nothing to undo"):
        s.undo()
    s.redo()
    assert (s.current_labels() == after_first).all()
    s.redo()
    assert (s.current_labels() == after_second).all() and not s.can_redo()
    assert [e["op"] for e in s.log()] == ["move", "move", "undo", "undo", "redo", "redo"]
    # a new edit after an undo clears redo
    s.undo()
    s.move([ids[7]], 0)
    assert not s.can_redo()
    # history keeps undone edits, flagged
    h = s.history(ids[0])
    assert [(r["to_cluster"], r["applied"]) for r in h] == [(1, True), (2, False)]
    # a fresh session replays the same state from the log
    assert (ReviewSession(store, run).current_labels() == s.current_labels()).all()


def test_merge_then_moving_into_the_merged_away_cluster_is_refused(ws):
    store, run, ids, base = ws
    s = ReviewSession(store, run)
    s.merge(0, 1)
    lab = s.current_labels()
    assert set(lab.tolist()) == {0, 2} and (lab[base == 1] == 0).all()
    with pytest.raises(ParameterError, match="no longer exists"):
        s.move([ids[2]], 1)
    with pytest.raises(ParameterError, match="merged away"):
        s.merge(2, 1)
    s.undo()
    assert (s.current_labels() == base).all()
    s.move([ids[2]], 1)                                # exists again after the undo


def test_split_reclusters_only_the_members(tmp_path):
    run, ids, base = make_run(tmp_path / "ws", n=40, k=2)
    rng = np.random.default_rng(0)
    X = rng.normal(0, 0.1, (40, 4)).astype(np.float32)
    members = np.flatnonzero(base == 0)
    X[members[::2], 0] += 10                           # cluster 0 holds two clear blobs
    with Store(tmp_path / "ws") as store:
        s = ReviewSession(store, run)
        s.split(0, 2, X)
        lab = s.current_labels()
        assert (lab[base == 1] == 1).all()              # the other cluster is untouched
        assert set(lab[members].tolist()) == {0, 2}
        assert len(set(lab[members[::2]].tolist())) == 1 and len(set(lab[members[1::2]].tolist())) == 1
        with pytest.raises(ParameterError, match="between 2"):
            s.split(1, 100, X)
        s.undo()
        assert (s.current_labels() == base).all()
        # an undone split leaves no correction behind, so a retrain holds nothing from it
        assert not s.corrected_mask().any() and (s.fixed_labels() < 0).all()
        # split, then merge the new part into the other cluster: that part, and only it, is corrected
        s.split(0, 2, X)
        new = s.log()[-1]["detail"]["new"][0]
        part = np.flatnonzero(s.current_labels() == new)
        s.merge(1, new)
        assert (s.current_labels()[part] == 1).all() and new not in s.clusters()
        assert np.array_equal(np.flatnonzero(s.corrected_mask()), part)
        assert (s.fixed_labels()[part] == 1).all() and (np.delete(s.fixed_labels(), part) < 0).all()


def test_rename_and_undo_rename(ws):
    store, run, ids, base = ws
    s = ReviewSession(store, run)
    s.rename(1, "cats")
    s.rename(1, "dogs")
    assert s.cluster_names()[1] == "dogs"
    s.undo()
    assert s.cluster_names()[1] == "cats"
    s.undo()
    assert s.cluster_names()[1] == "cluster_1"
    with pytest.raises(ParameterError, match="empty"):
        s.rename(1, "  ")
    with pytest.raises(ParameterError, match="does not exist"):
        s.rename(9, "x")


def test_unknown_ids_are_a_clear_error_and_write_nothing(ws):
    store, run, ids, base = ws
    s = ReviewSession(store, run)
    with pytest.raises(ParameterError, match="not in run"):
        s.move(["nope.png", ids[0]], 1)
    with pytest.raises(ParameterError, match="not in run"):
        s.move([99], 1)
    with pytest.raises(ParameterError, match="already there"):
        s.move([ids[0]], 0)
    assert s.log() == []


def test_stale_edit_from_another_tab_is_refused(ws, tmp_path):
    store, run, ids, base = ws
    tab1 = ReviewSession(store, run)
    with Store(tmp_path / "ws") as store2:
        tab2 = ReviewSession(store2, run)
        seen1, seen2 = tab1.version, tab2.version
        tab1.move([ids[0]], 1, expected_version=seen1)
        with pytest.raises(StaleEditError, match="edited elsewhere"):
            tab2.move([ids[0]], 2, expected_version=seen2)
        with pytest.raises(StaleEditError):
            tab2.undo(expected_version=seen2)
        assert len(tab1.log()) == 1 and tab1.current_labels()[0] == 1
        tab2.move([ids[0]], 2, expected_version=tab2.version)   # after reloading, it goes through
        assert tab1.current_labels()[0] == 2


def test_review_queue_doubtful_first_with_outlier_scores_and_unclean_mask(tmp_path):
    conf = np.linspace(1.0, 0.0, 30)                    # sample 29 is the least confident
    run, ids, base = make_run(tmp_path / "ws", n=30, k=2, confidence=conf)
    with Store(tmp_path / "ws") as store:
        s = ReviewSession(store, run)
        q = s.review_queue(order="confidence")
        assert q[0] == 29 and q[-1] == 0 and len(q) == 30
        X = np.random.default_rng(0).normal(0, 1, (30, 3)).astype(np.float32)
        q = s.review_queue(features=X)
        assert sorted(q.tolist()) == list(range(30))
        unclean = np.zeros(30, bool)
        unclean[[2, 5]] = True
        q = s.review_queue(unclean_mask=unclean)
        assert set(q[:2].tolist()) == {2, 5}
        s.move([29], 0 if base[29] else 1)
        assert 29 not in s.review_queue().tolist()        # corrected ones leave the queue
        with pytest.raises(ParameterError, match="unknown review order 'shuffled'; choose one of: doubtful, sample"):
            s.review_queue(order="shuffled")


def test_sample_order_is_a_fixed_shuffle_that_keeps_its_place_as_images_are_corrected(tmp_path):
    run, ids, base = make_run(tmp_path / "ws", n=200, k=4)
    with Store(tmp_path / "ws") as store:
        s = ReviewSession(store, run)
        q = s.review_queue(order="sample")
        assert sorted(q.tolist()) == list(range(200))
        assert q.tolist() == s.review_queue(order="sample").tolist()            # the same on every page load
        assert q.tolist() != list(range(200)) and q.tolist() != s.review_queue(order="confidence").tolist()
        assert q.tolist() != s.review_queue(order="sample", seed=run + 1).tolist()
        # each cluster's share of the first 100 follows its size (four clusters of 50 here)
        assert np.all(np.abs(np.bincount(base[q[:100]], minlength=4) - 25) <= 12)
        moved = q[[0, 5, 7]]
        for r in moved:
            s.move([int(r)], int(base[r] + 1) % 4)
        after = s.review_queue(order="sample")
        assert after.tolist() == [i for i in q.tolist() if i not in set(moved.tolist())]   # the rest keep their order


def test_ruc_run_stores_its_unclean_set_and_the_queue_shows_it_first(tmp_path):
    from core.config import ClusterConfig, DataConfig, FeatureConfig, MapConfig, RunConfig
    from core.pipeline import run_pipeline
    from core.review import unclean_mask

    cfg = RunConfig(data=DataConfig("digits", limit=150), features=FeatureConfig(backbone="pixels"),
                    cluster=ClusterConfig(algo="ruc", k=10, reduce="pca:20",
                                          params={"epochs": 2, "warmup": 1, "batch_size": 64}),
                    map=MapConfig(method="none"), workspace=str(tmp_path))
    res = run_pipeline(cfg)
    assert res.artifacts["unclean"] == f"runs/{res.run_id}/unclean.npy"
    with Store(tmp_path) as store:
        m = unclean_mask(store, res.run_id)
        assert m is not None and m.dtype == bool and m.shape == (150,)
        assert 0 < m.sum() < 150                                   # RUC split the run in two
        assert store.run(res.run_id)["artifacts"]["unclean"] == res.artifacts["unclean"]
        s = ReviewSession(store, res.run_id)
        assert (s.unclean_mask == m).all()
        q = s.review_queue()                                       # no argument: the stored split is used
        n_unclean = int(m.sum())
        assert m[q[:n_unclean]].all() and not m[q[n_unclean:]].any()
        flipped = ~m                                               # an explicit mask still wins
        q2 = s.review_queue(unclean_mask=flipped)
        assert flipped[q2[:int(flipped.sum())]].all()
        # another order, or a run without RUC, ignores it
        assert s.review_queue(order="index").tolist() == list(range(150))
    run, _, _ = make_run(tmp_path / "other")
    with Store(tmp_path / "other") as store:
        assert unclean_mask(store, run) is None and ReviewSession(store, run).unclean_mask is None


def test_progress_counts_reviewed_current_clusters(ws):
    store, run, ids, base = ws
    s = ReviewSession(store, run)
    assert s.progress() == 0.0
    s.mark_reviewed(0)
    s.mark_reviewed(0)
    assert s.progress() == pytest.approx(1 / 3)
    s.merge(0, 1)
    assert s.progress() == pytest.approx(1 / 2)
