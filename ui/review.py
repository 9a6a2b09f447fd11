"""The Review page's glue: what a person sees of a run under review, and the callbacks that edit it.

Every edit goes through :class:`core.review.ReviewSession` in a button callback, quoting the
version the page was drawn with (``expected_version``), so an edit made from a page that another
tab has since changed is refused (:class:`~core.errors.StaleEditError`) and nothing is written.
The confirmation is set only after the call returned, i.e. after the edit was committed.
"""
from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

from core.data.base import ImageDataset
from core.errors import ClusterLensError, StaleEditError
from core.features import FeatureCache  # at import time: a job thread importing it too could race
from core.review import OUTLIER, ReviewSession, cluster_name
from core.store import Store
from ui import engine
from ui.figures import colour
from ui.state import Review, adopt_run_settings, choose_data, get_state, settings, start_features, start_job
from ui.text import plain
from ui.tile_picker import PickTile
from ui.widgets import image_grid, paged

NEW = -2                          # the move target "a new cluster"
STALE = ("Someone else changed this run (another tab or person) since this page was drawn; "
         "the page was refreshed, check and try again. Nothing was changed by your click.")
VIEWS = {"queue": "Most doubtful first (lowest confidence)",
         "odd": "Likely mistakes first (RUC's unclean set, low confidence, far from its cluster)",
         "sample": "Spot check (a random sample)", "cluster": "A cluster's members"}
QUEUE_ORDERS = {"queue": "confidence", "odd": "doubtful", "sample": "sample"}   # view → core review order
EXPORT_FORMATS = {"imagefolder": "ImageFolder (one folder per cluster)", "csv": "CSV file", "json": "JSON file"}
RETRAIN_ALGOS = ("ruc", "dac")


@dataclass(frozen=True)
class ReviewView:
    """One consistent read of a run under review (everything the page draws from)."""

    run_id: int
    version: int
    ids: list[str]                     # sample ids, row order
    labels: np.ndarray                 # current labels, -1 = outlier
    confidence: np.ndarray
    corrected: np.ndarray              # (N,) bool: moved or marked outlier by a person (not by a split / merge)
    names: dict[int, str]              # current clusters (+ -1 → "outliers")
    clusters: list[int]
    new_id: int
    can_undo: bool
    can_redo: bool
    progress: float                    # fraction of clusters marked reviewed
    reviewed: frozenset[str]
    edits: tuple[dict[str, Any], ...]  # the whole log, oldest first, each with "applied"
    touched_ever: np.ndarray           # rows any edit ever moved (for the history picker)
    algo: str
    parent_run: int | None

    def name(self, c: int) -> str:
        """The cluster's one name (core.review.cluster_name): every page, plot and export uses it."""
        return cluster_name(c, self.names)

    def size(self, c: int) -> int:
        return int((self.labels == c).sum())

    def label(self, c: int) -> str:
        """How a cluster is shown in pickers: its name and size."""
        if c == NEW:
            return f"a new cluster ({cluster_name(self.new_id)})"
        return f"{self.name(c)} ({self.size(c):,} images)"

    @property
    def n_corrected(self) -> int:
        return int(self.corrected.sum())

    def checked(self) -> np.ndarray:
        """(N,) bool: images a person has looked at — on a page marked checked, in a cluster marked
        reviewed, or moved / marked outlier by them (a split or merge looks at nobody)."""
        out = self.corrected.copy()
        if any(k.startswith("sample:") for k in self.reviewed):
            out |= np.fromiter((f"sample:{i}" in self.reviewed for i in self.ids), bool, len(self.ids))
        for c in self.clusters:
            if f"cluster:{c}" in self.reviewed:
                out |= self.labels == c
        return out

    def last_edit(self, op: str) -> dict[str, Any] | None:
        """The edit an undo (op="undo") or redo (op="redo") would act on."""
        applied = [e for e in self.edits if e["op"] not in ("undo", "redo") and e["applied"]]
        if op == "undo":
            return applied[-1] if applied else None
        undone = _redo_stack(list(self.edits))
        return next((e for e in self.edits if e["id"] == undone[-1]), None) if undone else None


