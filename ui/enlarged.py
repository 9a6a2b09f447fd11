"""A closer look at one image: enlarged, with its cluster, confidence, true label (when known),
its correction history and its nearest neighbours in the run's space, in a dialog.

A tile's enlarge button (ui/tile_picker.py) calls :func:`open_image` as a callback; the page's
:func:`mount` then draws the dialog on the same run. Closing it (the ✕, Escape, a click outside or
"Close") clears :attr:`AppState.enlarged`, so the next rerun does not open it again.
Everything shown is the run's *current* state (the run plus its edit log), as on the Review page.
"""
from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

from core.data.base import ImageDataset
from ui import engine
from ui.figures import colour
from ui.state import get_state, settings
from ui.text import plain
from ui.widgets import Tile, image_grid

BIG_PX = 280
N_NEIGHBOURS = 8


def open_image(sample_id: str) -> None:
    get_state().enlarged = str(sample_id)


def close() -> None:
    get_state().enlarged = None


@dataclass(frozen=True)
class Facts:
    """What the enlarged view says about one image (built without Streamlit; tested directly)."""

    sample_id: str
    row: int
    cluster: str          # the cluster's name ("outliers" for -1)
    cluster_id: int
    confidence: float
    truth: str | None     # the true class, when the dataset has one for this image
    corrected: bool

    def lines(self) -> list[str]:
        out = [f"Cluster: {self.cluster}" + (" (corrected)" if self.corrected else ""),
               f"Confidence: {self.confidence:.2f}"]
        if self.truth is not None:
            out.append(f"True label: {self.truth}")
        return out


def facts(view: Any, ds: ImageDataset, row: int) -> Facts:
    """``view``: a ui.review.ReviewView of the run (current labels and names)."""
    c = int(view.labels[row])
    truth = None
    if ds.has_labels and int(ds.labels[row]) >= 0:
        t = int(ds.labels[row])
        truth = ds.class_names[t] if ds.class_names and t < len(ds.class_names) else str(t)
    return Facts(sample_id=ds.ids[row], row=int(row), cluster="outliers" if c < 0 else view.name(c),
                 cluster_id=c, confidence=float(view.confidence[row]), truth=truth,
                 corrected=bool(view.corrected[row]))


@st.cache_data(show_spinner=False, max_entries=512)
def neighbours(workspace: str, run_id: int, feature_key: str, row: int, k: int = N_NEIGHBOURS
               ) -> tuple[np.ndarray, np.ndarray, str]:
    """(rows, distances, which space) of ``row``'s nearest neighbours in the space the run clustered
    in (its cached reduction, else its features); empty when the features are not at hand. Cached:
    a finished run's space never changes."""
    from core.config import ClusterConfig
    from core.neighbours import METRICS, nearest, run_space
    from core.pipeline import reduced_path
    from ui.review import features

    rec = engine.run_record(workspace, run_id)
    cfg = (rec.get("config") or {}).get("cluster") or {}
    reduce, seed = str(cfg.get("reduce") or "none"), int(cfg.get("seed") or 0)
    X = features(workspace, feature_key) if feature_key else None
    path = reduced_path(Path(workspace) / "reduced", feature_key, ClusterConfig(reduce=reduce, seed=seed)) \
        if feature_key else None
    Z, what = run_space(X, reduce, path)
    if Z is None or not 0 <= row < len(Z):
        return np.zeros(0, np.int64), np.zeros(0), ""
    metric = cfg.get("metric") if cfg.get("metric") in METRICS else "euclidean"
    rows, dist = nearest(np.asarray(Z), row, k, metric=metric)
    return rows, dist, f"{what}, {metric}"


def mount(ds: ImageDataset, run_id: int, feature_key: str | None) -> None:
    """Draw the enlarged view when one is open (call once per page, after the tiles)."""
    sid = get_state().enlarged
    if sid is None:
        return
    row = engine.id_index(ds.fingerprint, ds).get(sid)
    if row is None:   # another dataset or run since: nothing to show
        close()
        return
    _dialog(ds, run_id, feature_key, sid, row)


