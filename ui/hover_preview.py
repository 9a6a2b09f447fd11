"""Hover preview: the image of the map point under the cursor.

Plotly hover labels cannot hold an <img>, so a tiny v2 component listens to the map's plotly
events in the browser and reports only the hovered sample id; its fragment reruns alone, looks
the thumbnail up (cached) and sends back one image. Nothing is sent per point, so 100,000
points cost the same as ten.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import streamlit as st

from core.data.base import ImageDataset
from ui import engine

PREVIEW_PX = 160
HINT = "Hover a point on the map to see its image here."

_HTML = '<figure class="cl-hover"><img alt="" hidden/><figcaption></figcaption></figure>'

_CSS = """
.cl-hover{margin:0;display:flex;flex-direction:column;align-items:center;gap:6px;font-size:12px;
  color:var(--st-text-color);transition:opacity .15s}
.cl-hover img{width:160px;height:160px;object-fit:contain;image-rendering:pixelated;border-radius:6px;
  background:#111}
.cl-hover figcaption{text-align:center;overflow-wrap:anywhere;opacity:.8}
.cl-hover.cl-stale{opacity:.45}
"""

# Runs again on every data change; the component's cleanup runs only on unmount, so the
# listeners live on the chart (gd.__clHover) and are swapped, never stacked, on each run.
_JS = """
export default function (component) {
  const { data, parentElement: root, setStateValue } = component;
  const box = root.querySelector('.cl-hover');
  if (!box || !data) return;
  const img = box.querySelector('img'), cap = box.querySelector('figcaption');
  if (data.src) {
    img.src = data.src; img.alt = data.id; img.dataset.sampleId = data.id; img.hidden = false;
  } else {
    img.hidden = true; img.removeAttribute('src'); delete img.dataset.sampleId;
  }
  cap.textContent = data.caption || '';
  box.classList.remove('cl-stale');

  let timer = null;
  const onHover = (ev) => {
    const p = ev && ev.points && ev.points[0];
    let id = p ? p.customdata : null;
    if (Array.isArray(id)) id = id[0];
    if (id === null || id === undefined) return;
    id = String(id);
    box.classList.remove('cl-stale');
    clearTimeout(timer);
    if (id === data.id) return;   // already shown
    // Debounced: sweeping across a dense map must not queue one rerun per point.
    timer = setTimeout(() => setStateValue('hover', id), 90);
  };
  const onUnhover = () => { clearTimeout(timer); box.classList.add('cl-stale'); };
  // Plotly.purge (a rerun that redraws the chart) deletes the chart's on / removeListener
  // methods, and its listeners with them: only a live chart has listeners to take off.
  const detach = (gd) => {
    if (!gd || !gd.__clHover) return;
    if (typeof gd.removeListener === 'function') {
      gd.removeListener('plotly_hover', gd.__clHover.hover);
      gd.removeListener('plotly_unhover', gd.__clHover.unhover);
    }
    delete gd.__clHover;
  };
  const attach = () => {
    const gd = document.querySelector(data.chart);
    if (!gd || typeof gd.on !== 'function') return;   // not drawn (yet): quietly nothing
    if (gd.__clHover && gd.__clHover.hover === onHover) return;
    detach(gd);
    gd.on('plotly_hover', onHover);
    gd.on('plotly_unhover', onUnhover);
    gd.__clHover = { hover: onHover, unhover: onUnhover };
    root.__clChart = gd;
  };
  // The chart may draw after this component, or be replaced by a full rerun: re-check now and then.
  clearInterval(root.__clPoll);
  attach();
  root.__clPoll = setInterval(attach, 1000);
  return () => { clearInterval(root.__clPoll); detach(root.__clChart); };
}
"""

_component = st.components.v2.component("clusterlens.hover_preview", html=_HTML, css=_CSS, js=_JS)


def preview_data(ds: ImageDataset, index: Mapping[str, int], sample_id: str | None,
                 describe: Callable[[int], str], chart_selector: str) -> dict[str, Any]:
    """What the component shows: one image (or the hint) and where the chart is."""
    row = index.get(sample_id) if sample_id else None
    if row is None:
        return {"chart": chart_selector, "id": None, "src": None, "caption": HINT}
    return {"chart": chart_selector, "id": sample_id, "src": engine.thumb_uri(ds.fingerprint, row, PREVIEW_PX, ds),
            "caption": describe(row)}


@st.fragment
def hover_preview(ds: ImageDataset, index: Mapping[str, int], describe: Callable[[int], str], *,
                  chart_key: str, key: str = "map_hover") -> None:
    """The preview box for the plotly chart drawn with ``key=chart_key``; a hover reruns only this."""
    state = st.session_state.get(key) or {}
    hovered = state.get("hover") if isinstance(state, Mapping) else None
    data = preview_data(ds, index, hovered, describe, f".st-key-{chart_key} .js-plotly-plot")
    _component(key=key, data=data, on_hover_change=lambda: None)
