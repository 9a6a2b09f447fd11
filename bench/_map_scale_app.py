"""The page bench_map_scale.py measures: N synthetic points (10 Gaussian clusters, not images),
the map drawn exactly as the Explore page draws it (``MAPBENCH_MODE``: ``plotly``, today's
``figures.scatter`` in ``st.plotly_chart``; ``bigmap``, :func:`ui.bigmap.big_map`), and below it
the selection's ids as the gallery's tiles (``#selection-grid [data-sample-id]``, the first 60).

Run by the bench: ``MAPBENCH_N=100000 MAPBENCH_MODE=bigmap streamlit run bench/_map_scale_app.py``.
"""
from __future__ import annotations

import html
import os
import sys
from pathlib import Path

import numpy as np
import streamlit as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ui import bigmap, figures, gallery  # noqa: E402

N, MODE = int(os.environ.get("MAPBENCH_N", "100000")), os.environ.get("MAPBENCH_MODE", "bigmap")


@st.cache_resource
def points(n: int, k: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Synthetic map: ``k`` Gaussian blobs on a circle, ids ``synthetic/0000000``..."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    angle = 2 * np.pi * labels / k
    centres = np.stack([np.cos(angle), np.sin(angle)], 1) * 6
    xy = (centres + rng.normal(scale=1.2, size=(n, 2))).astype(np.float32)
    ids = np.asarray([f"synthetic/{i:07d}" for i in range(n)], dtype=object)
    return xy, ids, labels


def choose(ids: list[str]) -> None:
    st.session_state["sel"] = ids


xy, ids, labels = points(N)
st.title(f"Map bench: {N:,} synthetic points, {MODE}")
if MODE == "plotly":
    fig = figures.scatter(xy, ids, labels, [f"cluster {c}" for c in range(10)])
    st.plotly_chart(fig, key="map_chart", selection_mode=("points", "box", "lasso"),
                    on_select=lambda: choose(gallery.selected_ids(st.session_state.map_chart)),
                    config={"scrollZoom": True, "displaylogo": False})
else:
    bigmap.big_map(xy, ids, f"bench-{N}", choose, groups=labels, name=lambda c: f"cluster {c}")
sel = st.session_state.get("sel") or []
if sel:
    st.subheader(f"Selection: {len(sel):,} image(s)")
    st.html('<div id="selection-grid">' + "".join(
        f'<figure data-sample-id="{html.escape(s)}">{html.escape(s)}</figure>' for s in sel[:60]) + "</div>")
