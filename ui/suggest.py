"""The Cluster page's k suggestion (core.cluster.suggest_k): a cached engine call, the criterion's
chart over k with the suggested k marked, and a button that puts that k on the slider."""
from __future__ import annotations

from pathlib import Path

import plotly.graph_objects as go
import streamlit as st

from core.cluster import suggest_k as engine_suggest
from core.cluster.suggest_k import KSuggestion
from core.config import ClusterConfig, FeatureConfig
from core.data.base import ImageDataset
from core.errors import ClusterLensError
from ui.engine import FeatureInfo
from ui.state import set_cluster
from ui.text import plain

K_MAX = 20   # the suggestion's range is 2..20 (or less: the slider's and the images' bound)


def k_suggestion(ds: ImageDataset, info: FeatureInfo, cluster: ClusterConfig, workspace: Path,
                 slider_max: int) -> None:
    """Under the k slider: the criterion per k for the space this page clusters in, and "Use k = N"."""
    k_max = min(K_MAX, slider_max, len(ds) - 1)
    if k_max < 2:
        return   # three images or fewer: nothing to choose between
    # On request only: k-means for every k takes seconds to a minute on a busy machine, and the
    # page must not hold the Run button back meanwhile.
    if not st.toggle("Suggest k", key="w_suggest_k",
                     help="k-means for each k from 2 to 20 on these features; the best by silhouette, no labels"):
        return
    if cluster.reduce.startswith("umap") and not _reduction_cached(workspace, info.key, cluster):
        # UMAP of many images takes a minute: the run with it computes and caches it, then this shows
        st.caption("A suggested k shows here once this UMAP reduction is cached (the first run with it does that).")
        return
    try:
        s = _suggest(str(workspace), info.key, cluster.reduce, cluster.seed, k_max, info.features.join, _ds=ds,
                     _features=info.features)
    except ClusterLensError as e:
        st.caption(f"No suggested k: {plain(e)}")
        return
    st.plotly_chart(chart(s, cluster.k), key="w_suggest_k_chart", config={"displayModeBar": False})
    st.button(f"Use k = {s.k}", key="w_use_suggested_k", on_click=use_k, args=(s.k,), disabled=s.k == cluster.k,
              help=f"Suggested without labels: the {s.criterion.name} of k-means ({s.criterion.meaning}) is "
                   f"{'highest' if s.criterion.higher_is_better else 'lowest'} at k = {s.k}, on {s.n_samples:,} "
                   f"images ({s.seconds:.1f} s). A starting point: look at the clusters before trusting it.")


def use_k(k: int) -> None:
    """The button: k on the slider (its widget key too, or the browser would send the old value back)
    and a re-cluster, as moving the slider does."""
    st.session_state["w_k"] = int(k)
    set_cluster(k=int(k))


@st.cache_data(show_spinner="Suggesting k…", max_entries=32)
def _suggest(workspace: str, feature_key: str, reduce: str, seed: int, k_max: int, join: tuple[str, ...], *,
             _ds: ImageDataset, _features: FeatureConfig) -> KSuggestion:
    """Keyed by the features' content key, the spaces joined to them, the reduction and the seed: the
    page's reruns never redo it."""
    return engine_suggest.suggest_k_for(_ds, _features, workspace, reduce=reduce, seed=seed, k_max=k_max)


def _reduction_cached(workspace: Path, feature_key: str, cluster: ClusterConfig) -> bool:
    from core.pipeline import reduced_path

    return reduced_path(Path(workspace) / "reduced", feature_key, cluster).is_file()


def chart(s: KSuggestion, current_k: int) -> go.Figure:
    """The criterion over k (a line), the suggested k (a star) and the slider's k (a dotted line)."""
    best = s.scores[s.ks.index(s.k)]
    fig = go.Figure([
        go.Scatter(x=list(s.ks), y=list(s.scores), mode="lines+markers", name=s.criterion.name,
                   line=dict(color="#4C78A8"), marker=dict(size=5),
                   hovertemplate="k = %{x}: %{y:.3f}<extra></extra>"),
        go.Scatter(x=[s.k], y=[best], mode="markers+text", name="suggested", text=[f"k = {s.k}"],
                   textposition="top center", marker=dict(symbol="star", size=14, color="#F58518"),
                   hovertemplate="suggested k = %{x}: %{y:.3f}<extra></extra>"),
    ])
    if s.ks[0] <= current_k <= s.ks[-1]:
        fig.add_vline(x=current_k, line=dict(color="#888", dash="dot", width=1))
    fig.update_layout(height=190, margin=dict(l=10, r=10, t=24, b=10), showlegend=False,
                      xaxis=dict(title="k", dtick=2), yaxis=dict(title=s.criterion.name))
    return fig
