"""The map for big runs: a server-side datashader image with server-side lasso and box selection.

Plotly's WebGL scatter ships every point (x, y and its id) to the browser; past
:func:`threshold` points the page froze (bench/bench_map_scale.py, bench/RESULTS.md "Browser map
at scale"). Here the browser gets one PNG of the current view, coloured by cluster, and a small
v2 component draws it on a canvas: the wheel zooms, a drag pans (Pan mode), lassos or boxes
(Lasso / Box mode). It sends back only the view it wants drawn (the server renders that range,
cached) and the polygon a person drew, in data coordinates; the server finds the points inside
(:func:`points_in_polygon`) and their sample ids go to the gallery exactly as the plotly map's do.

The pure functions (view, render, points in polygon) need no Streamlit and are unit-tested.
"""
from __future__ import annotations

import base64
import hashlib
import io
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

THRESHOLD_ENV = "CLUSTERLENS_BIGMAP_POINTS"
# Above this many points the Explore page draws this map instead of plotly's (measured: plotly's
# scattergl at 100k already blocked the main thread for seconds on the 2-core machine; see RESULTS).
DEFAULT_THRESHOLD = 50_000
WIDTH, HEIGHT = 900, 560
_CACHE_GRID = 10_000   # views are rounded to 1/10,000 of the full extent for the render cache


def threshold() -> int:
    """Point count above which the big map is used (``CLUSTERLENS_BIGMAP_POINTS`` overrides)."""
    raw = os.environ.get(THRESHOLD_ENV, "").strip()
    try:
        return int(raw) if raw else DEFAULT_THRESHOLD
    except ValueError:
        return DEFAULT_THRESHOLD


def use_bigmap(n_points: int) -> bool:
    return int(n_points) > threshold()


@dataclass(frozen=True)
class View:
    """A data range drawn on the canvas: x from x0 to x1, y from y0 (bottom) to y1 (top)."""
    x0: float
    x1: float
    y0: float
    y1: float

    def as_list(self) -> list[float]:
        return [self.x0, self.x1, self.y0, self.y1]

    @classmethod
    def parse(cls, raw: Any) -> View | None:
        """A view the browser sent ({x0, x1, y0, y1}); None when it is not a usable range."""
        try:
            v = cls(*(float(raw[k]) for k in ("x0", "x1", "y0", "y1")))
        except (KeyError, TypeError, ValueError):
            return None
        ok = all(np.isfinite(v.as_list())) and v.x1 > v.x0 and v.y1 > v.y0
        return v if ok else None


def full_view(xy: np.ndarray, pad: float = 0.03) -> View:
    """The whole map with a margin (a map of one point, or of one line, still gets an area)."""
    if len(xy) == 0:
        return View(-1.0, 1.0, -1.0, 1.0)
    lo, hi = np.nanmin(xy, axis=0).astype(float), np.nanmax(xy, axis=0).astype(float)
    span = np.maximum(hi - lo, 1e-9)
    lo, hi = lo - pad * span, hi + pad * span
    return View(float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1]))


def view_key(view: View, full: View) -> tuple[int, int, int, int]:
    """The render cache's key for ``view``: its corners on a grid of 1/10,000 of the full map, so
    a view that differs only by float noise (a pan of a fraction of a pixel) is drawn once."""
    sx, sy = (full.x1 - full.x0) / _CACHE_GRID, (full.y1 - full.y0) / _CACHE_GRID
    return (round((view.x0 - full.x0) / sx), round((view.x1 - full.x0) / sx),
            round((view.y0 - full.y0) / sy), round((view.y1 - full.y0) / sy))


def view_of_key(key: tuple[int, int, int, int], full: View) -> View:
    """The view a cache key stands for (what is actually drawn, so the browser places it exactly)."""
    sx, sy = (full.x1 - full.x0) / _CACHE_GRID, (full.y1 - full.y0) / _CACHE_GRID
    return View(full.x0 + key[0] * sx, full.x0 + key[1] * sx, full.y0 + key[2] * sy, full.y0 + key[3] * sy)


def canvas_width(raw: Any) -> int:
    """The image width the browser asked for (its canvas' width in device pixels), within
    300..2400; :data:`WIDTH` when it did not say."""
    try:
        w = int(raw["w"])
    except (KeyError, TypeError, ValueError):
        return WIDTH
    return min(max(w, 300), 2400)


