"""Retraining with a person's corrections held fixed (issue 6): digits, pixels, a few epochs."""
import shutil

import numpy as np
import pytest

from core import pipeline
from core.config import ClusterConfig, DataConfig, FeatureConfig, MapConfig, RunConfig
from core.errors import ParameterError, WorkspaceError
from core.retrain import retrain
from core.review import ReviewSession
from core.store import Store
from tests.review_helpers import make_run

N = 200
# RUC's guard off: 2 epochs end below the start, which it would keep (tested in tests/cluster)
PARAMS = {"ruc": {"epochs": 2, "warmup": 1, "batch_size": 64, "guard": False},
          "dac": {"epochs": 2, "batch_size": 64, "lr": 1e-2},
          "kmeans": {}}


def _cfg(ws, algo):
    return RunConfig(data=DataConfig("digits", limit=N), features=FeatureConfig(backbone="pixels"),
                     cluster=ClusterConfig(algo=algo, k=10, reduce="pca:20", params=PARAMS[algo]),
                     map=MapConfig(method="pca"), workspace=str(ws))


@pytest.fixture(scope="module")
def base_workspaces(tmp_path_factory):
    """One finished run per algorithm, made once; each test works on a copy."""
    out = {}
    for algo in ("ruc", "dac", "kmeans"):
        ws = tmp_path_factory.mktemp(f"base-{algo}")
        out[algo] = (ws, pipeline.run_pipeline(_cfg(ws, algo)).run_id)
    return out


@pytest.fixture
def workspace(base_workspaces, tmp_path):
    def get(algo):
        src, run_id = base_workspaces[algo]
        dst = tmp_path / algo
        shutil.copytree(src, dst)
        return dst, run_id
    return get


@pytest.fixture
def seen(monkeypatch):
    """The keyword arguments of the latest ``pipeline.cluster`` call (the estimator still runs)."""
    kwargs = {}
    real_cluster = pipeline.cluster

    def spy(*args, **kw):
        kwargs.clear()
        kwargs.update(kw)
        return real_cluster(*args, **kw)

    monkeypatch.setattr(pipeline, "cluster", spy)
    return kwargs


def _correct(store, run_id):
    """A person's review: moves into another cluster and into a new one, outliers, a name."""
    s = ReviewSession(store, run_id)
    labels = s.current_labels()
    biggest = int(np.bincount(labels).argmax())
    others = np.flatnonzero(labels != biggest)[:6]
    s.move(others, biggest)                         # six samples pulled into the biggest cluster
    s.move(np.flatnonzero(labels == biggest)[:3], (new := s.new_cluster_id()))   # a new cluster
    s.mark_outliers(np.flatnonzero(labels != biggest)[10:12])
    s.rename(biggest, "the big one")
    return s, biggest, new


