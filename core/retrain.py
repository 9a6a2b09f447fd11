"""Retrain a run with a person's corrections held fixed (issue 6: corrections feed back into DAC / RUC).

``retrain(workspace, run_id)`` reads the run's stored config, opens the same dataset and cached
features, and runs DAC or RUC again with the corrections as ``fixed_labels``. The result is a new
run (its config says ``"parent_run": run_id``); the parent and its edit log are left untouched.

What is held, and how:

- every sample a person corrected (in this run, or in the run it was retrained from, and so on up
  the chain) keeps its corrected label in the new run — the estimators are steered by them and
  the result is made to agree exactly afterwards (confidence 1.0);
- samples marked as outliers stay outliers (-1) in the new run; for training they start where
  the run's RUC started them or, without that, in the nearest current cluster (centroid in the
  clustering space), and are not held;
- ``refine="start"`` (default): RUC refines, with the corrections applied, the labels the run's
  RUC started from (saved with every RUC run as ``start.npy``; clusters merged away since in the
  review are mapped to where their members are now), not RUC's own output, which RUC again drifts from
  (Fashion-MNIST, 1,000 doubtful tiles reviewed: 0.817 from the output, 0.829 from the start;
  none: 0.761 -> 0.742, and the same run; bench/RESULTS.md, "The correction loop"). Runs without
  a start (k-means, DAC, older RUC runs) are refined from their current labels (run labels +
  corrections), not a fresh k-means.
  ``refine="current"``: RUC refines the run's current labels, RUC's output included. On the digits
  run (images variant) that did better: 200 doubtful tiles reviewed gave 0.964 from the output
  against 0.927 from the start, 200 random tiles 0.969 against 0.967;
- k is the number of clusters the reviewed run has now (a split adds, a merge removes);
- cluster ids keep their meaning (DAC's clusters are matched to the current ones), and a cluster
  name is carried over where the new cluster is mostly the old one (Jaccard overlap >= 0.5).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from core.config import RETRAIN_REFINE as REFINE
from core.config import ClusterConfig, DataConfig, FeatureConfig, MapConfig, RunConfig, validate
from core.errors import DataError, ParameterError, WorkspaceError
from core.pipeline import (
    Progress,
    RunResult,
    ShouldStop,
    joined_space,
    prepare_inputs,
    record_run,
)
from core.review import ReviewSession
from core.store import DB_NAME, Store

ALGOS = ("dac", "ruc")
NAME_OVERLAP = 0.5        # least Jaccard overlap for a cluster name to carry over
_MAX_CHAIN = 100          # runs retrained from runs retrained from …: a guard against cycles


def retrain(workspace: str | Path, run_id: int, *, algo: str | None = None, params: dict | None = None,
            seed: int | None = None, refine: str = "start", progress: Progress | None = None,
            should_stop: ShouldStop | None = None) -> RunResult:
    """Train DAC or RUC again with run ``run_id``'s corrections held fixed; record a new run.

    algo: "dac" | "ruc"; default the run's own algorithm when it is one of those, else "ruc".
    params: algorithm options, over the parent's when the algorithm is the same (e.g.
    ``{"epochs": 5}``). seed: default the parent's seed. refine (RUC): "start" = the labels the
    run's RUC started from, "current" = the run's current labels, corrections applied to either
    (see the module docstring). progress / should_stop: as for
    :func:`core.pipeline.run_pipeline`. Returns the new run's :class:`~core.pipeline.RunResult`
    (``result.run_id``); its stored config has ``"parent_run": run_id``.
    """
    if refine not in REFINE:
        raise ParameterError(f"unknown refine {refine!r}; choose one of: {', '.join(REFINE)} (what RUC starts from: "
                             "the labels the run's RUC started from, or the run's current labels)")
    say = progress or (lambda stage, frac, msg: None)
    stop = should_stop or (lambda: False)
    ws = Path(workspace)
    if not (ws / DB_NAME).is_file():
        raise WorkspaceError(f"there is no ClusterLens workspace at {ws} (no {DB_NAME}); "
                             "point --workspace at the folder holding the run")
    store = Store(ws)
    try:
        parent = store.run(int(run_id))
        session = ReviewSession(store, int(run_id))
        base = _config_from_dict(parent.get("config"), int(run_id))
        chosen = _choose_algo(algo, parent["algo"])

        current = session.current_labels()
        touched = session.corrected_mask()
        inherited = _inherited_held(store, session)
        held = np.where(touched, np.where(current >= 0, current, -1), inherited)
        outlier = current < 0
        classes = np.unique(current[current >= 0])
        if len(classes) < 2:
            raise ParameterError(
                f"run {run_id} has {len(classes)} cluster(s) left after its corrections; {chosen} needs at "
                "least 2: undo a merge or move some samples to a new cluster first")
        held[(held >= 0) & ~np.isin(held, classes)] = -1    # defensive: only ids that exist now

        if params and "n_clusters" in params:
            raise ParameterError(
                f"a retrained run has as many clusters as run {run_id} has now ({len(classes)}); to change "
                "that, split or merge clusters in the review instead of passing n_clusters")
        cluster_params = dict(base.cluster.params) if chosen == base.cluster.algo else {}
        cluster_params.pop("n_clusters", None)
        cluster_params.update(params or {})
        cfg = dataclasses.replace(
            base, workspace=str(ws),
            cluster=dataclasses.replace(base.cluster, algo=chosen, k=int(len(classes)),
                                        seed=base.cluster.seed if seed is None else int(seed),
                                        params=cluster_params))
        validate(cfg)

        n_corr, n_inh, n_out = int(touched.sum()), int(((inherited >= 0) & ~touched).sum()), int(outlier.sum())
        if n_corr == 0 and n_inh == 0 and n_out == 0:
            say("retrain", 0.0, f"run {run_id} has no corrections: retraining {chosen} without fixed labels "
                                "(nothing is held; correct some samples first to steer it)")
        else:
            parts = [f"{int((held >= 0).sum())} corrected sample(s) held fixed"]
            if n_inh:
                parts.append(f"{n_inh} of them from earlier runs")
            if n_out:
                parts.append(f"{n_out} outlier(s) kept out")
            say("retrain", 0.0, f"retraining run {run_id} with {chosen}, k={len(classes)}: " + ", ".join(parts))
        if n_corr == 0 and (n_inh or n_out):
            say("retrain", 0.0, f"run {run_id} itself has no new corrections")

        seconds: dict[str, float] = {}
        inputs = prepare_inputs(cfg, store, say, stop, seconds)
        if list(inputs.dataset.ids) != list(session.ids):
            raise DataError(
                f"the dataset {cfg.data.source} changed since run {run_id} ({len(inputs.dataset.ids)} images now, "
                f"{len(session.ids)} then, or different files), so its corrections cannot be matched to the "
                "images; start a new run instead")

        enc = np.full(int(classes.max()) + 1, -1, dtype=np.int64)
        enc[classes] = np.arange(len(classes))
        cur_enc = np.where(current >= 0, enc[np.maximum(current, 0)], -1)
        held_enc = np.where(held >= 0, enc[np.maximum(held, 0)], -1)

        initial = start_labels = refined = None
        if chosen == "ruc":
            start = None
            if refine == "start":
                raw_start = _parent_start(store, parent)
                start = _refinable_start(raw_start, current, held, classes)
                if start is None and parent["algo"] == "ruc":
                    say("retrain", 0.0, f"run {run_id} has no usable saved RUC start (made by an older version, or "
                                        "the file is gone): RUC refines its current labels")
            refined = "start" if start is not None else "current"
            if start is not None:
                initial = np.where(held_enc >= 0, held_enc, enc[start])
                say("retrain", 0.0, f"RUC refines what run {run_id}'s RUC started from, with the corrections "
                                    "applied (not its own output, which RUC again would drift from)")
                gone = np.setdiff1d(np.unique(raw_start), classes)
                if len(gone):   # merged in the review
                    say("retrain", 0.0, f"run {run_id}'s RUC started from {len(np.unique(raw_start))} clusters; "
                                        f"cluster(s) {', '.join(map(str, gone))} merged away since, so their "
                                        "members start in the cluster most of them are in now")
                elif not (held >= 0).any() and not outlier.any() and cfg.cluster == base.cluster:
                    say("retrain", 0.0, f"with nothing held and run {run_id}'s settings and seed this gives "
                                        f"run {run_id} again; pass another seed for another draw")
            else:
                space = joined_space(inputs.dataset, inputs.features, inputs.feature_key, cfg.features,
                                     cfg.cluster, store.root)
                initial = _fill_outliers(cur_enc, np.asarray(space, dtype=np.float64), len(classes))
            start_labels = classes[initial]

        names = session.named_clusters()

        def finish(labels: np.ndarray, confidence: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
            lab = np.asarray(labels, dtype=np.int64)
            if lab.min() < 0 or lab.max() >= len(classes):
                raise ParameterError(f"{chosen} returned cluster ids outside 0..{len(classes) - 1}")
            lab = _align(lab, cur_enc, held_enc, len(classes))
            fixed = held_enc >= 0
            lab[fixed] = held_enc[fixed]
            conf = np.asarray(confidence, dtype=np.float32).copy()
            conf[fixed] = 1.0
            out = classes[lab]
            out[outlier] = -1
            carried = _carry_names(names, current, out)
            if names:
                dropped = sorted(set(names) - set(carried))
                say("retrain", 1.0, f"cluster names carried over: {len(carried)} of {len(names)}"
                    + (f" (clusters {dropped} changed too much to keep theirs)" if dropped else ""))
            return out, conf, {"cluster_names": {str(c): n for c, n in carried.items()}}

        map_2d = _parent_map(store, parent, inputs.feature_set_id, cfg.map)
        extra = {"parent_run": int(run_id),
                 "retrain": {"n_held": int((held >= 0).sum()), "n_corrections": n_corr,
                             "n_inherited": n_inh, "n_outliers": n_out, "refined": refined}}
        return record_run(cfg, store, inputs, say, stop, seconds, config_extra=extra,
                          fixed_labels=held_enc, initial_labels=initial, finish=finish, map_2d=map_2d,
                          start_labels=start_labels)
    finally:
        store.close()


# -- helpers --------------------------------------------------------------------------------

def _choose_algo(algo: str | None, parent_algo: str) -> str:
    if algo is None:
        return parent_algo if parent_algo in ALGOS else "ruc"
    if algo not in ALGOS:
        raise ParameterError(f"cannot retrain with {algo!r}: only {', '.join(ALGOS)} take corrections; "
                             f"choose one of: {', '.join(ALGOS)}")
    return algo


def _config_from_dict(d: dict[str, Any] | None, run_id: int) -> RunConfig:
    """The RunConfig a run was recorded with (unknown keys, e.g. ``parent_run``, ignored)."""
    if not d or not isinstance(d.get("data"), dict) or not d["data"].get("source"):
        raise ParameterError(f"run {run_id} has no stored configuration (it was not made by `python -m core run` "
                             "or the app), so it cannot be retrained; start a new run instead")

    def make(cls: type, sub: Any) -> Any:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in (sub or {}).items() if k in names})

    return RunConfig(data=make(DataConfig, d["data"]), features=make(FeatureConfig, d.get("features")),
                     cluster=make(ClusterConfig, d.get("cluster")), map=make(MapConfig, d.get("map")),
                     workspace=str(d.get("workspace") or ""))


def _inherited_held(store: Store, session: ReviewSession, depth: int = 0) -> np.ndarray:
    """Labels held in the run ``session`` was retrained from (and its parents): (N,), -1 = none.

    A run's own corrections override what it inherited; a parent that is gone or has other
    samples contributes nothing."""
    n = len(session.ids)
    parent = session.parent_run
    if parent is None or depth >= _MAX_CHAIN:
        return np.full(n, -1, dtype=np.int64)
    try:
        ps = ReviewSession(store, int(parent))
    except (ParameterError, WorkspaceError):
        return np.full(n, -1, dtype=np.int64)
    if ps.ids != session.ids:
        return np.full(n, -1, dtype=np.int64)
    cur, touched = ps.current_labels(), ps.corrected_mask()
    return np.where(touched, np.where(cur >= 0, cur, -1), _inherited_held(store, ps, depth + 1)).astype(np.int64)


def _parent_start(store: Store, parent: dict[str, Any]) -> np.ndarray | None:
    """The labels the parent's RUC started from (its ``start`` artifact), or None."""
    rel = (parent.get("artifacts") or {}).get("start")
    if not rel:
        return None
    try:
        return np.asarray(np.load(store.abs(rel), allow_pickle=False), dtype=np.int64).reshape(-1)
    except (OSError, ValueError):
        return None


