"""Cluster: pick an algorithm and k; a settled change re-clusters the cached features and is kept as a run.
The run shown stays until the new one is ready; a newer setting replaces work that is still going."""
import pandas as pd
import streamlit as st

from core.config import METRICS
from ui import engine
from ui.frame import frame
from ui.route_view import route_panel
from ui.state import bind, set_cluster, set_compare, settings, start_cluster
from ui.suggest import k_suggestion
from ui.text import plain
from ui.widgets import not_run_yet, param_controls, run_view

state, cfg = frame(), settings()
st.title("Cluster")
if state.data is None or state.feature_info is None:
    st.info("Extract features first: clustering works on them, so changing k never re-extracts.")
    st.page_link("pages/features.py", label="Go to Features", icon=":material/arrow_back:")
    st.stop()

ds = engine.open_data(state.data, cfg.workspace)
algos = engine.algorithms()
c = state.cluster
st.caption(f"Data: **{plain(state.data_label)}** · features: {state.feature_info.features.backbone}, "
           f"{state.feature_info.dim}-d. Moving k, the metric, the reduction or the seed re-clusters once the "
           "control settles; the run shown stays until the new one is ready.")
if state.route is not None:
    route_panel(state.route, state.feature_info.features, c.reduce)

left, mid, right = st.columns([2, 3, 2])
with left:
    st.selectbox("Algorithm", list(algos), index=list(algos).index(c.algo) if c.algo in algos else 0,
                 **bind("w_algo", lambda s, v: set_cluster(rerun=False, algo=v)))
    st.selectbox("Metric", METRICS, index=METRICS.index(c.metric),
                 **bind("w_metric", lambda s, v: set_cluster(metric=v)))
with mid:
    k_max = max(2, min(len(ds), 200))
    st.slider("Number of clusters k", 2, k_max, value=min(c.k, k_max),
              help=f"At most {k_max} (bounded by the {len(ds):,} images)",
              **bind("w_k", lambda s, v: set_cluster(k=int(v))))
    k_suggestion(ds, state.feature_info, c, cfg.workspace, k_max)
    st.slider("Doubtful below confidence", 0.0, 1.0, value=state.threshold, step=0.05,
              help="Samples whose confidence is below this are counted (and sorted) as doubtful.",
              **bind("w_threshold", lambda s, v: setattr(s, "threshold", float(v))))
with right:
    reduces = list(dict.fromkeys(["none", "pca:50", "pca:20", "umap:10", c.reduce]))   # + an opened run's own
    st.selectbox("Reduce before clustering", reduces, index=reduces.index(c.reduce),
                 help="PCA to 50 dimensions makes k-means much faster with equal or better accuracy.",
                 **bind("w_reduce", lambda s, v: set_cluster(reduce=v)))
    st.number_input("Seed", 0, 2**31 - 1, value=c.seed, step=1, **bind("w_seed", lambda s, v: set_cluster(seed=int(v))))

with st.expander(f"{state.cluster.algo} parameters"):
    param_controls(state.cluster.algo, algos[state.cluster.algo])
busy = state.job is not None and state.job.running and state.job.kind == "cluster"
st.button("Run", type="primary", key="w_run", on_click=start_cluster, disabled=busy)
if busy and state.run_id is not None:   # the old result stays in view until the new one is adopted
    want = state.job.params.get("cluster")
    st.caption(f"Showing run #{state.run_id} until the new run"
               f"{f' ({want.algo}, k={want.k})' if want is not None else ''} is ready; "
               "moving a control again replaces it.")

if state.run_id is not None and not not_run_yet(str(cfg.workspace), state.run_id, c.algo):
    st.divider()
    run_view(str(cfg.workspace), state.run_id, ds.class_names, state.threshold, key="current")
    st.page_link("pages/explore.py", label="Next: explore the clusters", icon=":material/arrow_forward:")

done = [r for r in engine.runs(cfg.workspace, engine.dataset_id(cfg.workspace, ds, state.data.source))
        if r["status"] == "done"]
if len(done) > 0:
    st.divider()
    st.subheader(f"Kept runs ({len(done)})")
    table = pd.DataFrame([{"run": r["id"], "algorithm": r["algo"], "k": r["k"],
                           **{m: (r["scores"] or {}).get(m) for m in ("acc", "nmi", "ari", "silhouette",
                                                                       "davies_bouldin")}} for r in done])
    st.dataframe(table.dropna(axis=1, how="all"), hide_index=True)
if len(done) > 1:
    st.markdown("**Compare two runs side by side**")
    ids = [r["id"] for r in done]
    cols = st.columns(2)
    for i, col in enumerate(cols):
        with col:
            default = state.compare[i] if state.compare[i] in ids else ids[min(i, len(ids) - 1)]
            rid = st.selectbox(f"Run {'AB'[i]}", ids, index=ids.index(default), format_func=lambda r: f"#{r}",
                               **bind(f"w_compare_{i}", lambda s, v, i=i: set_compare(i, v)))
            run_view(str(cfg.workspace), rid, ds.class_names, state.threshold, key=f"compare_{i}",
                     narrow=True)