def load_view(workspace: Path, run_id: int) -> ReviewView:
    """Read the run's review state fresh from the database (cheap; never cached: another tab may write)."""
    with Store(workspace) as store:
        s = ReviewSession(store, run_id)
        labels, corrected = s.current_labels(), s.person_mask()
        log = s.log()
        flags = _applied(log)
        corr = store.corrections(run_id)
        return ReviewView(
            run_id=run_id, version=s.version, ids=s.ids, labels=labels, confidence=s.confidence, corrected=corrected,
            names=s.cluster_names(), clusters=s.clusters(), new_id=s.new_cluster_id(),
            can_undo=s.can_undo(), can_redo=s.can_redo(), progress=s.progress(),
            reviewed=frozenset(s.reviewed()), edits=tuple({**e, "applied": flags.get(e["id"], True)} for e in log),
            touched_ever=np.unique(corr[:, 1]) if len(corr) else np.zeros(0, np.int64),
            algo=store.run(run_id)["algo"], parent_run=s.parent_run)


def follow_run(run_id: int) -> Review:
    """The review state of ``run_id``: a different run (a new one, a retrained one) starts afresh."""
    s = get_state()
    if s.review.run_id != run_id:
        s.review = Review(run_id=run_id)
    return s.review


# -- which run: the current one, or one reopened from the workspace (?run=N survives a reload) --

def finished_runs(workspace: Path) -> list[dict[str, Any]]:
    """Every finished run in the workspace, newest first."""
    with Store(workspace) as store:
        return [r for r in reversed(store.runs()) if r["status"] == "done"]


def open_run(run_id: int) -> None:
    """Make a finished run the current one: its images, its features (from the cache, as a job),
    its clustering and map settings on the Cluster and Explore pages, and it."""
    from core.config import DataConfig, FeatureConfig

    s, cfg = get_state(), settings()
    try:
        with Store(cfg.workspace) as store:
            rec = store.run(int(run_id))
        if rec["status"] != "done":
            raise ClusterLensError(f"run {run_id} is {rec['status']}; only a finished run can be reviewed")
        conf = rec.get("config") or {}
        data = DataConfig(source=conf["data"]["source"], limit=conf["data"].get("limit"))
        fields = set(FeatureConfig.__dataclass_fields__)
        feats = FeatureConfig(**{k: v for k, v in (conf.get("features") or {}).items() if k in fields})
        engine.open_data(data, cfg.workspace)
    except (ClusterLensError, KeyError, TypeError) as e:
        s.review = Review(error=f"Run {run_id} cannot be opened: {e}")
        return
    demos = {d["name"] for d in engine.demos()}
    choose_data(data.source, f"{'demo' if data.source in demos else 'folder'}: {data.source}", data.limit)
    s.features, s.run_id = feats, int(run_id)
    adopt_run_settings(conf)
    start_features()               # from the disk cache: the queue's ordering and splits need them


def open_run_from_url() -> None:
    """After a reload the session is new: reopen the run named in the address (?run=N)."""
    s, raw = get_state(), st.query_params.get("run")
    if raw and raw.isdigit() and s.data is None and s.run_id is None and s.review.error is None:
        open_run(int(raw))


def remember_in_url(run_id: int) -> None:
    if st.query_params.get("run") != str(run_id):
        st.query_params["run"] = str(run_id)


# -- which images the page shows -------------------------------------------------------------

def features(workspace: str, feature_key: str) -> np.ndarray | None:
    """The run's features from the engine's disk cache (None when they are not there yet)."""
    if not feature_key or feature_key not in FeatureCache(Path(workspace) / "features"):
        return None
    return _features(workspace, feature_key)


@st.cache_resource(show_spinner=False, max_entries=2)
def _features(workspace: str, feature_key: str) -> np.ndarray | None:   # read-only, shared: no copies
    return FeatureCache(Path(workspace) / "features").get(feature_key)


