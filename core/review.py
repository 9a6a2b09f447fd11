"""Review and correct a run: move samples between clusters, mark outliers, merge, split, rename,
undo and redo — every edit kept.

The run's assignments never change. The edit log (``edits`` + ``corrections`` +
``cluster_names`` in the workspace) is append-only; undo and redo are edits that name the edit
they revert or re-apply. A sample's current label is the run's label with the *applied* edits
replayed in order. Each edit is committed (WAL, synchronous=FULL) before its method returns.

Optimistic concurrency: the run's version is the id of its last edit. Every edit quotes the
version the caller saw (``expected_version``; by default the version this session last loaded or
wrote); if anyone else wrote since, :class:`~core.errors.StaleEditError` is raised and nothing is
written.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.errors import ParameterError, StaleEditError
from core.store import Store

OUTLIER = -1
REVIEW_ORDERS = ("doubtful", "sample", "confidence", "index")
UNDOABLE = ("move", "outlier", "merge", "split", "rename")
PERSON_OPS = ("move", "outlier")   # edits where a person decided about each image they name


def cluster_name(cluster: int, names: dict[int, str] | None = None) -> str:
    """A cluster's one name, on every page, plot and export: its given name when it was renamed
    (or carried over by a retrained run), else ``cluster_<id>``; -1 is ``outliers``."""
    c = int(cluster)
    if names and names.get(c):
        return names[c]
    return "outliers" if c == OUTLIER else f"cluster_{c}"


@dataclass
class _State:
    version: int
    labels: np.ndarray            # (N,) current labels
    touched: np.ndarray           # (N,) bool: changed by an applied edit
    by_person: np.ndarray         # (N,) bool: named by an applied move / outlier edit (a person looked)
    ever: set[int]                # every cluster id the run has ever used (base or any edit)
    names: dict[int, str]         # current names (renamed clusters only)
    applied: list[int]            # undo stack: applied undoable edit ids, oldest first
    undone: list[int]             # redo stack: most recently undone last


class ReviewSession:
    """The review of one finished run. Cheap to create; one per browser tab / process."""

    def __init__(self, store: Store, run_id: int) -> None:
        run = store.run(run_id)
        if run["status"] != "done":
            raise ParameterError(f"run {run_id} is {run['status']}, not done; only a finished run can be reviewed")
        self.store = store
        self.run_id = int(run_id)
        self.dataset_id = int(run["dataset_id"])
        self.base_labels, self.confidence = store.assignments(run_id)
        self.ids, self.paths = store.samples(self.dataset_id)
        if len(self.ids) != len(self.base_labels):
            raise ParameterError(f"run {run_id} has {len(self.base_labels)} assignments for "
                                 f"{len(self.ids)} samples; the workspace is inconsistent")
        self._row = {sid: i for i, sid in enumerate(self.ids)}
        config = run.get("config") or {}
        # names a retrained run carried over from its parent (``core.retrain``); renames win
        self.base_names = {int(c): str(n) for c, n in (config.get("cluster_names") or {}).items()}
        self.parent_run: int | None = config.get("parent_run")
        self._unclean: np.ndarray | None | bool = False    # False = not read yet
        self._state = self._load()

    # -- reading ---------------------------------------------------------------------------
    @property
    def version(self) -> int:
        """The version this session last saw (quote it as ``expected_version``)."""
        return self._state.version

    def refresh(self) -> None:
        """Reload the log if anyone (another tab or process) wrote since."""
        if self.store.run_version(self.run_id) != self._state.version:
            self._state = self._load()

    def current_labels(self) -> np.ndarray:
        """(N,) int64 current labels; -1 = outlier."""
        self.refresh()
        return self._state.labels.copy()

    def corrected_mask(self) -> np.ndarray:
        """(N,) bool: samples changed by an applied edit."""
        self.refresh()
        return self._state.touched.copy()

    def person_mask(self) -> np.ndarray:
        """(N,) bool: samples a person moved or marked as outliers (an applied move / outlier
        edit names them). A split or merge changes labels of images nobody looked at one by one:
        those are in :meth:`corrected_mask` but not here. What the page counts as corrected
        and checked, and what leaves the review queue."""
        self.refresh()
        return self._state.by_person.copy()

    def fixed_labels(self) -> np.ndarray:
        """(N,) int64: the corrected label where a person changed it, else -1 (for DAC / RUC
        retraining via ``core.pipeline.cluster(..., fixed_labels=...)``). Samples marked as
        outliers are -1 too: there is no class to pin them to."""
        self.refresh()
        s = self._state
        return np.where(s.touched, s.labels, -1).astype(np.int64)

    @property
    def unclean_mask(self) -> np.ndarray | None:
        """(N,) bool, True = in RUC's unclean set, as stored with the run; None when the run has
        none (not a RUC run). ``review_queue(order="doubtful")`` puts these first by itself."""
        if self._unclean is False:
            self._unclean = unclean_mask(self.store, self.run_id)
            if self._unclean is not None and self._unclean.shape != self.base_labels.shape:
                self._unclean = None
        return None if self._unclean is None else self._unclean.copy()

    def clusters(self) -> list[int]:
        """Current non-empty clusters (outliers excluded)."""
        self.refresh()
        return sorted(int(c) for c in np.unique(self._state.labels) if c >= 0)

    def cluster_names(self) -> dict[int, str]:
        """Names of the current clusters (default ``cluster_<id>``) plus -1 → ``outliers``."""
        self.refresh()
        out = {c: cluster_name(c, self._state.names) for c in self.clusters()}
        out[OUTLIER] = "outliers"
        return out

    def named_clusters(self) -> dict[int, str]:
        """Only the clusters that have a name (renamed, or carried over by a retrained run)."""
        st = self._fresh()
        current = set(self.clusters())
        return {c: n for c, n in st.names.items() if c in current}

    def new_cluster_id(self) -> int:
        """An id never used in this run: ``move(ids, session.new_cluster_id())`` starts a cluster."""
        self.refresh()
        return max(self._state.ever, default=-1) + 1

    def can_undo(self) -> bool:
        self.refresh()
        return bool(self._state.applied)

    def can_redo(self) -> bool:
        self.refresh()
        return bool(self._state.undone)

    def history(self, sample_id: str | int) -> list[dict[str, Any]]:
        """Every edit that touched one sample, oldest first, with ``applied`` False where undone."""
        i = self._rows([sample_id])[0]
        self.refresh()
        applied = set(self._state.applied)
        rows = self.store.sample_corrections(self.run_id, int(i))
        for r in rows:
            r["applied"] = r["edit_id"] in applied
        return rows

    def log(self) -> list[dict[str, Any]]:
        """The run's whole edit log (undo / redo included), oldest first."""
        return self.store.edits(self.run_id)

    # -- edits -----------------------------------------------------------------------------
    def move(self, ids: Sequence[str | int] | np.ndarray, to_cluster: int, *,
             expected_version: int | None = None) -> int:
        """Move samples (sample ids, or row indices) to an existing cluster, a new id
        (:meth:`new_cluster_id`) or -1 (outlier). One edit however many samples. Returns the new
        version."""
        to = int(to_cluster)
        rows = self._rows(ids)
        ev, st = self._begin(expected_version)
        if to != OUTLIER:
            if to < 0:
                raise ParameterError(f"cluster ids are >= 0 (or -1 for outlier); got {to}")
            if to in st.ever and not (st.labels == to).any():
                raise ParameterError(
                    f"{cluster_name(to)} no longer exists (it was merged away or emptied); move to one of "
                    f"{', '.join(cluster_name(c, st.names) for c in self._cluster_list(st))} or to a new cluster "
                    f"({cluster_name(max(st.ever) + 1)})")
        return self._write("move" if to != OUTLIER else "outlier", rows, to, ev,
                           {"to": to, "n": len(rows)})

    def mark_outliers(self, ids: Sequence[str | int] | np.ndarray, *, expected_version: int | None = None) -> int:
        """Mark samples as outliers (label -1)."""
        return self.move(ids, OUTLIER, expected_version=expected_version)

    def merge(self, a: int, b: int, *, expected_version: int | None = None) -> int:
        """Merge cluster ``b`` into ``a``: every member of ``b`` moves to ``a``; ``b`` is gone."""
        ev, st = self._begin(expected_version)
        a, b = int(a), int(b)
        for c in (a, b):
            self._check_exists(st, c)
        if a == b:
            raise ParameterError(f"cannot merge cluster {a} with itself")
        rows = np.flatnonzero(st.labels == b)
        return self._write("merge", rows, a, ev, {"into": a, "from": b})

    def split(self, cluster: int, k: int, features: np.ndarray, *, seed: int = 0,
              expected_version: int | None = None) -> int:
        """Re-cluster just the members of ``cluster`` into ``k`` with k-means on ``features``
        (N, D, row-aligned with the run). The largest part keeps the id; the others get new ids."""
        from core.cluster.kmeans import KMeans

        ev, st = self._begin(expected_version)
        cluster = int(cluster)
        self._check_exists(st, cluster)
        X = np.asarray(features, dtype=np.float32)
        if X.ndim != 2 or len(X) != len(st.labels):
            raise ParameterError(f"features must be (N, D) with N={len(st.labels)} rows; got {X.shape}")
        members = np.flatnonzero(st.labels == cluster)
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 2 or k > len(members):
            raise ParameterError(f"split k must be between 2 and the cluster's size ({len(members)}); got {k!r}")
        sub = KMeans(n_clusters=int(k), random_state=seed, device="cpu").fit(X[members]).labels_
        sub = np.asarray(sub, dtype=np.int64)
        counts = np.bincount(sub, minlength=k)
        order = np.argsort(-counts, kind="stable")          # largest part first: it keeps the id
        nxt = max(st.ever) + 1
        new_id = {int(order[0]): cluster}
        for j, part in enumerate(order[1:]):
            new_id[int(part)] = nxt + j
        targets = np.array([new_id[int(p)] for p in sub], dtype=np.int64)
        moved = targets != cluster
        return self._write("split", members[moved], targets[moved], ev,
                           {"cluster": cluster, "k": int(k), "new": sorted(set(new_id.values()) - {cluster})})

    def rename(self, cluster: int, name: str, *, expected_version: int | None = None) -> int:
        """Give a cluster a name (used in exports and ImageFolder folders)."""
        ev, st = self._begin(expected_version)
        cluster = int(cluster)
        self._check_exists(st, cluster)
        name = str(name).strip()
        if not name:
            raise ParameterError("a cluster name cannot be empty")
        v = self.store.append_edit(self.run_id, "rename", expected_version=ev,
                                   detail={"cluster": cluster, "name": name},
                                   name=(cluster, name, st.names.get(cluster)))
        self._state = self._load()
        return v

    def undo(self, *, expected_version: int | None = None) -> int:
        """Revert the last applied edit (itself appended as an ``undo`` edit)."""
        ev, st = self._begin(expected_version)
        if not st.applied:
            raise ParameterError("nothing to undo in this run")
        return self._undo_redo("undo", st.applied[-1], ev)

    def redo(self, *, expected_version: int | None = None) -> int:
        """Re-apply the last undone edit (appended as a ``redo`` edit). A new edit clears redo."""
        ev, st = self._begin(expected_version)
        if not st.undone:
            raise ParameterError("nothing to redo in this run")
        return self._undo_redo("redo", st.undone[-1], ev)

    # -- review progress and queue ---------------------------------------------------------
    def mark_reviewed(self, cluster: int | str) -> None:
        """Record that a person looked at a cluster (or a page key string); idempotent."""
        key = cluster if isinstance(cluster, str) else f"cluster:{int(cluster)}"
        self.store.mark_reviewed(self.run_id, key)

    def reviewed(self) -> set[str]:
        return self.store.reviewed_keys(self.run_id)

    def progress(self) -> float:
        """Fraction of the current clusters marked reviewed (0..1)."""
        clusters = self.clusters()
        if not clusters:
            return 1.0
        done = self.reviewed()
        return sum(f"cluster:{c}" in done for c in clusters) / len(clusters)

    def review_queue(self, order: str = "doubtful", *, features: np.ndarray | None = None,
                     unclean_mask: np.ndarray | None = None, include_corrected: bool = False,
                     seed: int | None = None) -> np.ndarray:
        """Row indices to show a person, most doubtful first.

        ``order``: "doubtful" (RUC's unclean set first — ``unclean_mask`` when given, else the
        one stored with the run (:attr:`unclean_mask`) — then by the mean of two
        percentile ranks: low confidence and, with ``features``, the Mahalanobis outlier score
        within the current cluster), "sample" (a random order, fixed by ``seed``, default the
        run id: a spot check), "confidence" (lowest confidence first) or "index".
        Samples a person already moved (or marked outliers, :meth:`person_mask`) and current
        outliers are left out unless ``include_corrected``; images a split or merge moved stay
        in: nobody looked at them.

        Why "sample": the doubtful queue finds the most wrong images per tile, but not the ones
        the model is sure of, and a group of those (a kind of image sitting in another kind's
        cluster) is what retraining repeats unless a few of its members are corrected; a random
        sample reaches such groups in proportion to their size. On digits, correcting the wrong
        ones among 200 tiles and retraining RUC (its default, ``refine="start"``) gave 0.967 ACC
        mean, 0.965 worst seed, from a sample and 0.927 mean, 0.906 worst, from the doubtful queue
        (0.964 / 0.933 with ``refine="current"``); on Fashion-MNIST, whose mistakes are spread,
        the queue wins (1,000 tiles, fixes alone: 0.817 vs 0.784; retrained: 0.829 vs 0.796)
        (bench/bench_loop.py, bench/RESULTS.md "The correction loop").
        """
        from core.metrics import mahalanobis_outlier_scores

        if order not in REVIEW_ORDERS:
            raise ParameterError(f"unknown review order {order!r}; choose one of: {', '.join(REVIEW_ORDERS)}")
        st = self._fresh()
        n = len(st.labels)
        keep = np.ones(n, bool) if include_corrected else ~st.by_person & (st.labels >= 0)
        if order == "index":
            return np.flatnonzero(keep)
        if order == "sample":       # one fixed shuffle of all rows, so pages stay put as edits remove rows
            perm = np.random.default_rng(self.run_id if seed is None else seed).permutation(n)
            return perm[keep[perm]]
        doubt = _pct_rank(-self.confidence.astype(np.float64))
        if order == "doubtful" and features is not None:
            X = np.asarray(features, dtype=np.float32)
            if X.ndim != 2 or len(X) != n:
                raise ParameterError(f"features must be (N, D) with N={n} rows; got {X.shape}")
            odd = np.nan_to_num(mahalanobis_outlier_scores(X, st.labels), nan=0.0)
            doubt = (doubt + _pct_rank(odd)) / 2
        key = -doubt
        if order == "doubtful" and unclean_mask is None:
            unclean_mask = self.unclean_mask
        if order == "doubtful" and unclean_mask is not None:
            m = np.asarray(unclean_mask, dtype=bool)
            if m.shape != (n,):
                raise ParameterError(f"unclean_mask must have shape ({n},); got {m.shape}")
            key = key - 2.0 * m                               # unclean ones sort before all clean ones
        idx = np.flatnonzero(keep)
        return idx[np.argsort(key[idx], kind="stable")]

    # -- internals -------------------------------------------------------------------------
    def _fresh(self) -> _State:
        self.refresh()
        return self._state

    def _begin(self, expected_version: int | None) -> tuple[int, _State]:
        """The version the caller saw (given, or what this session last loaded — *before*
        reloading), and the fresh state; stale → StaleEditError before anything is validated."""
        ev = self._state.version if expected_version is None else int(expected_version)
        self.refresh()
        if self._state.version != ev:
            raise StaleEditError(
                f"run {self.run_id} was edited elsewhere (another tab or process) since you loaded it "
                f"(version {ev}, now {self._state.version}); the review was reloaded: check and redo this edit")
        return ev, self._state

    def _cluster_list(self, st: _State) -> list[int]:
        return sorted(int(c) for c in np.unique(st.labels) if c >= 0)

    def _check_exists(self, st: _State, c: int) -> None:
        if not (st.labels == c).any() or c < 0:
            why = "was merged away or emptied" if c in st.ever else "does not exist"
            current = ", ".join(cluster_name(x, st.names) for x in self._cluster_list(st))
            raise ParameterError(f"{cluster_name(c)} {why} in run {self.run_id}; current clusters: {current}")

    def _rows(self, ids: Sequence[str | int] | np.ndarray) -> np.ndarray:
        """Sample ids (str) or row indices (int) → unique row indices; unknown ones are an error."""
        if isinstance(ids, str | int | np.integer):
            ids = [ids]
        n = len(self.ids)
        out, bad = [], []
        for x in ids:
            if isinstance(x, str):
                i = self._row.get(x)
                if i is None:
                    bad.append(x)
                else:
                    out.append(i)
            elif isinstance(x, int | np.integer) and not isinstance(x, bool) and 0 <= int(x) < n:
                out.append(int(x))
            else:
                bad.append(x)
        if bad:
            shown = ", ".join(repr(b) for b in bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
            raise ParameterError(f"{len(bad)} sample(s) are not in run {self.run_id}: {shown}")
        if not out:
            raise ParameterError("no samples selected")
        return np.unique(np.asarray(out, dtype=np.int64))

    def _write(self, op: str, rows: np.ndarray, to: int | np.ndarray, ev: int, detail: dict[str, Any]) -> int:
        st = self._state
        targets = np.broadcast_to(np.asarray(to, dtype=np.int64), rows.shape)
        frm = st.labels[rows]
        change = frm != targets
        if not change.any():
            raise ParameterError("nothing to change: the selected samples are already there")
        rows, frm, targets = rows[change], frm[change], targets[change]
        ids = self.ids
        v = self.store.append_edit(self.run_id, op, expected_version=ev, detail=detail,
                                   corrections=list(zip(rows.tolist(), (ids[i] for i in rows.tolist()),
                                                        frm.tolist(), targets.tolist(), strict=False)))
        if ev == st.version:          # we were current: update in memory instead of replaying
            st.labels[rows] = targets
            st.touched[rows] = True
            if op in PERSON_OPS:
                st.by_person[rows] = True
            st.ever.update(int(t) for t in np.unique(targets))
            st.applied.append(v)
            st.undone.clear()
            st.version = v
        else:
            self._state = self._load()
        return v

    def _undo_redo(self, op: str, target: int, ev: int) -> int:
        v = self.store.append_edit(self.run_id, op, expected_version=ev,
                                   target=target, detail={"target": target})
        self._state = self._load()
        return v

    def _load(self) -> _State:
        """Replay the log: which edits are applied, then the last applied correction per sample."""
        edits = self.store.edits(self.run_id)
        applied: list[int] = []
        undone: list[int] = []
        for e in edits:
            if e["op"] in UNDOABLE:
                applied.append(e["id"])
                undone.clear()
            elif e["op"] == "undo":
                applied.remove(e["target"])
                undone.append(e["target"])
            elif e["op"] == "redo":
                undone.remove(e["target"])
                applied.append(e["target"])
        version = edits[-1]["id"] if edits else 0
        labels = self.base_labels.copy()
        touched = np.zeros(len(labels), bool)
        by_person = np.zeros(len(labels), bool)
        corr = self.store.corrections(self.run_id)
        applied_set = set(applied)
        ever = {int(c) for c in np.unique(labels)}
        if len(corr):
            ever.update(int(c) for c in np.unique(corr[:, 3]))
            on = corr[np.isin(corr[:, 0], np.asarray(applied, dtype=np.int64))]
            if len(on):
                rev = on[::-1]                                   # last write per sample wins
                _, first = np.unique(rev[:, 1], return_index=True)
                last = rev[first]
                labels[last[:, 1]] = last[:, 3]
                touched[last[:, 1]] = True
                person = [e["id"] for e in edits if e["op"] in PERSON_OPS and e["id"] in applied_set]
                by_person[on[np.isin(on[:, 0], np.asarray(person, dtype=np.int64)), 1]] = True
        names: dict[int, str] = dict(self.base_names)
        for r in self.store.name_records(self.run_id):
            if r["edit_id"] in applied_set:
                names[int(r["cluster"])] = r["name"]
        ever.discard(OUTLIER)
        return _State(version=version, labels=labels, touched=touched, by_person=by_person, ever=ever, names=names,
                      applied=applied, undone=undone)


def unclean_mask(store: Store, run_id: int) -> np.ndarray | None:
    """(N,) bool RUC unclean set stored with run ``run_id`` (True = unclean, row-aligned with the
    dataset's ids), or None when the run has none (not RUC, or the file is gone / unreadable)."""
    rel = store.run(run_id)["artifacts"].get("unclean")
    if not rel:
        return None
    try:
        m = np.load(store.abs(rel), allow_pickle=False)
    except (OSError, ValueError):
        return None
    return np.asarray(m, dtype=bool).reshape(-1)


def _pct_rank(x: np.ndarray) -> np.ndarray:
    """Percentile rank in [0, 1] (ties broken by position; fine for ordering)."""
    r = np.empty(len(x), dtype=np.float64)
    r[np.argsort(x, kind="stable")] = np.arange(len(x))
    return r / max(len(x) - 1, 1)
