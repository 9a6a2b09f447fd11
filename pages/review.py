"""Review: see the most doubtful images first, click to select, move them, fix whole clusters,
undo anything; then re-train with the corrections held fixed, and export."""
import pandas as pd
import streamlit as st

from core.errors import ClusterLensError
from core.review import OUTLIER
from ui import engine, enlarged, filters, keys, review
from ui.frame import frame
from ui.state import bind, settings
from ui.text import plain
from ui.tile_picker import tile_picker, tile_size_control
from ui.widgets import paged, param_controls, relabel_pick_lists

review.open_run_from_url()   # a reload starts a new session: ?run=N reopens the run
state, cfg = frame(), settings()
st.title("Review")
if state.data is None or state.run_id is None:
    st.info("Cluster the images first: the review corrects a finished run.")
    st.page_link("pages/cluster.py", label="Go to Cluster", icon=":material/arrow_back:")
    review.outcome("edit")
    runs = review.finished_runs(cfg.workspace)
    if runs:
        st.selectbox("…or open a finished run from the workspace", [r["id"] for r in runs], key="w_rv_open",
                     format_func=lambda i: next(f"#{r['id']} · {r['algo']}, k={r['k']}" for r in runs if r["id"] == i))
        st.button("Open", key="w_rv_open_run", on_click=lambda: review.open_run(st.session_state["w_rv_open"]))
    st.stop()

try:   # the run's own rows, by sample id, even if its folder changed since
    run_data = engine.run_data(cfg.workspace, state.run_id, engine.open_data(state.data, cfg.workspace))
except ClusterLensError as e:
    st.error(plain(e))
    st.stop()
ds = run_data.dataset
view = review.load_view(cfg.workspace, state.run_id)
rv = review.follow_run(state.run_id)
review.remember_in_url(view.run_id)
# Features of a changed folder have other rows than the run: ordering and splits go without them.
fkey = state.feature_info.key if state.feature_info and not run_data.changed else None
parent = f", re-trained from run #{view.parent_run}" if view.parent_run else ""
st.caption(f"Run #{view.run_id} ({view.algo}{parent}): {plain(state.data_label)} — {len(view.clusters)} clusters, "
           f"{view.n_corrected:,} image(s) corrected. Every change is saved the moment it is confirmed, "
           "and can be undone.")
checked = view.checked()
n_reviewed = sum(f"cluster:{c}" in view.reviewed for c in view.clusters)
st.progress(float(checked.mean()), text=f"Checked {int(checked.sum()):,} of {len(checked):,} images · "
                                       f"{n_reviewed} of {len(view.clusters)} clusters marked reviewed")
if run_data.changed:
    st.warning(plain(run_data.changed))
review.outcome("edit")

# -- the images: the queue or one cluster; click tiles to select ------------------------------
relabel_pick_lists("review", view.version, ("w_rv_cluster", "w_rv_target", "w_rv_rename_c", "w_rv_merge_a",
                                           "w_rv_merge_b", "w_rv_split_c"), set(review.move_targets(view)))
a, b = st.columns([3, 2])
a.radio("Show", list(review.VIEWS), index=list(review.VIEWS).index(rv.view), format_func=review.VIEWS.get,
        horizontal=True, **bind("w_rv_view", lambda s, v: review.set_view(v)))
choices = review.browse_choices(view)
cluster = rv.cluster if rv.cluster in choices else choices[0]
if rv.view == "cluster":
    b.selectbox("Cluster", choices, index=choices.index(cluster), format_func=view.label,
                **bind("w_rv_cluster", lambda s, v: review.set_cluster(v)))
rows = review.rows_to_show(view, rv.view, cluster, cfg.workspace, fkey)
truth = ds.labels if ds.has_labels and len(ds.labels) == len(view.labels) else None
class_names = (ds.class_names or [str(i) for i in range(int(truth.max()) + 1)]) if truth is not None else None
unclean = engine.unclean(str(cfg.workspace), view.run_id)
flt = filters.controls("rv", class_names, unclean is not None)
if flt.active():
    rows = rows[filters.mask(flt, view.confidence, view.corrected, truth, unclean)[rows]]
pager_key = f"w_rv_page_{rv.view}_{cluster}"
shown, page, pages = paged(rows, pager_key, rv.page, review.set_page)
page_ids = [ds.ids[r] for r in shown]
what = {"queue": "not yet corrected or checked, lowest confidence first",
        "odd": "not yet corrected or checked: RUC's unclean set first, then by low confidence and distance from "
               "the cluster's centre together",
        "sample": "not yet corrected or checked, in random order: a spot check also meets the mistakes the "
                  "model is sure of, and correcting a few of a wrongly placed group lets re-training move the rest",
        }.get(rv.view, f"in {plain(view.name(cluster))}, least confident first")
filtered = f" (filter: {plain(filters.describe(flt, class_names))})" if flt.active() else ""
st.caption(f"{len(rows):,} images {what}{filtered} — page {page} of {pages}. **Click** images to select them "
           "(shift-click selects a range); click again to deselect; **⤢** enlarges one.")