@pytest.mark.parametrize("algo", ["ruc", "dac"])
def test_corrected_samples_keep_their_labels_in_the_new_run(workspace, algo, seen):
    ws, parent = workspace(algo)
    with Store(ws) as store:
        session, biggest, new = _correct(store, parent)
        current, fixed = session.current_labels(), session.fixed_labels()
        parent_labels = store.assignments(parent)[0]
        parent_log = store.edits(parent)
        rel = store.run(parent)["artifacts"].get("start")
        parent_start = None if rel is None else np.load(store.abs(rel))

    messages = []
    more = {"epochs": 10, "warmup": 2} if algo == "ruc" else None   # 2 epochs from scratch scramble RUC
    res = retrain(ws, parent, params=more, progress=lambda stage, f, m: messages.append((stage, m)))

    assert res.run_id != parent and res.parent_run == parent
    held = fixed >= 0
    assert held.sum() >= 8
    assert (res.labels[held] == fixed[held]).all()                 # every correction kept …
    assert (res.confidence[held] == 1.0).all()                     # … and trusted
    assert (res.labels[current < 0] == -1).all()                   # outliers stay outliers
    assert (res.labels == new).sum() >= 3                          # the person's new cluster exists
    assert any(st == "retrain" and "held fixed" in m for st, m in messages)
    # the estimator was steered by the corrections (ids encoded 0..k-1, k = clusters now)
    classes = np.unique(current[current >= 0])
    assert seen["fixed_labels"] is not None and (seen["fixed_labels"] >= 0).sum() == held.sum()
    assert (classes[seen["fixed_labels"][held]] == fixed[held]).all()
    if algo == "ruc":   # RUC refines what the parent's RUC started from, corrections applied
        init = classes[seen["initial_labels"]]
        assert (parent_start != parent_labels).any()               # the start is not RUC's output
        assert init.tolist() == np.where(held, fixed, parent_start).tolist()
        assert any(st == "retrain" and "started from" in m for st, m in messages)
    else:
        assert seen.get("initial_labels") is None

    with Store(ws) as store:
        run = store.run(res.run_id)
        assert run["status"] == "done" and run["algo"] == algo and run["k"] == len(classes)
        assert run["config"]["parent_run"] == parent and run["config"]["retrain"]["n_held"] == held.sum()
        assert store.assignments(res.run_id)[0].tolist() == res.labels.tolist()
        assert store.assignments(parent)[0].tolist() == parent_labels.tolist()     # parent untouched
        assert store.edits(parent) == parent_log
        child = ReviewSession(store, res.run_id)
        assert not child.corrected_mask().any()                    # a fresh run: nothing edited yet
        carried = {int(c): n for c, n in run["config"]["cluster_names"].items()}
        before, after = current == biggest, res.labels == biggest
        overlap = (before & after).sum() / (before | after).sum()
        assert (carried.get(biggest) == "the big one") == (overlap >= 0.5)
        assert child.cluster_names()[biggest] == carried.get(biggest, f"cluster_{biggest}")
        if algo == "ruc":
            assert carried == {biggest: "the big one"}             # RUC keeps ids: the name follows
            assert "unclean" in run["artifacts"]
            assert np.load(store.abs(run["artifacts"]["start"])).tolist() == init.tolist()   # the next retrain's start
            assert run["config"]["retrain"]["refined"] == "start"
        else:
            assert "start" not in run["artifacts"]


def test_a_ruc_run_keeps_the_labels_it_started_from(tmp_path, monkeypatch):
    fits = []
    real_cluster = pipeline.cluster

    def spy(*args, **kwargs):
        est, X = real_cluster(*args, **kwargs)
        fits.append(est)
        return est, X

    monkeypatch.setattr(pipeline, "cluster", spy)
    res = pipeline.run_pipeline(_cfg(tmp_path, "ruc"))
    with Store(tmp_path) as store:
        start = np.load(store.abs(store.run(res.run_id)["artifacts"]["start"]))
    assert start.dtype == np.int64 and start.tolist() == fits[0].initial_labels_.tolist()
    assert 0 < (start != res.labels).sum() < N                     # RUC moved some of them, not all


def test_retraining_ruc_without_corrections_gives_back_the_same_run(workspace):
    """RUC again on its own output drifts (Fashion-MNIST loses 2 points); from the same start with
    the same seed it is the same run."""
    ws, parent = workspace("ruc")
    with Store(ws) as store:
        parent_labels = store.assignments(parent)[0]
    messages = []
    res = retrain(ws, parent, progress=lambda st, f, m: messages.append(m))
    assert res.labels.tolist() == parent_labels.tolist()
    assert any(f"gives run {parent} again; pass another seed" in m for m in messages)
    other = retrain(ws, parent, seed=7, progress=lambda st, f, m: messages.append(m))
    assert other.labels.tolist() != parent_labels.tolist()
    assert sum("pass another seed" in m for m in messages) == 1


