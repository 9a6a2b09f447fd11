"""Explore: a 2-D map of the images; select a region to see exactly those images; browse each cluster."""
import numpy as np
import streamlit as st

from ui import bigmap, engine, enlarged, figures, filters, gallery, kept_map, review
from ui.frame import frame
from ui.hover_preview import hover_preview
from ui.state import MAP_METHODS, bind, set_gallery, set_map, set_selection, settings, start_map
from ui.text import plain
from ui.tile_picker import tile_px, tile_size_control
from ui.widgets import image_grid, paged, relabel_pick_lists

state, cfg = frame(), settings()
st.title("Explore")
if state.data is None or state.feature_info is None or state.run_id is None:
    st.info("Cluster the images first.")
    st.page_link("pages/cluster.py", label="Go to Cluster", icon=":material/arrow_back:")
    st.stop()

ds, info, run_id = engine.open_data(state.data, cfg.workspace), state.feature_info, state.run_id
changed = engine.run_data(cfg.workspace, run_id, ds).changed
if changed:   # the map and features are the folder's new rows, the run's labels its old ones
    st.warning(plain(changed) + " The map needs the run's own images: review the run on the Review page, "
               "or cluster the folder again.")
    st.stop()
view = review.load_view(cfg.workspace, run_id)   # the run's current labels: its edit log replayed
labels, confidence, name = view.labels, view.confidence, view.name
index = engine.id_index(ds.fingerprint, ds)
truth = ds.labels if ds.has_labels else None
class_names = ds.class_names or ([str(i) for i in range(int(truth.max()) + 1)] if truth is not None else None)
fixed = f", {view.n_corrected:,} image(s) corrected on the Review page" if view.n_corrected else ""
st.caption(f"Run #{run_id}: {plain(state.data_label)}, {len(view.clusters)} clusters{fixed}.")
unclean = engine.unclean(str(cfg.workspace), run_id)
flt = filters.controls("ex", class_names, unclean is not None)
keep = filters.mask(flt, confidence, view.corrected, truth, unclean)
if flt.active():
    st.caption(f"The filter ({plain(filters.describe(flt, class_names))}) keeps {int(keep.sum()):,} of "
               f"{len(keep):,} images: the map, the prototypes and the gallery show only those.")
flabels = np.where(keep, labels, filters.HIDDEN)   # galleries pick from the kept images only

# -- the map ---------------------------------------------------------------------------------
methods = dict(zip(MAP_METHODS, ["PCA (instant)", "t-SNE (keeps neighbours)", "UMAP (separates clusters)"],
                   strict=True))
colourings = ["cluster", "true label", "confidence"] if truth is not None else ["cluster", "confidence"]
a, b = st.columns(2)
a.radio("Map", list(methods), index=list(methods).index(state.map.method), format_func=methods.get, horizontal=True,
        **bind("w_map", lambda s, v: set_map(method=v)))
b.radio("Colour by", colourings, index=colourings.index(state.color_by) if state.color_by in colourings else 0,
        horizontal=True, **bind("w_colour", lambda s, v: setattr(s, "color_by", v)))

xy = engine.saved_map(cfg.workspace, info.key, state.map)
if xy is None:   # the run's own map (a run made in the CLI draws one), else draw it now
    xy = engine.run_map(cfg.workspace, run_id, state.map)
if xy is None:
    if state.job is None or not state.job.running:
        start_map()   # drawing a map is the page's first job; it persists in the workspace
        state.job.wait(cfg.job_wait_s)
        xy = engine.saved_map(cfg.workspace, info.key, state.map)
    if xy is None:   # the map shown before stays until the new one is ready (the job's panel reruns then)
        xy, kept = kept_map.last_map(cfg.workspace, info.key, run_id, state.map)
        if xy is None:
            st.rerun() if state.job and state.job.running else st.stop()
        st.caption(kept)
    else:
        kept_map.remember(info.key, state.map)
else:
    kept_map.remember(info.key, state.map)

ids = np.asarray(ds.ids, dtype=object)
if flt.active():   # the map draws the kept points only
    xy, ids = xy[keep], ids[keep]