def run_features(workspace: Path, feature_key: str | None, n: int) -> np.ndarray | None:
    X = features(str(workspace), feature_key or "")
    return X if X is not None and X.ndim == 2 and len(X) == n else None


@st.cache_data(show_spinner=False, max_entries=8)
def queue(workspace: str, run_id: int, version: int, feature_key: str, order: str = "doubtful") -> np.ndarray:
    """Rows lowest confidence first ("confidence"), likely mistakes first ("doubtful": RUC's unclean
    set first, then low confidence and odd-in-cluster), or in the run's fixed random order
    ("sample"); what a person corrected left out. ``version`` keys the cache: every edit makes a
    new queue."""
    with Store(workspace) as store:
        s = ReviewSession(store, run_id)
        X = features(workspace, feature_key) if order == "doubtful" else None
        return s.review_queue(order=order, features=X if X is not None and len(X) == len(s.ids) else None)


def rows_to_show(view: ReviewView, kind: str, cluster: int, workspace: Path, feature_key: str | None) -> np.ndarray:
    """A queue (:data:`QUEUE_ORDERS`) or the spot-check sample, minus images marked checked, or one
    cluster's members, least confident first."""
    if kind == "cluster":
        rows = np.flatnonzero(view.labels == cluster)
        return rows[np.lexsort((rows, view.confidence[rows]))]
    rows = queue(str(workspace), view.run_id, view.version, feature_key or "", QUEUE_ORDERS.get(kind, "confidence"))
    keys = view.reviewed
    if not any(k.startswith("sample:") for k in keys):
        return rows
    checked = np.fromiter((f"sample:{view.ids[i]}" in keys for i in rows.tolist()), bool, len(rows))
    return rows[~checked]


def browse_choices(view: ReviewView) -> list[int]:
    return view.clusters + ([OUTLIER] if (view.labels == OUTLIER).any() else [])


def tiles(view: ReviewView, rows: Sequence[int] | np.ndarray, ds: ImageDataset) -> list[PickTile]:
    out = []
    for r in np.asarray(rows, dtype=np.int64).tolist():
        c, conf = int(view.labels[r]), float(view.confidence[r])
        corrected = bool(view.corrected[r])
        tip = f"{ds.ids[r]} · {view.name(c)} · confidence {conf:.2f}" + (" · corrected" if corrected else "")
        out.append(PickTile(row=r, caption=f"{view.name(c)} · {conf:.2f}", tooltip=tip,
                            colour=colour(c), mark="✎" if corrected else ""))
    return out


def move_targets(view: ReviewView) -> list[int]:
    return [*view.clusters, NEW, OUTLIER]


def cluster_table(view: ReviewView) -> list[dict[str, Any]]:
    return [{"cluster": c, "name": view.name(c), "images": view.size(c),
             "corrected": int((view.corrected & (view.labels == c)).sum()),
             "reviewed": f"cluster:{c}" in view.reviewed} for c in browse_choices(view)]


# -- describing edits ------------------------------------------------------------------------

def describe(edit: dict[str, Any], view: ReviewView) -> str:
    d, op = edit.get("detail") or {}, edit["op"]
    if op == "move":
        text = f"moved {d.get('n', '?')} image(s) to {view.name(d.get('to', -1))}"
    elif op == "outlier":
        text = f"marked {d.get('n', '?')} image(s) as outliers"
    elif op == "merge":
        text = f"merged {view.name(d.get('from', -1))} into {view.name(d.get('into', -1))}"
    elif op == "split":
        new = ", ".join(view.name(c) for c in d.get("new", []))
        text = f"split {view.name(d.get('cluster', -1))} into {d.get('k')} (new: {new})"
    elif op == "rename":
        text = f"renamed {cluster_name(d.get('cluster', -1))} to “{d.get('name')}”"
    else:
        text = f"{op} of edit #{d.get('target', edit.get('target'))}"
    return text


