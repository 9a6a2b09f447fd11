"""Plotly figure builders (pure functions of arrays: testable without a browser)."""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from core.review import cluster_name

# One colour per cluster on every page (map, tiles, bars): saturated and dark enough to stand out
# on the map's white ground (cluster 0 first: its blue has 4.6:1 contrast on white), no greys
# (grey is the outliers'), then repeats past 30 clusters.
_PALETTE = (
    "#1F77B4 #D62728 #2CA02C #FF7F0E #9467BD #8C564B #E377C2 #17BECF #BCBD22 #393B79 "
    "#AD494A #637939 #8C6D31 #843C39 #7B4173 #3182BD #E6550D #31A354 #756BB1 #A55194 "
    "#0B6E4F #C44E52 #4C72B0 #DD8452 #55A868 #8172B3 #937860 #DA8BC3 #CCB974 #64B5CD"
).split()
OUTLIER_COLOUR = "#999999"
# True classes get a palette of their own (Carto "Bold", none of the clusters' colours), so a map
# coloured by true label never reads as one coloured by cluster.
_CLASS_PALETTE = "#7F3C8D #11A579 #3969AC #F2B701 #E73F74 #80BA5A #E68310 #008695 #CF1C90 #F97B72 #4B4B8F".split()
MAP_BACKGROUND = "#FFFFFF"
# Legends go under the plot, below the x axis's title: above it or at the right they sat under
# Plotly's toolbar, which shows at the top right (issue 26).
LEGEND_BELOW = dict(orientation="h", yanchor="top", y=-0.3, x=0)


def colour(i: int) -> str:
    """The colour of cluster ``i`` everywhere (outliers, -1, are grey)."""
    return OUTLIER_COLOUR if int(i) < 0 else _PALETTE[int(i) % len(_PALETTE)]


def class_colour(i: int) -> str:
    """The colour of true class ``i`` (a map coloured by true label)."""
    return _CLASS_PALETTE[int(i) % len(_CLASS_PALETTE)]


def cluster_sizes(labels: np.ndarray, confidence: np.ndarray, threshold: float,
                  name: Callable[[int], str] = cluster_name) -> go.Figure:
    """Stacked bars per cluster: confident (≥ threshold) and doubtful samples; bars named by
    ``name`` (the clusters' one name, :func:`core.review.cluster_name`).

    Samples a person marked as outliers (label -1, e.g. in a re-trained run) get their own bar.
    """
    labels = np.asarray(labels, dtype=np.int64)
    keep = labels >= 0
    present = np.unique(labels[keep])            # a merge empties a cluster, a split adds one
    total = np.array([(labels == c).sum() for c in present], dtype=np.int64)
    doubtful = np.array([((labels == c) & (confidence < threshold)).sum() for c in present], dtype=np.int64)
    x = [name(int(c)) for c in present]
    n_out = int((~keep).sum())
    if n_out:
        x.append("outliers")
        total = np.append(total, n_out)
        doubtful = np.append(doubtful, int((~keep & (confidence < threshold)).sum()))
    fig = go.Figure([
        go.Bar(x=x, y=total - doubtful, name=f"confidence ≥ {threshold:.2f}", marker_color="#4C78A8"),
        go.Bar(x=x, y=doubtful, name="doubtful", marker_color="#F58518"),
    ])
    fig.update_layout(barmode="stack", height=280, margin=dict(l=10, r=10, t=30, b=10),
                      xaxis_title="cluster", yaxis_title="images", legend=LEGEND_BELOW)
    return fig


def confusion(matrix: Sequence[Sequence[int]], class_names: Sequence[str] | None) -> go.Figure:
    """Rows: true classes; columns: clusters (as :func:`core.metrics.external_scores` returns it)."""
    m = np.asarray(matrix)
    rows = [str(class_names[i]) if class_names and i < len(class_names) else str(i) for i in range(m.shape[0])]
    cols = [cluster_name(j) for j in range(m.shape[1])]
    fig = go.Figure(go.Heatmap(z=m, x=cols, y=rows, colorscale="Blues", text=m, texttemplate="%{text}",
                               hovertemplate="class %{y} · cluster %{x}: %{z}<extra></extra>"))
    fig.update_layout(height=max(260, 26 * len(rows) + 80), margin=dict(l=10, r=10, t=30, b=10),
                      xaxis_title="cluster", yaxis_title="true class", yaxis_autorange="reversed")
    return fig