m_labels, m_conf = (labels[keep], confidence[keep]) if flt.active() else (labels, confidence)
m_truth = truth[keep] if flt.active() and truth is not None else truth
if bigmap.use_bigmap(len(xy)):   # past this many points plotly's scatter froze the page (bench/RESULTS.md)
    bigmap.explore_map(xy, ids, state.color_by, m_labels, m_conf, m_truth, class_names, name=name,
                       on_select=set_selection, token=f"{run_id}|{state.map.method}|{state.map.seed}")
else:
    if state.color_by == "confidence":
        fig = figures.scatter(xy, ids, None, None, values=m_conf, value_name="confidence")
    elif state.color_by == "true label":
        fig = figures.scatter(xy, ids, m_truth, class_names, palette=figures.class_colour)
    else:
        fig = figures.scatter(xy, ids, m_labels, name)
    chart, preview = st.columns([5, 1])
    chart.plotly_chart(fig, key="map_chart", selection_mode=("points", "box", "lasso"),
                       on_select=lambda: set_selection(gallery.selected_ids(st.session_state.map_chart)),
                       config={"scrollZoom": True, "displaylogo": False})
    with preview:
        hover_preview(ds, index, lambda r: gallery.describe(r, labels, confidence, ds.ids, class_names, truth,
                                                            name=name), chart_key="map_chart")
    st.caption("**Hover** a point to see its image beside the map; **click** a point, or draw a lasso or box "
               "(toolbar), to see exactly the images inside it below. Double-click clears the selection.")

if state.selected_ids:
    rows = gallery.rows_of(state.selected_ids, index)
    st.subheader(f"Selection: {len(rows):,} image(s)")
    shown, _, _ = paged(rows, "w_sel_page", state.gallery.sel_page, lambda p: set_gallery(sel_page=p))
    image_grid(ds, gallery.tiles(shown, labels, confidence, ds.ids, class_names, truth, name=name,
                                 corrected=view.corrected), grid_id="selection-grid",
               size=96 if len(rows) <= 4 else 64)

# -- clusters --------------------------------------------------------------------------------
choices = review.browse_choices(view)   # current clusters (+ the outliers a person marked)
st.subheader("Clusters at a glance: the most typical images of each")
for c in view.clusters:
    n_kept = f" · {int((flabels == c).sum()):,} kept by the filter" if flt.active() else ""
    st.caption(f"{plain(name(c))} · {view.size(c):,} images{n_kept}")
    image_grid(ds, gallery.tiles(gallery.prototypes(flabels, confidence, c), labels, confidence, ds.ids, name=name,
                                 corrected=view.corrected), grid_id=f"proto-{c}", size=48)

st.subheader("Cluster gallery")
relabel_pick_lists("explore", view.version, ("w_gallery_cluster",), set(choices))
a, b = st.columns(2)
cluster = a.selectbox("Cluster", choices, index=choices.index(state.gallery.cluster)
                      if state.gallery.cluster in choices else 0, format_func=view.label,
                      **bind("w_gallery_cluster", lambda s, v: set_gallery(cluster=int(v), page=1)))
b.radio("Order", gallery.ORDERS, index=gallery.ORDERS.index(state.gallery.order), horizontal=True,
        **bind("w_gallery_order", lambda s, v: set_gallery(order=v, page=1)))
rows = gallery.cluster_rows(flabels, confidence, cluster, state.gallery.order)
shown, page, pages = paged(rows, f"w_gallery_page_{cluster}_{state.gallery.order}", state.gallery.page,
                           lambda p: set_gallery(page=p))
of = f" of {view.size(cluster):,} kept by the filter" if flt.active() else ""
st.caption(f"{plain(name(cluster))}: {len(rows):,}{of} images — showing {len(shown)} (page {page} of {pages}), "
           f"{state.gallery.order}.")
image_grid(ds, gallery.tiles(shown, labels, confidence, ds.ids, class_names, truth, name=name,
                             corrected=view.corrected), grid_id="cluster-grid", size=tile_px(state.tile_size))
tile_size_control("w_explore_tile_size")
st.caption("**Click** an image in a gallery for a closer look: enlarged, with its history and nearest neighbours.")
enlarged.click_to_open("#cluster-grid, #selection-grid, [id^='proto-']")
enlarged.mount(ds, run_id, info.key)