def recent_edits(view: ReviewView, n: int = 10) -> list[dict[str, Any]]:
    return [{"edit": f"#{e['id']}", "what": describe(e, view),
             "when": time.strftime("%H:%M:%S", time.localtime(e["created_at"])),
             "state": "" if e["op"] in ("undo", "redo") else ("applied" if e["applied"] else "undone")}
            for e in reversed(view.edits[-n:])]


def history_choices(view: ReviewView, ds: ImageDataset, selected: Sequence[str]) -> list[str]:
    """Samples worth asking about: the selected ones, then every sample an edit ever touched."""
    seen = dict.fromkeys(selected)
    seen.update(dict.fromkeys(ds.ids[int(r)] for r in view.touched_ever))
    return list(seen)


def sample_history(workspace: Path, run_id: int, sample_id: str, view: ReviewView) -> list[dict[str, Any]]:
    with Store(workspace) as store:
        rows = ReviewSession(store, run_id).history(sample_id)
    return [{"edit": f"#{r['edit_id']}", "what": r["op"], "from": view.name(r["from_cluster"]) if r["from_cluster"] >= 0
             else "outliers", "to": view.name(r["to_cluster"]) if r["to_cluster"] >= 0 else "outliers",
             "when": time.strftime("%H:%M:%S", time.localtime(r["created_at"])),
             "state": "applied" if r["applied"] else "undone"} for r in rows]


# -- callbacks: view and selection -----------------------------------------------------------

def set_view(view: str) -> None:
    rv = get_state().review
    rv.view, rv.page = view, 1


def set_cluster(cluster: int) -> None:
    rv = get_state().review
    rv.cluster, rv.page = int(cluster), 1


def set_page(page: int) -> None:
    get_state().review.page = int(page)


def pick(ids: list[str], seq: float) -> None:
    """The tile picker's click: the whole selection as the browser has it."""
    rv = get_state().review
    rv.selected, rv.pick_ack = list(dict.fromkeys(ids)), max(rv.pick_ack, seq)


def select(ids: Sequence[str]) -> None:
    rv = get_state().review
    rv.selected = list(dict.fromkeys([*rv.selected, *ids]))


def clear_selection() -> None:
    get_state().review.selected = []


def take_map_selection() -> None:
    s = get_state()
    select(s.selected_ids)
    s.review.sel_page = 1


def set_selection_page(page: int) -> None:
    get_state().review.sel_page = int(page)


def selection_panel(view: ReviewView, ds: ImageDataset, selected: Sequence[str], page_ids: Sequence[str]) -> None:
    """What a move would move, seen before moving it (issue 26: "Use the map selection (27)" selected
    27 images none of which the grid showed): every selected image, paged, in its cluster's colour.
    Open by itself when some of them are not among the tiles on screen."""
    if not selected:
        return
    index = {sid: i for i, sid in enumerate(ds.ids)}
    rows = np.asarray([index[i] for i in selected if i in index], dtype=np.int64)
    off_page = len(set(selected) - set(page_ids))
    where = f", {off_page:,} of them not on this page" if off_page else ", all on this page"
    with st.expander(f"See the {len(rows):,} selected image(s){where}", expanded=off_page > 0):
        shown, page, pages = paged(rows, "w_rv_sel_page", get_state().review.sel_page, set_selection_page)
        if pages > 1:
            st.caption(f"Page {page} of {pages} of the selection.")
        image_grid(ds, tiles(view, shown, ds), grid_id="rv-selected-grid", size=56)


def set_history(sample_id: str | None) -> None:
    get_state().review.history_id = sample_id


# -- callbacks: edits ------------------------------------------------------------------------

def _edit(version: int, action: Callable[[ReviewSession, int], str], *, clear: bool = False) -> None:
    """Run one edit against the version the page was drawn with; confirm only once it returned."""
    s, cfg = get_state(), settings()
    rv = s.review
    rv.message, rv.error, rv.area = None, None, "edit"
    if s.run_id is None:
        return
    try:
        with Store(cfg.workspace) as store:
            message = action(ReviewSession(store, s.run_id), int(version))
    except StaleEditError:
        rv.error = STALE
        return
    except ClusterLensError as e:
        rv.error = str(e)
        return
    rv.message = message
    if clear:
        rv.selected = []