def scatter(xy: np.ndarray, ids: Sequence[str], groups: np.ndarray | None,
            names: Sequence[str] | Mapping[int, str] | Callable[[int], str] | None,
            values: np.ndarray | None = None, value_name: str = "",
            palette: Callable[[int], str] = colour) -> go.Figure:
    """A WebGL scatter; every point carries its sample id in ``customdata``.

    ``groups`` (int per point) draws one trace per group (cluster or true class), named by
    ``names`` (by position, by id, or a function of the id) and coloured by ``palette`` (the
    clusters' :func:`colour`; :func:`class_colour` for true classes). The biggest group is drawn
    first so that a small one is never buried under it; the legend lists groups by id. ``values``
    (float per point) draws one trace with a colour scale (confidence). Selections are read back
    through customdata, never point indices (those are per trace; see DESIGN.md).
    """
    ids = np.asarray(ids, dtype=object)
    traces: list[go.Scattergl] = []
    hover = "%{customdata}<extra>%{fullData.name}</extra>"
    if values is not None:
        traces.append(go.Scattergl(
            x=xy[:, 0], y=xy[:, 1], customdata=ids, mode="markers", name=value_name,
            marker=dict(size=5, color=values, colorscale="RdYlGn", cmin=0, cmax=1,
                        colorbar=dict(title=value_name, thickness=12)),
            hovertemplate="%{customdata}<br>" + value_name + " %{marker.color:.2f}<extra></extra>"))
    else:
        g = np.zeros(len(xy), dtype=np.int64) if groups is None else np.asarray(groups, dtype=np.int64)
        found, counts = np.unique(g, return_counts=True)
        size = dict(zip(found.tolist(), counts.tolist(), strict=True))
        for c in sorted(size, key=lambda c: (c < 0, -size[c], c)):   # biggest first, the outliers last
            label = _group_name(c, names)
            traces.append(go.Scattergl(
                x=xy[g == c, 0], y=xy[g == c, 1], customdata=ids[g == c], mode="markers", name=label,
                legendrank=1000 + c, marker=dict(size=5, color=OUTLIER_COLOUR if c < 0 else palette(c)),
                hovertemplate=hover))
    fig = go.Figure(traces)
    # the legend below the map: at the right it sat under Plotly's toolbar (issue 26)
    fig.update_layout(height=560, margin=dict(l=10, r=10, t=30, b=10), dragmode="lasso",
                      legend=dict(itemsizing="constant", orientation="h", yanchor="top", y=-0.02, x=0),
                      uirevision="map", plot_bgcolor=MAP_BACKGROUND,
                      xaxis=dict(showticklabels=False, title=None, showgrid=False, zeroline=False),
                      yaxis=dict(showticklabels=False, title=None, showgrid=False, zeroline=False))
    return fig


def _group_name(c: int, names: Sequence[str] | Mapping[int, str] | Callable[[int], str] | None) -> str:
    if c < 0:
        return "outliers"
    if callable(names):
        return str(names(c))
    if isinstance(names, Mapping):
        return str(names.get(c, c))
    return str(names[c]) if names is not None and c < len(names) else str(c)


def training_curve(history: Sequence[dict], epochs: int | None = None) -> go.Figure:
    """Loss per finished epoch (line, left axis) over images/s (bars, right axis); ``epochs``
    fixes the x range so a live chart does not rescale as it grows."""
    x = [int(r["epoch"]) for r in history]
    last = max(epochs or 0, len(x), 1)
    fig = go.Figure([
        go.Bar(x=x, y=[float(r.get("images_per_s", 0.0)) for r in history], name="images/s",
               marker_color="#D0D7E2", hovertemplate="epoch %{x}: %{y:,.0f} images/s<extra></extra>"),
        # why the loss on the overlaying axis: Plotly draws an overlaying axis's traces on top
        go.Scatter(x=x, y=[float(r["loss"]) for r in history], name="loss", mode="lines+markers", yaxis="y2",
                   line=dict(color="#4C78A8", width=2), hovertemplate="epoch %{x}: loss %{y:.4f}<extra></extra>"),
    ])
    fig.update_layout(height=280, margin=dict(l=10, r=10, t=30, b=10), legend=LEGEND_BELOW,
                      xaxis=dict(title="epoch", range=[0.5, last + 0.5], dtick=1 if last <= 20 else None),
                      yaxis=dict(title="images/s", side="right", showgrid=False, rangemode="tozero"),
                      yaxis2=dict(title="loss", side="left", overlaying="y"))
    return fig


# Per-epoch shares a clusterer records (all in [0, 1]), in legend order: RUC's clean set, DAC's
# selected pairs, then the ground-truth scores (display only) when the dataset has labels.
_HISTORY_SHARES = {
    "clean_fraction": "clean set (share of images)", "clean_precision": "clean-set precision (ground truth)",
    "selected_fraction": "pairs selected", "mean_confidence": "mean confidence",
    "acc": "ACC (ground truth)", "nmi": "NMI (ground truth)", "ari": "ARI (ground truth)",
}


def run_history(history: Sequence[dict]) -> go.Figure | None:
    """A run's training history: shares per epoch (left axis, 0–1) and the loss — or k-means'
    inertia per iteration — on the right. None when there is nothing to draw."""
    step = "epoch" if history and "epoch" in history[0] else "iteration"
    rows = [r for r in history if step in r]
    if not rows:
        return None
    x = [int(r[step]) for r in rows]
    traces: list[go.Scatter] = []
    for key, name in _HISTORY_SHARES.items():
        ys = [r.get(key) for r in rows]
        if any(v is not None for v in ys):
            traces.append(go.Scatter(x=x, y=ys, name=name, mode="lines+markers",
                                     hovertemplate=f"{step} %{{x}}: %{{y:.3f}}<extra>{name}</extra>"))
    cost = "loss" if "loss" in rows[0] else "inertia" if "inertia" in rows[0] else None
    if cost:
        traces.append(go.Scatter(x=x, y=[r.get(cost) for r in rows], name=cost, yaxis="y2", mode="lines",
                                 line=dict(color="#888888", dash="dot"),
                                 hovertemplate=f"{step} %{{x}}: {cost} %{{y:.4g}}<extra></extra>"))
    fig = go.Figure(traces)
    fig.update_layout(height=300, margin=dict(l=10, r=10, t=30, b=10), legend=LEGEND_BELOW,
                      xaxis=dict(title=step, dtick=1 if len(x) <= 20 else None),
                      yaxis=dict(title="share", range=[0, 1.02]),
                      yaxis2=dict(title=cost or "", side="right", overlaying="y", showgrid=False))
    return fig