@st.dialog("A closer look", width="large", on_dismiss=close)
def _dialog(ds: ImageDataset, run_id: int, feature_key: str | None, sid: str, row: int) -> None:
    from ui import review

    cfg = settings()
    view = review.load_view(cfg.workspace, run_id)
    if len(view.labels) != len(ds):
        st.warning("This run's images are not the opened dataset's: nothing to show.")
        return
    f = facts(view, ds, row)
    left, right = st.columns([3, 4])
    with left:
        uri = engine.thumb_uri(ds.fingerprint, row, BIG_PX, ds)
        st.html(f'<img class="cl-big" data-sample-id="{html.escape(sid)}" alt="{html.escape(sid)}" src="{uri}" '
                f'style="width:{BIG_PX}px;height:{BIG_PX}px;object-fit:contain;image-rendering:pixelated;'
                f'border-radius:6px;border:4px solid {colour(f.cluster_id) if f.cluster_id >= 0 else "#888"};'
                f'background:#111"/>')
        st.caption(plain(sid))
    with right:
        st.markdown("  \n".join(f"**{plain(line.split(': ', 1)[0])}:** {plain(line.split(': ', 1)[1])}"
                                for line in f.lines()))
        hist = review.sample_history(cfg.workspace, run_id, sid, view)
        st.markdown("**History**")
        if hist:
            import pandas as pd

            st.dataframe(pd.DataFrame(hist), hide_index=True, key="enlarged_history")
        else:
            st.caption("Never edited: it is where the clustering put it.")
    rows, dist, where = neighbours(str(cfg.workspace), run_id, feature_key or "", row)
    st.markdown(f"**Nearest neighbours** ({plain(where)})" if len(rows) else "**Nearest neighbours**")
    if not len(rows):
        st.caption("Needs the run's features: extract them on the Features page.")
    else:
        tiles = []
        for r, d in zip(rows.tolist(), dist.tolist(), strict=True):
            c = int(view.labels[r])
            name = "outliers" if c < 0 else view.name(c)
            tiles.append(Tile(row=r, caption=f"{name} · {float(view.confidence[r]):.2f}",
                              tooltip=f"{ds.ids[r]} · {name} · distance {d:.3g}",
                              colour="#888888" if c < 0 else colour(c)))
        st.html("<style>#enlarged-neighbours figcaption{white-space:normal;overflow-wrap:anywhere}"
                "#enlarged-neighbours{grid-template-columns:repeat(auto-fill,minmax(104px,1fr))}</style>")
        image_grid(ds, tiles, size=72, grid_id="enlarged-neighbours")
        same = sum(int(view.labels[r]) == f.cluster_id for r in rows.tolist())
        st.caption(f"{same} of {len(rows)} neighbours are in {plain(f.cluster)}.")
    # the callback closes it before a full rerun; in the browser only this dialog reruns, so rerun all
    if st.button("Close", key="w_enlarged_close", on_click=close):
        st.rerun()


# -- Explore's galleries are plain HTML (ui.widgets.image_grid): a click there opens the view too --

_OPENER_JS = """
export default function (component) {
  const { data, setTriggerValue } = component;
  const onClick = (ev) => {
    const el = ev.target && ev.target.closest ? ev.target.closest('[data-sample-id]') : null;
    if (!el || !el.closest(data.grids)) return;
    setTriggerValue('open', { id: el.getAttribute('data-sample-id') });
  };
  document.addEventListener('click', onClick);
  let style = document.getElementById('cl-opener-style');
  if (!style) {
    style = document.createElement('style'); style.id = 'cl-opener-style'; document.head.appendChild(style);
  }
  style.textContent = data.grids.split(',').map(s => s.trim() + ' [data-sample-id]').join(',') +
    '{cursor:zoom-in}';
  return () => document.removeEventListener('click', onClick);
}
"""

_opener = st.components.v2.component("clusterlens.grid_opener", js=_OPENER_JS)


def click_to_open(grids: str, key: str = "grid_opener") -> None:
    """A click on any tile inside the elements matching ``grids`` (a CSS selector list, e.g.
    ``"#cluster-grid, #selection-grid"``) opens that image's enlarged view."""
    def opened() -> None:
        value = (st.session_state.get(key) or {}).get("open")
        if isinstance(value, dict) and isinstance(value.get("id"), str):
            open_image(value["id"])

    _opener(key=key, data={"grids": grids}, on_open_change=opened)
