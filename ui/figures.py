"""Plotly figure builders (pure functions of arrays: testable without a browser)."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

# Plotly's qualitative palettes joined: enough distinct colours for k up to ~50, then repeats.
_PALETTE = (
    "#636EFA #EF553B #00CC96 #AB63FA #FFA15A #19D3F3 #FF6692 #B6E880 #FF97FF #FECB52 "
    "#1F77B4 #FF7F0E #2CA02C #D62728 #9467BD #8C564B #E377C2 #7F7F7F #BCBD22 #17BECF "
    "#2E91E5 #E15F99 #1CA71C #FB0D0D #DA16FF #222A2A #B68100 #750D86 #EB663B #511CFB "
    "#00A08B #FB00D1 #FC0080 #B2828D #6C7C32 #778AAE #862A16 #A777F1 #620042 #1616A7"
).split()


def colour(i: int) -> str:
    return _PALETTE[i % len(_PALETTE)]


def cluster_sizes(labels: np.ndarray, confidence: np.ndarray, threshold: float) -> go.Figure:
    """Stacked bars per cluster: confident (≥ threshold) and doubtful samples.

    Samples a person marked as outliers (label -1, e.g. in a re-trained run) get their own bar.
    """
    labels = np.asarray(labels, dtype=np.int64)
    k = int(labels.max()) + 1 if len(labels) else 0
    keep = labels >= 0
    total = np.bincount(labels[keep], minlength=k)
    doubtful = np.bincount(labels[keep & (confidence < threshold)], minlength=k)
    x = [str(c) for c in range(k)]
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
                      xaxis_title="cluster", yaxis_title="images", legend=dict(orientation="h", y=1.15))
    return fig


def confusion(matrix: Sequence[Sequence[int]], class_names: Sequence[str] | None) -> go.Figure:
    """Rows: true classes; columns: clusters (as :func:`core.metrics.external_scores` returns it)."""
    m = np.asarray(matrix)
    rows = [str(class_names[i]) if class_names and i < len(class_names) else str(i) for i in range(m.shape[0])]
    cols = [str(j) for j in range(m.shape[1])]
    fig = go.Figure(go.Heatmap(z=m, x=cols, y=rows, colorscale="Blues", text=m, texttemplate="%{text}",
                               hovertemplate="class %{y} · cluster %{x}: %{z}<extra></extra>"))
    fig.update_layout(height=max(260, 26 * len(rows) + 80), margin=dict(l=10, r=10, t=30, b=10),
                      xaxis_title="cluster", yaxis_title="true class", yaxis_autorange="reversed")
    return fig


def scatter(xy: np.ndarray, ids: Sequence[str], groups: np.ndarray | None, names: Sequence[str] | None,
            values: np.ndarray | None = None, value_name: str = "") -> go.Figure:
    """A WebGL scatter; every point carries its sample id in ``customdata``.

    ``groups`` (int per point) draws one trace per group (cluster or true class); ``values``
    (float per point) draws one trace with a colour scale (confidence). Selections are read back
    through customdata, never point indices (those are per trace; see DESIGN.md).
    """
    ids = np.asarray(ids, dtype=object)
    traces: list[go.Scattergl] = []
    hover = "%{customdata}<extra>%{fullData.name}</extra>"
    if values is not None:
        traces.append(go.Scattergl(
            x=xy[:, 0], y=xy[:, 1], customdata=ids, mode="markers", name=value_name,
            marker=dict(size=4, color=values, colorscale="RdYlGn", cmin=0, cmax=1,
                        colorbar=dict(title=value_name, thickness=12)),
            hovertemplate="%{customdata}<br>" + value_name + " %{marker.color:.2f}<extra></extra>"))
    else:
        g = np.zeros(len(xy), dtype=np.int64) if groups is None else groups
        for c in np.unique(g):
            m = g == c
            label = "outliers" if c < 0 else names[c] if names is not None and c < len(names) else str(c)
            traces.append(go.Scattergl(
                x=xy[m, 0], y=xy[m, 1], customdata=ids[m], mode="markers", name=str(label),
                marker=dict(size=4, color=colour(int(c)) if c >= 0 else "#999999"), hovertemplate=hover))
    fig = go.Figure(traces)
    fig.update_layout(height=560, margin=dict(l=10, r=10, t=10, b=10), dragmode="lasso",
                      legend=dict(itemsizing="constant"), uirevision="map",
                      xaxis=dict(showticklabels=False, title=None), yaxis=dict(showticklabels=False, title=None))
    return fig


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
    fig.update_layout(height=280, margin=dict(l=10, r=10, t=30, b=10), legend=dict(orientation="h", y=1.15),
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
    fig.update_layout(height=300, margin=dict(l=10, r=10, t=30, b=10), legend=dict(orientation="h", y=1.2),
                      xaxis=dict(title=step, dtick=1 if len(x) <= 20 else None),
                      yaxis=dict(title="share", range=[0, 1.02]),
                      yaxis2=dict(title=cost or "", side="right", overlaying="y", showgrid=False))
    return fig