def points_in_polygon(xy: np.ndarray, px: Sequence[float], py: Sequence[float]) -> np.ndarray:
    """Mask of the points inside the polygon (vertices ``px``, ``py``; closed implicitly).

    Even-odd rule (a ray to the right crosses the boundary an odd number of times), so concave
    and self-crossing lassos select what they enclose. Points outside the polygon's bounding box
    are ruled out first; the crossing test runs edge by edge, vectorised over the rest.
    """
    px, py = np.asarray(px, dtype=np.float64), np.asarray(py, dtype=np.float64)
    inside = np.zeros(len(xy), dtype=bool)
    if len(px) < 3 or len(px) != len(py) or len(xy) == 0:
        return inside
    x, y = xy[:, 0], xy[:, 1]
    cand = np.flatnonzero((x >= px.min()) & (x <= px.max()) & (y >= py.min()) & (y <= py.max()))
    if not len(cand):
        return inside
    cx, cy = x[cand].astype(np.float64), y[cand].astype(np.float64)
    odd = np.zeros(len(cand), dtype=bool)
    qx, qy = np.roll(px, 1), np.roll(py, 1)
    for ax, ay, bx, by in zip(px, py, qx, qy, strict=True):
        if ay == by:
            continue   # a horizontal edge never crosses a horizontal ray
        spans = (ay > cy) != (by > cy)
        cross_x = ax + (cy - ay) * (bx - ax) / (by - ay)
        odd ^= spans & (cx < cross_x)
    inside[cand[odd]] = True
    return inside


def nearest(xy: np.ndarray, x: float, y: float, rx: float, ry: float) -> int | None:
    """Row of the point nearest to (x, y) within the ellipse of radii ``rx``, ``ry`` (a few
    pixels of the view, in data units: the axes scale differently); None when none is that near."""
    if len(xy) == 0 or not (rx > 0 and ry > 0):
        return None
    near = np.flatnonzero((np.abs(xy[:, 0] - x) <= rx) & (np.abs(xy[:, 1] - y) <= ry))
    if not len(near):
        return None
    d = ((xy[near, 0] - x) / rx) ** 2 + ((xy[near, 1] - y) / ry) ** 2
    best = int(np.argmin(d))
    return int(near[best]) if d[best] <= 1.0 else None


def frame(xy: np.ndarray, groups: np.ndarray | None = None, values: np.ndarray | None = None) -> Any:
    """The points as the pandas frame datashader aggregates (build once per map, then render many)."""
    import pandas as pd

    cols: dict[str, Any] = {"x": np.ascontiguousarray(xy[:, 0], dtype=np.float32),
                            "y": np.ascontiguousarray(xy[:, 1], dtype=np.float32)}
    if groups is not None:
        g = np.asarray(groups, dtype=np.int64)
        cols["g"] = pd.Categorical(g, categories=np.unique(g).tolist())
    if values is not None:
        cols["v"] = np.asarray(values, dtype=np.float32)
    return pd.DataFrame(cols)


CONFIDENCE_CMAP = ["#D73027", "#FC8D59", "#FEE08B", "#D9EF8B", "#91CF60", "#1A9850"]   # RdYlGn, as plotly's


def render(df: Any, view: View, palette: Callable[[int], str], *, width: int = WIDTH, height: int = HEIGHT,
           spread: int = 2) -> np.ndarray:
    """RGBA image (height × width × 4, uint8, row 0 at the top) of ``view``: transparent where
    there is no point. With a ``g`` column each pixel takes the colour of the groups in it
    (``palette(g)``; a pixel of one group has exactly that group's colour), its opacity growing
    with the number of points (histogram-equalised); with a ``v`` column (0..1) the mean value
    on the red-to-green scale. ``spread`` grows each pixel by that many pixels where points are sparse."""
    import datashader as ds
    import datashader.transfer_functions as tf

    cv = ds.Canvas(plot_width=int(width), plot_height=int(height), x_range=(view.x0, view.x1),
                   y_range=(view.y0, view.y1))
    if "g" in df.columns:
        agg = cv.points(df, "x", "y", agg=ds.by("g", ds.count()))
        cats = [int(c) for c in df["g"].cat.categories]
        key = {c: palette(c) for c in cats}
        if int(agg.values.sum()) == 0:
            return np.zeros((int(height), int(width), 4), dtype=np.uint8)
        img = tf.shade(agg, color_key=key, how="eq_hist", min_alpha=150)
    else:
        agg = cv.points(df, "x", "y", agg=ds.mean("v"))
        if not np.isfinite(agg.values).any():
            return np.zeros((int(height), int(width), 4), dtype=np.uint8)
        img = tf.shade(agg, cmap=CONFIDENCE_CMAP, how="linear", span=(0.0, 1.0), min_alpha=255)
    if spread:
        img = tf.dynspread(img, threshold=0.5, max_px=int(spread))
    rgba = img.to_numpy().view(np.uint8).reshape(int(height), int(width), 4)
    return np.ascontiguousarray(rgba[::-1])   # datashader's row 0 is the bottom (y0)