def _refinable_start(start: np.ndarray | None, current: np.ndarray, held: np.ndarray,
                     classes: np.ndarray) -> np.ndarray | None:
    """``start`` in today's cluster ids, or None when it cannot stand in for the current labels.

    A start cluster that no longer exists (merged away in the review) goes to the cluster most of
    its members are in now. None when the shapes differ, a start id is negative, or a cluster of
    today (held samples included) would have no member to start from."""
    if start is None or start.shape != current.shape or (start < 0).any():
        return None
    out = start.copy()
    for s in np.unique(start):
        if s in classes:
            continue
        members = (start == s) & (current >= 0)
        if not members.any():
            return None
        out[start == s] = np.bincount(current[members]).argmax()
    present = np.union1d(np.unique(out), np.unique(held[held >= 0]))
    return out if np.isin(classes, present).all() else None


def _fill_outliers(labels: np.ndarray, X: np.ndarray, k: int) -> np.ndarray:
    """RUC needs a starting cluster for every sample: outliers (-1) get the nearest centroid."""
    out = labels.copy()
    miss = out < 0
    if not miss.any():
        return out
    X = X.reshape(len(X), -1)
    cent = np.stack([X[out == c].mean(0) if (out == c).any() else np.full(X.shape[1], np.inf)
                     for c in range(k)])
    d = ((X[miss, None, :] - cent[None]) ** 2).sum(-1)
    out[miss] = np.nan_to_num(d, nan=np.inf, posinf=np.inf).argmin(1)
    return out