def move_selected(version: int, target: int) -> None:
    ids = list(get_state().review.selected)

    def act(rs: ReviewSession, v: int) -> str:
        to = rs.new_cluster_id() if int(target) == NEW else int(target)
        rs.move(ids, to, expected_version=v)
        where = "the outliers" if to == OUTLIER else cluster_name(to, rs.cluster_names())
        return f"Moved {len(ids)} image(s) to {where}. Saved."
    _edit(version, act, clear=True)


def merge(version: int, into: int, other: int) -> None:
    def act(rs: ReviewSession, v: int) -> str:
        names = rs.cluster_names()
        rs.merge(into, other, expected_version=v)
        return f"Merged {names.get(other, other)} into {names.get(into, into)}. Saved."
    _edit(version, act)


def split(version: int, cluster: int, k: int, feature_key: str | None) -> None:
    def act(rs: ReviewSession, v: int) -> str:
        X = run_features(settings().workspace, feature_key, len(rs.ids))
        if X is None:
            raise ClusterLensError("the run's features are not in the cache, so its clusters cannot be split; "
                                   "extract features on the Features page first")
        name = cluster_name(cluster, rs.cluster_names())
        rs.split(cluster, int(k), X, expected_version=v)
        new = (rs.log()[-1].get("detail") or {}).get("new", [])
        return f"Split {name} into {int(k)}: new cluster(s) {', '.join(cluster_name(c) for c in new)}. Saved."
    _edit(version, act)


def rename(version: int, cluster: int, name: str) -> None:
    def act(rs: ReviewSession, v: int) -> str:
        old = cluster_name(cluster, rs.cluster_names())
        rs.rename(cluster, name, expected_version=v)
        return f"{old} is now called “{name.strip()}”. Saved."
    _edit(version, act)


def undo(version: int) -> None:
    def act(rs: ReviewSession, v: int) -> str:
        rs.undo(expected_version=v)
        return "Undone. Saved."
    _edit(version, act)


def redo(version: int) -> None:
    def act(rs: ReviewSession, v: int) -> str:
        rs.redo(expected_version=v)
        return "Redone. Saved."
    _edit(version, act)


def _mark(keys: Sequence[int | str], message: str) -> bool:
    s, rv = get_state(), get_state().review
    rv.message, rv.error, rv.area = None, None, "edit"
    try:
        with Store(settings().workspace) as store:
            rs = ReviewSession(store, s.run_id)
            for key in keys:
                rs.mark_reviewed(key)
    except ClusterLensError as e:
        rv.error = str(e)
        return False
    rv.message = message
    return True


def mark_reviewed(cluster: int, name: str | None = None) -> None:
    _mark([int(cluster)], f"{name or cluster_name(cluster)} marked reviewed.")


def mark_checked(ids: Sequence[str]) -> None:
    """The images on this page were looked at: the queue moves on to the next ones."""
    if _mark([f"sample:{sid}" for sid in ids], f"{len(ids)} image(s) marked checked."):
        get_state().review.page = 1


# -- re-train with the corrections held fixed ------------------------------------------------

def retrain_available() -> bool:
    return importlib.util.find_spec("core.retrain") is not None


RETRAIN_REFINE = {"start": "Where this run's RUC started", "current": "This run's labels"}


def start_retrain(algo: str, refine: str = "start") -> None:
    s, cfg = get_state(), settings()
    if s.run_id is None or not retrain_available():
        return
    run_id, workspace = s.run_id, cfg.workspace
    params = dict(s.algo_params.get(algo, {})) or None

    def work(report: engine.Report, should_stop: engine.ShouldStop) -> int:
        from core.retrain import retrain

        def progress(stage: str, frac: float, msg: str) -> None:
            if stage == "cluster" and msg.startswith("{"):
                msg = engine._epoch_message(msg)
            report(frac if stage in ("features", "cluster") else None, f"{stage}: {msg}")

        return retrain(workspace, run_id, algo=algo, params=params, refine=refine, progress=progress,
                       should_stop=should_stop).run_id

    start_job("retrain", f"Re-training run #{run_id} with {algo.upper()}", work, data=s.data, parent=run_id)


