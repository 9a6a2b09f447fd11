"""Tile picker: a grid of thumbnails where a click toggles an image in or out of the selection.

A small ``st.components.v2`` component. The browser keeps the selection while a person clicks
(the outline shows at once) and sends the whole selected set as one trigger event per click;
the Python side keeps the durable copy (AppState) through ``on_pick``. Every tile is a
``<button data-id="…" aria-pressed="…">``: the browser tests click ``[data-id="…"]``, and the
keyboard works (Tab, then Enter or Space). Shift-click selects the range since the last click.

Why the ``seq`` / ``ack`` pair: a click sends ``{ids, seq}`` (a browser timestamp) and the next
page draw returns the ``seq`` it has taken in as ``ack``. A redraw that is older than the last
click (the person clicked again while the page reran) must not wipe the newer clicks, so the
browser adopts the server's selection only when ``ack >= seq`` of its last click. Changes made
on the server (Clear, Select page, a move) are adopted as soon as every click is acknowledged.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from typing import Any

import streamlit as st

from core.data.base import ImageDataset
from ui import engine
from ui.widgets import Tile

PICK_PX = 72


PickTile = Tile   # the gallery's tile; ``mark`` is drawn as a badge here


_HTML = '<div class="cl-picker" role="group" aria-label="Images: click to select"></div>'

_CSS = """
.cl-picker{display:grid;grid-template-columns:repeat(auto-fill,minmax(var(--cl-w,82px),1fr));gap:8px;
  font-family:var(--st-font,sans-serif)}
.cl-pick{position:relative;margin:0;padding:3px 3px 2px;border:0;border-radius:6px;background:transparent;
  cursor:pointer;text-align:center;font-size:11px;color:var(--st-text-color,#333);outline:none;min-width:0}
.cl-pick img{display:block;margin:0 auto;width:var(--cl-px,72px);height:var(--cl-px,72px);object-fit:contain;
  image-rendering:pixelated;border-radius:4px;border:3px solid var(--cl-c,#ddd);background:#111}
.cl-pick span.cap{display:block;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.cl-pick:hover{background:rgba(128,128,128,.15)}
.cl-pick:focus-visible{box-shadow:0 0 0 2px #1c83e1}
.cl-pick[aria-pressed="true"]{background:rgba(255,75,75,.14);box-shadow:0 0 0 3px #ff4b4b}
.cl-pick[aria-pressed="true"]::after{content:"✓";position:absolute;top:4px;right:6px;width:20px;height:20px;
  line-height:20px;border-radius:50%;background:#ff4b4b;color:#fff;font-size:13px;font-weight:700}
.cl-pick .mark{position:absolute;top:4px;left:6px;font-size:12px;line-height:16px;background:#ffd54f;color:#000;
  border-radius:3px;padding:0 3px;font-weight:700}
.cl-empty{opacity:.7;font-size:13px}
"""

# Runs again on every data change; the selection and the last click's seq live on the root.
_JS = """
export default function (component) {
  const { data, parentElement: root, setTriggerValue } = component;
  const grid = root.querySelector('.cl-picker');
  if (!grid || !data) return;
  grid.style.setProperty('--cl-px', data.size + 'px');
  grid.style.setProperty('--cl-w', (data.size + 10) + 'px');

  const sig = data.tiles.map(t => t.id + '|' + t.caption + '|' + t.colour + '|' + t.mark).join('\\n');
  if (root.__sig !== sig) {                       // rebuild only when the tiles themselves change
    root.__sig = sig;
    grid.replaceChildren();
    if (!data.tiles.length) {
      const p = document.createElement('p'); p.className = 'cl-empty'; p.textContent = data.empty || '';
      grid.appendChild(p);
    }
    for (const t of data.tiles) {
      const b = document.createElement('button');
      b.type = 'button'; b.className = 'cl-pick'; b.dataset.id = t.id; b.title = t.tooltip || t.id;
      b.style.setProperty('--cl-c', t.colour);
      const img = document.createElement('img'); img.src = t.src; img.alt = t.id; img.draggable = false;
      const cap = document.createElement('span'); cap.className = 'cap'; cap.textContent = t.caption;
      b.append(img, cap);
      if (t.mark) {
        const m = document.createElement('span'); m.className = 'mark'; m.textContent = t.mark; b.appendChild(m);
      }
      grid.appendChild(b);
    }
  }
  const sent = root.__sent || 0;
  if (!root.__sel || (data.ack || 0) >= sent) root.__sel = new Set(data.selected || []);
  const paint = () => {
    for (const b of grid.querySelectorAll('.cl-pick')) {
      b.setAttribute('aria-pressed', root.__sel.has(b.dataset.id) ? 'true' : 'false');
    }
  };
  paint();
  grid.onclick = (ev) => {
    const b = ev.target.closest('.cl-pick');
    if (!b || !grid.contains(b)) return;
    const id = b.dataset.id, sel = root.__sel;
    const on = !sel.has(id);
    const ids = data.tiles.map(t => t.id);
    let span = [id];
    if (ev.shiftKey && root.__last && ids.includes(root.__last)) {
      const a = ids.indexOf(root.__last), z = ids.indexOf(id);
      span = ids.slice(Math.min(a, z), Math.max(a, z) + 1);
    }
    for (const x of span) { if (on) sel.add(x); else sel.delete(x); }
    root.__last = id;
    paint();
    root.__sent = Math.max(Date.now(), (root.__sent || 0) + 1);
    setTriggerValue('pick', { ids: [...sel], seq: root.__sent });
  };
}
"""

_component = st.components.v2.component("clusterlens.tile_picker", html=_HTML, css=_CSS, js=_JS)


def picker_data(ds: ImageDataset, tiles: Sequence[PickTile], selected: Sequence[str], ack: float,
                size: int = PICK_PX, empty: str = "") -> dict[str, Any]:
    """What the browser gets: one thumbnail per tile (cached data URIs), the selection and the ack."""
    out = []
    for t in tiles:
        d = asdict(t)
        row = d.pop("row")
        out.append({**d, "id": ds.ids[row], "tooltip": t.tooltip or ds.ids[row],
                    "src": engine.thumb_uri(ds.fingerprint, row, size, ds)})
    return {"tiles": out, "selected": list(selected), "ack": float(ack), "size": int(size), "empty": empty}


def read_pick(value: Any) -> tuple[list[str], float] | None:
    """The ``pick`` event's payload → (selected ids, seq); None when it is not one."""
    if not isinstance(value, Mapping) or not isinstance(value.get("ids"), list):
        return None
    try:
        seq = float(value.get("seq") or 0)
    except (TypeError, ValueError):
        seq = 0.0
    return [str(i) for i in value["ids"]], seq


def tile_picker(ds: ImageDataset, tiles: Sequence[PickTile], selected: Sequence[str], *, ack: float,
                on_pick: Callable[[list[str], float], None], key: str, size: int = PICK_PX,
                empty: str = "No images here.") -> list[str]:
    """Draw the grid and return the selected sample ids. A click calls ``on_pick(selected ids,
    seq)`` as a callback, i.e. before the rerun draws the page, so ``selected`` is usually current."""
    def callback() -> None:
        got = read_pick((st.session_state.get(key) or {}).get("pick"))
        if got is not None:
            on_pick(*got)

    result = _component(key=key, data=picker_data(ds, tiles, selected, ack, size, empty),
                        on_pick_change=callback)
    got = read_pick(result.get("pick")) if result else None
    return got[0] if got is not None else list(selected)