tile_picker(ds, review.tiles(view, shown, ds), rv.selected, ack=rv.pick_ack, on_pick=review.pick,
            key="rv_picker", empty="No image here is kept by the filter." if flt.active() else
            "Nothing left here: every image is checked or corrected.",
            size=tile_size_control(), on_open=enlarged.open_image, max_cluster=max(view.clusters, default=0),
            on_key=keys.review_handler(view.version, page, pages, view.clusters, review.set_page, pager_key))
st.caption(keys.SUMMARY)
with st.expander("Keyboard shortcuts"):
    st.markdown(keys.help_markdown())
enlarged.mount(ds, view.run_id, fkey)

s1, s2, s3, s4 = st.columns(4)
s1.button("Select this page", key="w_rv_select_page", on_click=review.select, args=(page_ids,), disabled=not page_ids)
s2.button("Clear selection", key="w_rv_clear", on_click=review.clear_selection, disabled=not rv.selected)
s3.button(f"Use the map selection ({len(state.selected_ids):,})", key="w_rv_take_map",
          on_click=review.take_map_selection, disabled=not state.selected_ids,
          help="The images selected with the lasso on the Explore page")
s4.button(f"Mark these {len(page_ids)} checked", key="w_rv_checked", on_click=review.mark_checked,
          args=(page_ids,), disabled=not page_ids, help="Looked at and fine: the queue moves on")

# -- act on the selection --------------------------------------------------------------------
st.markdown(f"**{len(rv.selected):,} image(s) selected**")
review.selection_panel(view, ds, rv.selected, page_ids)
m1, m2, m3 = st.columns([3, 2, 2], vertical_alignment="bottom")
m1.selectbox("Move the selection to", review.move_targets(view), format_func=view.label, key="w_rv_target")
m2.button(f"Move {len(rv.selected):,} selected", type="primary", key="w_rv_move", disabled=not rv.selected,
          on_click=lambda v=view.version: review.move_selected(v, st.session_state["w_rv_target"]))
m3.button("Mark as outliers", key="w_rv_outliers", disabled=not rv.selected,
          on_click=lambda v=view.version: review.move_selected(v, OUTLIER))
if rv.view == "cluster" and cluster != OUTLIER:
    done = f"cluster:{cluster}" in view.reviewed
    st.button(f"{plain(view.name(cluster))} is reviewed" if done else f"Mark {plain(view.name(cluster))} reviewed",
              key="w_rv_mark_cluster", disabled=done, on_click=review.mark_reviewed,
              args=(cluster, view.name(cluster)))

clusters_tab, history_tab, retrain_tab, export_tab = st.tabs(
    ["Clusters: rename, merge, split", "Undo and history", "Re-train with corrections", "Export"])

with clusters_tab:
    st.dataframe(pd.DataFrame(review.cluster_table(view)), hide_index=True)
    c = view.clusters
    r1, r2, r3 = st.columns([2, 3, 1], vertical_alignment="bottom")
    r1.selectbox("Cluster to rename", c, format_func=view.label, key="w_rv_rename_c")
    r2.text_input("New name", key="w_rv_name", placeholder="e.g. sevens")
    r3.button("Rename", key="w_rv_rename", on_click=lambda v=view.version: review.rename(
        v, st.session_state["w_rv_rename_c"], st.session_state.get("w_rv_name", "")))
    g1, g2, g3 = st.columns([2, 3, 1], vertical_alignment="bottom")
    g1.selectbox("Keep", c, format_func=view.label, key="w_rv_merge_a")
    g2.selectbox("and merge into it", c, index=min(1, len(c) - 1), format_func=view.label, key="w_rv_merge_b")
    g3.button("Merge", key="w_rv_merge", disabled=len(c) < 2, on_click=lambda v=view.version: review.merge(
        v, st.session_state["w_rv_merge_a"], st.session_state["w_rv_merge_b"]))
    X_ok = review.run_features(cfg.workspace, fkey, len(view.labels)) is not None
    p1, p2, p3 = st.columns([2, 3, 1], vertical_alignment="bottom")
    p1.selectbox("Split", c, format_func=view.label, key="w_rv_split_c")
    p2.number_input("into this many clusters (k-means on its members)", 2, 20, 2, key="w_rv_split_k")
    p3.button("Split", key="w_rv_split", disabled=not X_ok,
              help=None if X_ok else "Needs the run's features: extract them on the Features page",
              on_click=lambda v=view.version: review.split(
                  v, st.session_state["w_rv_split_c"], int(st.session_state["w_rv_split_k"]), fkey))