# -- export ----------------------------------------------------------------------------------

def export_bytes(workspace: Path, run_id: int, fmt: str) -> bytes:
    """The export file's bytes (for a download button; built when the person clicks). Built in
    memory: nothing is written, so nothing can land in the workspace or any other folder."""
    from core.export import render_export

    with Store(workspace) as store:
        return render_export(store, run_id, fmt)


def default_export_path(run_id: int, fmt: str) -> str:
    """Under the first allowed folder that is not inside the workspace (exports never go there)."""
    cfg = settings()
    ws = cfg.workspace.resolve()
    root = next((r for r in cfg.allowed_roots if not (r == ws or r.is_relative_to(ws))), cfg.allowed_roots[0])
    return str(root / (f"clusterlens-run{run_id}" if fmt == "imagefolder" else f"clusterlens-run{run_id}.{fmt}"))


def save_export(fmt: str, text: str, overwrite: bool = False) -> None:
    """Write an export under the allowed folders. Where an earlier export is there, ask first;
    where something else is (a foreign file, an export edited since, the workspace), say why not at
    once, so "Replace" is offered only when replacing is allowed."""
    from core.export import check_target, export_run
    from ui.settings import allowed_folder

    s, cfg = get_state(), settings()
    rv = s.review
    rv.message, rv.error, rv.area = None, None, "export"
    try:
        path = allowed_folder(text, cfg)
        if overwrite and rv.confirm != (fmt, str(path)):
            overwrite = False                           # the confirmation was for another target
        with Store(cfg.workspace) as store:
            _, replaces = check_target(store, fmt, path, allowed_roots=cfg.allowed_roots)
            if replaces and not overwrite:
                rv.confirm = (fmt, str(path))
                return
            out = export_run(store, s.run_id, fmt, path, overwrite=overwrite, allowed_roots=cfg.allowed_roots)
    except ClusterLensError as e:
        rv.error, rv.confirm = str(e), None
        return
    rv.confirm = None
    rv.message = (f"Exported {out['n_samples']:,} images ({out['n_corrected']:,} corrected) in "
                  f"{out['clusters']} clusters to {out['path']}.")


def set_export_format(run_id: int, fmt: str) -> None:
    """A new format suggests a path of its own (a folder for ImageFolder, else a file)."""
    st.session_state["w_rv_exp_path"] = default_export_path(run_id, fmt)
    reset_confirmation()


def cancel_export() -> None:
    get_state().review.confirm = None


# -- internals -------------------------------------------------------------------------------

def _applied(log: list[dict[str, Any]]) -> dict[int, bool]:
    """Edit id → applied now (undo / redo replayed, as the engine does)."""
    on: dict[int, bool] = {}
    for e in log:
        if e["op"] == "undo":
            on[e["target"]] = False
        elif e["op"] == "redo":
            on[e["target"]] = True
        else:
            on[e["id"]] = True
    return on


def _redo_stack(log: list[dict[str, Any]]) -> list[int]:
    undone: list[int] = []
    for e in log:
        if e["op"] == "undo":
            undone.append(e["target"])
        elif e["op"] == "redo":
            undone.remove(e["target"])
        else:
            undone.clear()
    return undone


def reset_confirmation() -> None:
    """Editing the export target drops a pending "replace?" question."""
    rv = get_state().review
    rv.confirm = None
    rv.error = None



def outcome(area: str) -> None:
    """The last action's confirmation or error, where it belongs on the page."""
    rv = get_state().review
    if rv.area != area:
        return
    if rv.error:
        st.error(plain(rv.error))
    elif rv.message:
        st.success(plain(rv.message))