def _align(labels: np.ndarray, current: np.ndarray, held: np.ndarray, k: int) -> np.ndarray:
    """Renumber the new clusters so that ids mean what they meant in the reviewed run:
    one-to-one matching on shared members, held samples weighing more than all others together."""
    keep = current >= 0
    counts = np.zeros((k, k), dtype=np.float64)
    np.add.at(counts, (labels[keep], current[keep]), 1.0)
    fixed = held >= 0
    np.add.at(counts, (labels[fixed], held[fixed]), float(len(labels) + 1))
    rows, cols = linear_sum_assignment(-counts)
    mapping = np.arange(k)
    mapping[rows] = cols
    return mapping[labels]


def _carry_names(names: dict[int, str], before: np.ndarray, after: np.ndarray) -> dict[int, str]:
    out = {}
    for c, name in names.items():
        a, b = before == c, after == c
        union = int((a | b).sum())
        if union and (a & b).sum() / union >= NAME_OVERLAP:
            out[int(c)] = name
    return out


def _parent_map(store: Store, parent: dict[str, Any], feature_set_id: int, map_cfg: MapConfig) -> np.ndarray | None:
    """The parent's 2-D map when it was made from the same features the same way (saves a UMAP)."""
    rel = (parent.get("artifacts") or {}).get("map")
    same_map = dataclasses.asdict(map_cfg) == (parent.get("config") or {}).get("map")
    if not rel or parent.get("feature_set_id") != feature_set_id or not same_map:
        return None
    try:
        return np.load(store.abs(rel), allow_pickle=False)
    except (OSError, ValueError):
        return None