with history_tab:
    last, nxt = view.last_edit("undo"), view.last_edit("redo")
    u1, u2 = st.columns(2)
    u1.button(f"Undo: {plain(review.describe(last, view))}" if last else "Undo", key="w_rv_undo",
              icon=":material/undo:",
              disabled=not view.can_undo, on_click=review.undo, args=(view.version,))
    u2.button(f"Redo: {plain(review.describe(nxt, view))}" if nxt else "Redo", key="w_rv_redo",
              icon=":material/redo:",
              disabled=not view.can_redo, on_click=review.redo, args=(view.version,))
    st.markdown("**Last edits**")
    if view.edits:
        st.dataframe(pd.DataFrame(review.recent_edits(view)), hide_index=True)
    else:
        st.caption("No edits yet.")
    picks = review.history_choices(view, ds, rv.selected)
    st.selectbox("A sample's history", picks, index=picks.index(rv.history_id) if rv.history_id in picks else None,
                 placeholder="Pick a selected or corrected image", key="w_rv_history",
                 on_change=lambda: review.set_history(st.session_state["w_rv_history"]))
    if rv.history_id in picks:
        hist = review.sample_history(cfg.workspace, view.run_id, rv.history_id, view)
        if hist:
            st.dataframe(pd.DataFrame(hist), hide_index=True)
        else:
            st.caption(f"{plain(rv.history_id)} was never edited: it is where the clustering put it.")

with retrain_tab:
    st.caption(f"Train DAC or RUC again with the {view.n_corrected:,} corrected image(s) held at their corrected "
               "cluster (outliers stay out); the result is a new run and this one keeps its edits.")
    st.caption("Re-training pays most when a kind of image sits as a group in another kind's cluster: a few "
               "corrected members move the rest. Compare the new run with this one on the Cluster page, side by "
               "side, before keeping it.")
    if not review.retrain_available():
        st.warning("Re-training needs core/retrain.py, which this build does not have yet.")
    else:
        algos = engine.algorithms()
        algo = st.selectbox("Algorithm", review.RETRAIN_ALGOS, key="w_rv_algo",
                            index=review.RETRAIN_ALGOS.index(view.algo) if view.algo in review.RETRAIN_ALGOS else 0)
        if algo == "ruc" and view.algo == "ruc":     # only a RUC run has a RUC start to go back to
            st.radio("RUC starts from (your corrections applied)", list(review.RETRAIN_REFINE),
                     format_func=review.RETRAIN_REFINE.get, key="w_rv_refine", horizontal=True,
                     help="Where this run's RUC started: no drift from RUC's own output (Fashion-MNIST, 1,000 "
                          "doubtful tiles: 0.829 against 0.817). This run's labels: RUC's output kept as the "
                          "start (digits, 200 doubtful tiles: 0.964 against 0.927). Do not compare the two by "
                          "confidence or RUC's clean set: from this run's labels both rose on Fashion-MNIST while "
                          "ACC fell. bench/RESULTS.md, \"The correction loop\".")
        with st.expander(f"{algo} parameters"):
            param_controls(algo, algos[algo])
        busy = state.job is not None and state.job.running
        st.button(f"Re-train with {algo.upper()}", type="primary", key="w_rv_retrain", disabled=busy,
                  on_click=lambda: review.start_retrain(st.session_state["w_rv_algo"],
                                                        st.session_state.get("w_rv_refine") or "start"))

with export_tab:
    st.caption("The current clusters with every correction (undone edits left out).")
    d1, d2 = st.columns(2)
    d1.download_button("Download CSV", lambda: review.export_bytes(cfg.workspace, view.run_id, "csv"),
                       file_name=f"clusterlens-run{view.run_id}.csv", mime="text/csv", key="w_rv_csv",
                       on_click="ignore", icon=":material/download:")
    d2.download_button("Download JSON", lambda: review.export_bytes(cfg.workspace, view.run_id, "json"),
                       file_name=f"clusterlens-run{view.run_id}.json", mime="application/json", key="w_rv_json",
                       on_click="ignore", icon=":material/download:")
    st.markdown("**Save on the server**, under " + ", ".join(plain(r) for r in cfg.allowed_roots))
    fmt = st.radio("Format", list(review.EXPORT_FORMATS), format_func=review.EXPORT_FORMATS.get, horizontal=True,
                   key="w_rv_exp_fmt",
                   on_change=lambda: review.set_export_format(view.run_id, st.session_state["w_rv_exp_fmt"]))
    if "w_rv_exp_path" not in st.session_state:
        review.set_export_format(view.run_id, fmt)
    st.text_input("Path", key="w_rv_exp_path", on_change=review.reset_confirmation)
    st.button("Save", key="w_rv_save", on_click=lambda: review.save_export(
        st.session_state["w_rv_exp_fmt"], st.session_state["w_rv_exp_path"]))
    review.outcome("export")
    if rv.confirm is not None:
        st.warning(f"{plain(rv.confirm[1])} already holds an earlier ClusterLens export. Replace it with this one?")
        o1, o2 = st.columns(2)
        o1.button("Replace", type="primary", key="w_rv_replace",
                  on_click=review.save_export, args=(rv.confirm[0], rv.confirm[1], True))
        o2.button("Cancel", key="w_rv_cancel", on_click=review.cancel_export)