def png_uri(rgba: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buf, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def legend(groups: np.ndarray, name: Callable[[int], str], palette: Callable[[int], str],
           outlier_colour: str) -> list[dict[str, Any]]:
    """One entry per group (by id; outliers, -1, last): its name, colour and size."""
    found, counts = np.unique(np.asarray(groups, dtype=np.int64), return_counts=True)
    rows = [{"name": "outliers" if c < 0 else str(name(int(c))), "colour": outlier_colour if c < 0 else palette(int(c)),
             "n": int(n), "g": int(c)} for c, n in zip(found, counts, strict=True)]
    return sorted(rows, key=lambda r: (r["g"] < 0, r["g"]))


# -- the Streamlit part ----------------------------------------------------------------------

_HTML = """<div class="cl-bigmap">
  <div class="cl-bar">
    <button type="button" data-mode="lasso">Lasso</button><button type="button" data-mode="box">Box</button>
    <button type="button" data-mode="pan">Pan</button><button type="button" data-act="reset">Reset view</button>
    <span class="cl-status"></span>
  </div>
  <canvas></canvas>
  <div class="cl-legend"></div>
</div>"""

_CSS = """
.cl-bigmap{font-size:12px;color:var(--st-text-color)}
.cl-bar{display:flex;gap:4px;align-items:center;margin-bottom:4px}
.cl-bar button{font-size:12px;padding:2px 10px;border:1px solid #bbb;border-radius:4px;background:#fff;color:#222;
  cursor:pointer}
.cl-bar button.on{background:#1F77B4;color:#fff;border-color:#1F77B4}
.cl-status{margin-left:8px;opacity:.75}
canvas{display:block;width:100%;height:auto;background:#fff;border:1px solid #e6e6e6;border-radius:4px;
  touch-action:none;cursor:crosshair}
canvas.pan{cursor:grab}
.cl-legend{display:flex;flex-wrap:wrap;gap:4px 12px;margin-top:4px}
.cl-legend i{display:inline-block;min-width:10px;height:10px;border-radius:5px;margin-right:4px;vertical-align:-1px}
"""

# Runs again on every data change: the view, mode and polygon live on the root between runs.
# Every view change draws at once from the last image (stretched), and asks the server for that
# range 200 ms after the last wheel or drag; the canvas' data-rendered says whether the image
# drawn is the server's rendering of the current view (tests and the bench wait for it).
_JS = """
export default function (component) {
  const { data, parentElement: root, setStateValue, setTriggerValue } = component;
  if (!data) return;
  const canvas = root.querySelector('canvas'), ctx = canvas.getContext('2d');
  const status = root.querySelector('.cl-status');
  const S = root.__bm || (root.__bm = { mode: 'lasso', view: null, token: null, poly: null, img: null,
                                        imgView: null, timer: null, drag: null });
  S.data = data;
  if (canvas.width !== data.width) { canvas.width = data.width; canvas.height = data.height; }
  if (S.token !== data.token || !S.view) { S.token = data.token; S.view = data.view.slice(); S.poly = data.poly; }
  if (!data.poly) S.poly = null;   // the server cleared the selection
  const same = (a, b) => !!(a && b) && a.every((v, i) => Math.abs(v - b[i]) <= 1e-9 * (1 + Math.abs(v)));
  const W = () => canvas.width, H = () => canvas.height;
  S.toData = (px, py) => { const v = S.view;
    return [v[0] + px / W() * (v[1] - v[0]), v[3] - py / H() * (v[3] - v[2])]; };
  S.toPx = (x, y) => { const v = S.view;
    return [(x - v[0]) / (v[1] - v[0]) * W(), (v[3] - y) / (v[3] - v[2]) * H()]; };
  S.evPx = (e) => { const r = canvas.getBoundingClientRect();
    return [(e.clientX - r.left) * W() / r.width, (e.clientY - r.top) * H() / r.height]; };
  S.draw = () => {
    const d = S.data;
    ctx.clearRect(0, 0, W(), H());
    if (S.img && S.imgView) {
      const [ax, ay] = S.toPx(S.imgView[0], S.imgView[3]), [bx, by] = S.toPx(S.imgView[1], S.imgView[2]);
      ctx.imageSmoothingEnabled = false;
      ctx.drawImage(S.img, ax, ay, bx - ax, by - ay);
    }
    const path = S.drag && S.drag.path ? S.drag.path : S.poly;
    if (path && path.x.length > 1) {
      ctx.beginPath();
      path.x.forEach((x, i) => { const [u, w] = S.toPx(x, path.y[i]); i ? ctx.lineTo(u, w) : ctx.moveTo(u, w); });
      ctx.closePath(); ctx.setLineDash([5, 4]); ctx.lineWidth = 1.5; ctx.strokeStyle = '#111';
      ctx.fillStyle = 'rgba(31,119,180,0.08)'; ctx.fill(); ctx.stroke(); ctx.setLineDash([]);
    }
    // fresh: the image drawn is the server's rendering of the view shown (the server rounds a
    // view it was asked for onto its cache grid, so the asked view counts as drawn too)
    const fresh = S.imgSrc === d.src && (same(S.imgView, S.view) || same(S.view, d.asked))
                  && Math.abs(S.wanted() - d.width) <= 8;
    canvas.dataset.rendered = fresh ? '1' : '0';
    canvas.dataset.view = JSON.stringify(S.view);
    status.textContent = fresh ? d.caption : 'drawing…';
  };
  S.ask = () => { clearTimeout(S.timer); S.draw();
    const [x0, x1, y0, y1] = S.view, w = S.wanted();
    S.timer = setTimeout(() => setStateValue('view', { x0, x1, y0, y1, w }), 200); };
  // the server draws as many pixels as the canvas shows (a narrower column, a wider screen)
  S.wanted = () => Math.round(Math.max(300, Math.min(2400, canvas.getBoundingClientRect().width
                                                         * (window.devicePixelRatio || 1))));
  S.pick = (poly) => setTriggerValue('lasso', poly);
  // the image the server sent, for the view it was drawn at
  if (S.imgSrc !== data.src) {
    const img = new Image(), src = data.src, view = data.view.slice();
    img.onload = () => { if (S.data.src !== src) return; S.img = img; S.imgView = view; S.imgSrc = src; S.draw(); };
    img.src = src;
  }
  S.draw();
  // a canvas shown narrower or wider than the image (first draw, a resized column): ask once per width
  S.fit = () => { const w = S.wanted();
    if (Math.abs(w - S.data.width) > 8 && S.askedW !== w) { S.askedW = w; S.ask(); } };
  S.fit();
  const chip = (g) => `background:${g.colour}` + (g.colour.startsWith('linear') ? ';width:60px' : '');
  root.querySelector('.cl-legend').innerHTML = (data.legend || []).map(g =>
    `<span><i style="${chip(g)}"></i>${g.label}</span>`).join('');
  S.setMode = (m) => { S.mode = m; canvas.classList.toggle('pan', m === 'pan');
    root.querySelectorAll('[data-mode]').forEach(b => b.classList.toggle('on', b.dataset.mode === m)); };
  S.setMode(S.mode);
  if (canvas.__bmBound) return;   // listeners once per canvas; they reach the latest run through S
  canvas.__bmBound = true;
  new ResizeObserver(() => S.fit()).observe(canvas);
  root.querySelectorAll('[data-mode]').forEach(b => b.addEventListener('click', () => S.setMode(b.dataset.mode)));
  root.querySelector('[data-act=reset]').addEventListener('click', () => { S.view = S.data.full.slice(); S.ask(); });
  canvas.addEventListener('wheel', (e) => {
    e.preventDefault();
    const [px, py] = S.evPx(e), [cx, cy] = S.toData(px, py);
    const f = Math.exp(Math.max(-300, Math.min(300, e.deltaY)) * 0.002), v = S.view;
    S.view = [cx - (cx - v[0]) * f, cx + (v[1] - cx) * f, cy - (cy - v[2]) * f, cy + (v[3] - cy) * f];
    S.ask();
  }, { passive: false });
  canvas.addEventListener('pointerdown', (e) => {
    if (e.button !== 0) return;
    canvas.setPointerCapture(e.pointerId);
    const p = S.evPx(e), [x, y] = S.toData(...p);
    S.drag = { mode: S.mode, start: p, view: S.view.slice(), x0: x, y0: y,
               path: S.mode === 'pan' ? null : { x: [x], y: [y] } };
  });
  canvas.addEventListener('pointermove', (e) => {
    const d = S.drag; if (!d) return;
    const p = S.evPx(e);
    if (d.mode === 'pan') {
      const v = d.view, dx = (p[0] - d.start[0]) / W() * (v[1] - v[0]), dy = (p[1] - d.start[1]) / H() * (v[3] - v[2]);
      S.view = [v[0] - dx, v[1] - dx, v[2] + dy, v[3] + dy]; S.draw();
    } else if (d.mode === 'box') {
      const [x, y] = S.toData(...p);
      d.path = { x: [d.x0, x, x, d.x0], y: [d.y0, d.y0, y, y] }; S.draw();
    } else {
      const n = d.path.x.length, last = S.toPx(d.path.x[n - 1], d.path.y[n - 1]);
      if (Math.hypot(p[0] - last[0], p[1] - last[1]) < 3) return;
      const [x, y] = S.toData(...p); d.path.x.push(x); d.path.y.push(y); S.draw();
    }
  });
  const end = () => {
    const d = S.drag; S.drag = null; if (!d) return;
    if (d.mode === 'pan') { S.ask(); return; }
    if (d.path && d.path.x.length >= 3) { S.poly = d.path; S.draw(); S.pick({ x: d.path.x, y: d.path.y }); return; }
    // a click (no drag): the point nearest to it, within 5 pixels
    const v = S.view, rx = 5 / W() * (v[1] - v[0]), ry = 5 / H() * (v[3] - v[2]);
    S.poly = null; S.draw(); S.pick({ x: [], y: [], click: [d.x0, d.y0, rx, ry] });
  };
  canvas.addEventListener('pointerup', end);
  canvas.addEventListener('pointercancel', end);
  canvas.addEventListener('dblclick', () => { S.poly = null; S.draw(); S.pick({ x: [], y: [] }); });
}
"""


def _component() -> Any:
    import streamlit as st

    global _COMPONENT
    if _COMPONENT is None:
        _COMPONENT = st.components.v2.component("clusterlens.bigmap", html=_HTML, css=_CSS, js=_JS)
    return _COMPONENT


_COMPONENT: Any = None


def big_map(xy: np.ndarray, ids: Sequence[str], token: str, on_select: Callable[[list[str]], None], *,
            groups: np.ndarray | None = None, values: np.ndarray | None = None,
            name: Callable[[int], str] = str, palette: Callable[[int], str] | None = None,
            key: str = "bigmap") -> None:
    """Mount the big map. ``token`` names what is drawn (run, map, colouring): the server-side
    caches are keyed by it. A lasso or box calls ``on_select`` with the sample ids inside, then
    reruns the whole page (the map itself is a fragment: pan and zoom rerun only it)."""
    import streamlit as st

    from ui import figures

    palette = palette or figures.colour
    legend_rows = legend(groups, name, palette, figures.OUTLIER_COLOUR) if groups is not None else [
        {"name": "confidence 0 → 1", "n": len(xy), "colour": f"linear-gradient(90deg,{','.join(CONFIDENCE_CMAP)})"}]

    def selected() -> None:
        raw = (st.session_state.get(key) or {}).get("lasso") or {}
        try:
            px, py = list(map(float, raw.get("x") or [])), list(map(float, raw.get("y") or []))
        except (TypeError, ValueError):
            px, py = [], []
        st.session_state[key + "_picked"] = True
        st.session_state[key + "_poly"] = {"x": px, "y": py} if len(px) >= 3 else None
        if len(px) >= 3 and len(px) == len(py):
            on_select([str(ids[i]) for i in np.flatnonzero(points_in_polygon(xy, px, py))])
            return
        try:
            row = nearest(xy, *map(float, raw.get("click") or []))
        except (TypeError, ValueError):
            row = None
        on_select([] if row is None else [str(ids[row])])

    _fragment(xy, token, groups, values, palette, legend_rows, key, selected)


def explore_map(xy: np.ndarray, ids: Sequence[str], color_by: str, labels: np.ndarray, confidence: np.ndarray,
                truth: np.ndarray | None = None, class_names: Sequence[str] | None = None, *,
                name: Callable[[int], str] | None = None, on_select: Callable[[list[str]], None], token: str,
                key: str = "bigmap") -> None:
    """The Explore page's map for a big run, coloured as the plotly map is (``color_by``: cluster,
    true label or confidence). ``token`` names the run and map; the arrays' digest is added, so
    labels changed on the Review page draw anew."""
    from core.review import cluster_name
    from ui import figures

    def digest(*arrays: np.ndarray) -> str:
        h = hashlib.blake2b(digest_size=8)
        for a in arrays:
            h.update(np.ascontiguousarray(a).tobytes())
        return h.hexdigest()

    if color_by == "confidence":
        big_map(xy, ids, f"{token}|confidence|{digest(xy, confidence)}", on_select, values=confidence, key=key)
    elif color_by == "true label" and truth is not None:
        names = list(class_names or [])
        big_map(xy, ids, f"{token}|truth|{digest(xy, truth)}", on_select, groups=truth, palette=figures.class_colour,
                name=lambda c: names[c] if 0 <= c < len(names) else str(c), key=key)
    else:
        big_map(xy, ids, f"{token}|cluster|{digest(xy, labels)}", on_select, groups=labels,
                name=name or cluster_name, key=key)


def _fragment_body(xy: np.ndarray, token: str, groups: np.ndarray | None, values: np.ndarray | None,
                   palette: Callable[[int], str], legend_rows: list[dict[str, Any]], key: str,
                   selected: Callable[[], None]) -> None:
    import streamlit as st

    if st.session_state.pop(key + "_picked", False):
        st.rerun()   # a selection changes the gallery below: the whole page redraws
    full = _cached_full(token, _xy=xy)
    raw = (st.session_state.get(key) or {}).get("view")
    if st.session_state.get(key + "_token") != token:   # another map or colouring: start whole
        st.session_state[key + "_token"] = token
        raw = None
    asked = View.parse(raw) or full
    vkey = view_key(asked, full)
    drawn = view_of_key(vkey, full)
    width = canvas_width(raw)
    height = round(width * HEIGHT / WIDTH)
    src = _image(token, vkey, width, height, _xy=xy, _groups=groups, _values=values, _palette=palette)
    n_in = len(xy)
    data = {"token": token, "src": src, "view": drawn.as_list(), "asked": asked.as_list(), "full": full.as_list(),
            "width": width, "height": height, "poly": st.session_state.get(key + "_poly"),
            "legend": [{"label": _html_text(f"{r['name']} ({r['n']:,})"), "colour": r["colour"]} for r in legend_rows],
            "caption": f"{n_in:,} points · wheel zooms · Pan drags · click a point, or draw a lasso or box, to see "
                       "its images below · double-click clears"}
    _component()(key=key, data=data, on_view_change=lambda: None, on_lasso_change=selected)


def _html_text(s: str) -> str:
    import html

    return html.escape(s)


_FRAGMENT: Any = None


def _fragment(*args: Any) -> None:
    import streamlit as st

    global _FRAGMENT
    if _FRAGMENT is None:
        _FRAGMENT = st.fragment(_fragment_body)
    _FRAGMENT(*args)


def _full_impl(token: str, _xy: np.ndarray) -> View:
    return full_view(_xy)


def _frame_impl(token: str, _xy: np.ndarray, _groups: np.ndarray | None, _values: np.ndarray | None) -> Any:
    return frame(_xy, _groups, _values)


def _image_impl(token: str, vkey: tuple[int, int, int, int], width: int, height: int, *, _xy: np.ndarray,
                _groups: np.ndarray | None, _values: np.ndarray | None, _palette: Callable[[int], str]) -> str:
    full = _cached_full(token, _xy=_xy)
    df = _cached_frame(token, _xy, _groups, _values)
    return png_uri(render(df, view_of_key(vkey, full), _palette, width=width, height=height))


class _Lazy:
    """A Streamlit cache built on first use, so that importing this module needs no Streamlit."""

    def __init__(self, fn: Callable[..., Any], kind: str, **kw: Any) -> None:
        self.fn, self.kind, self.kw, self.cached = fn, kind, kw, None

    def __call__(self, *a: Any, **kw: Any) -> Any:
        if self.cached is None:
            import streamlit as st

            deco = st.cache_resource if self.kind == "resource" else st.cache_data
            self.cached = deco(show_spinner=False, **self.kw)(self.fn)
        return self.cached(*a, **kw)


_cached_full = _Lazy(_full_impl, "data", max_entries=16)
_cached_frame = _Lazy(_frame_impl, "resource", max_entries=2)   # one frame holds every point
_image = _Lazy(_image_impl, "data", max_entries=64)