def test_retraining_ruc_maps_merged_start_clusters_and_falls_back_without_a_start(workspace, seen):
    ws, parent = workspace("ruc")
    with Store(ws) as store:
        s = ReviewSession(store, parent)
        labels = s.current_labels()
        a, b = (int(c) for c in np.argsort(-np.bincount(labels))[:2])
        s.merge(a, b)                                              # cluster b is gone
        current, fixed = s.current_labels(), s.fixed_labels()
        run = store.run(parent)
        start_file = store.abs(run["artifacts"]["start"])
        start = np.load(start_file)
    assert (start == b).any() and not (current == b).any()
    retrain(ws, parent, params={"epochs": 2, "warmup": 1})
    classes = np.unique(current)
    init = classes[seen["initial_labels"]]
    # members of the merged-away cluster that a person did not touch start where b's members are now
    expect = np.where(fixed >= 0, fixed, np.where(start == b, a, start))
    assert init.tolist() == expect.tolist() and not (init == b).any()

    asked = retrain(ws, parent, params={"epochs": 2, "warmup": 1}, refine="current")
    assert classes[seen["initial_labels"]].tolist() == current.tolist()   # asked for its current labels
    with Store(ws) as store:
        assert store.run(asked.run_id)["config"]["retrain"]["refined"] == "current"

    start_file.unlink()                                            # an older RUC run: no start saved
    messages = []
    res = retrain(ws, parent, params={"epochs": 2, "warmup": 1}, progress=lambda st, f, m: messages.append(m))
    assert classes[seen["initial_labels"]].tolist() == current.tolist()   # its current labels instead
    assert not any("started from" in m for m in messages)
    assert any("no usable saved RUC start" in m and "refines its current labels" in m for m in messages)
    with Store(ws) as store:
        assert store.run(res.run_id)["config"]["retrain"]["refined"] == "current"
    with pytest.raises(ParameterError, match=r"unknown refine 'output'; choose one of: start, current"):
        retrain(ws, parent, refine="output")


def test_no_corrections_says_so_and_still_runs_ruc_from_a_kmeans_run(workspace):
    ws, parent = workspace("kmeans")
    messages = []
    res = retrain(ws, parent, params={"epochs": 2, "warmup": 1},
                  progress=lambda stage, f, m: messages.append((stage, m)))
    assert any(st == "retrain" and "no corrections" in m for st, m in messages)
    with Store(ws) as store:
        run = store.run(res.run_id)
        assert run["algo"] == "ruc" and run["config"]["parent_run"] == parent   # default for k-means: RUC
        assert run["config"]["cluster"]["params"] == {"epochs": 2, "warmup": 1}  # k-means params not carried
    assert res.labels.shape == (N,) and res.scores["acc"] > 0.3


def test_a_chain_of_retrains_keeps_earlier_corrections(workspace):
    ws, parent = workspace("ruc")
    with Store(ws) as store:
        session, biggest, new = _correct(store, parent)
        fixed1 = session.fixed_labels()
    first = retrain(ws, parent, params={"epochs": 10, "warmup": 2})
    with Store(ws) as store:                 # review the retrained run: one more move
        s2 = ReviewSession(store, first.run_id)
        target = int(np.flatnonzero(s2.current_labels() >= 0)[-1])
        to = next(c for c in s2.clusters() if c != s2.current_labels()[target])
        s2.move([target], to)
        fixed2 = s2.fixed_labels()
    messages = []
    second = retrain(ws, first.run_id, algo="dac", params={"epochs": 2, "batch_size": 64},
                     progress=lambda stage, f, m: messages.append(m))
    held = np.where(fixed2 >= 0, fixed2, fixed1)
    held[target] = to
    assert ((held >= 0).sum()) > (fixed2 >= 0).sum()
    assert (second.labels[held >= 0] == held[held >= 0]).all()
    assert any("from earlier runs" in m for m in messages)


def test_refusals_are_clear_and_record_nothing(workspace, tmp_path):
    ws, parent = workspace("kmeans")
    with pytest.raises(ParameterError, match=r"cannot retrain with 'kmeans'.*choose one of: dac, ruc"):
        retrain(ws, parent, algo="kmeans")
    with pytest.raises(ParameterError, match="split or merge clusters in the review"):
        retrain(ws, parent, params={"n_clusters": 4})
    with pytest.raises(WorkspaceError, match="there is no run 99"):
        retrain(ws, 99)
    with pytest.raises(WorkspaceError, match="no ClusterLens workspace"):
        retrain(tmp_path / "nowhere", 1)
    assert not (tmp_path / "nowhere").exists()
    with Store(ws) as store:
        assert [r["id"] for r in store.runs()] == [parent]
    bare = tmp_path / "bare"
    run, _, _ = make_run(bare)                          # a run recorded without a RunConfig
    with pytest.raises(ParameterError, match="no stored configuration"):
        retrain(bare, run)
