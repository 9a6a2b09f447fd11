"""Tile picker: a grid of thumbnails where a click toggles an image in or out of the selection.

A small ``st.components.v2`` component. The browser keeps the selection while a person clicks
(the outline shows at once) and sends the whole selected set as one trigger event per click;
the Python side keeps the durable copy (AppState) through ``on_pick``. Every tile is a
``<button data-id="…" aria-pressed="…">``: the browser tests click ``[data-id="…"]``, and the
keyboard works (Tab, then Enter or Space). Shift-click selects the range since the last click.

With ``on_open`` each tile has a small "enlarge" button (``.cl-open[data-open="…"]``) that sends
``open``; the page shows the enlarged view (ui/enlarged.py). With ``on_key`` the page's keyboard
shortcuts (ui/keys.py lists them) work anywhere on the page but in a text field: the browser sends
``key`` = ``{action, arg, ids, seq}`` with its selection, so a key never acts on an older one.

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
TILE_SIZES = {"small": 48, "medium": 72, "large": 112}   # AppState.tile_size -> thumbnail pixels
CAPTION_MIN_PX = 104   # a tile is at least this wide: "cluster_12 · 0.47" is never cut to "cluster_1…"


PickTile = Tile   # the gallery's tile; ``mark`` is drawn as a badge here


_HTML = ('<div class="cl-picker" role="group" aria-label="Images: click to select"></div>'
         '<div class="cl-keybuf" aria-live="polite"></div>')

_CSS = """
.cl-picker{display:grid;grid-template-columns:repeat(auto-fill,minmax(var(--cl-w,104px),1fr));gap:8px;
  font-family:var(--st-font,sans-serif)}
.cl-cell{position:relative;min-width:0}
.cl-pick{position:relative;width:100%;margin:0;padding:3px 3px 2px;border:0;border-radius:6px;background:transparent;
  cursor:pointer;text-align:center;font-size:11px;color:var(--st-text-color,#333);outline:none;min-width:0}
.cl-pick img{display:block;margin:0 auto;width:var(--cl-px,72px);height:var(--cl-px,72px);object-fit:contain;
  image-rendering:pixelated;border-radius:4px;border:3px solid var(--cl-c,#ddd);background:#111}
.cl-pick span.cap{display:block;white-space:normal;overflow-wrap:anywhere;line-height:1.25;margin-top:1px}
.cl-pick:hover{background:rgba(128,128,128,.15)}
.cl-pick:focus-visible,.cl-pick.cl-cur{box-shadow:0 0 0 2px #1c83e1}
.cl-pick[aria-pressed="true"]{background:rgba(255,75,75,.14);box-shadow:0 0 0 3px #ff4b4b}
.cl-pick[aria-pressed="true"].cl-cur{box-shadow:0 0 0 3px #ff4b4b,0 0 0 5px #1c83e1}
.cl-pick[aria-pressed="true"]::after{content:"✓";position:absolute;top:4px;right:6px;width:20px;height:20px;
  line-height:20px;border-radius:50%;background:#ff4b4b;color:#fff;font-size:13px;font-weight:700}
.cl-pick .mark{position:absolute;top:4px;left:6px;font-size:12px;line-height:16px;background:#ffd54f;color:#000;
  border-radius:3px;padding:0 3px;font-weight:700}
.cl-open{position:absolute;left:calc(50% - var(--cl-px,72px) / 2 + 3px);top:calc(var(--cl-px,72px) - 20px);
  width:22px;height:22px;padding:0;
  border:0;border-radius:4px;background:rgba(0,0,0,.55);color:#fff;font-size:14px;line-height:22px;cursor:zoom-in;
  opacity:.75}
.cl-open:hover,.cl-open:focus-visible{opacity:1;background:#1c83e1}
.cl-empty{opacity:.7;font-size:13px}
.cl-keybuf{min-height:1em;font-size:12px;opacity:.8;margin-top:4px}
"""

# Runs again on every data change; the selection, the last click's seq and the keyboard cursor
# live on the root. The keydown listener is the document's (keys work wherever the focus is but a
# text field) and is replaced on every run (the returned cleanup removes it).
_JS = """
export default function (component) {
  const { data, parentElement: root, setTriggerValue } = component;
  const grid = root.querySelector('.cl-picker');
  const buf = root.querySelector('.cl-keybuf');
  if (!grid || !data) return;
  const w = Math.max(data.size + 10, data.min_w || 0);
  grid.style.setProperty('--cl-px', data.size + 'px');
  grid.style.setProperty('--cl-w', w + 'px');

  const sig = data.size + '|' + (data.open ? 1 : 0) + '\\n' +
    data.tiles.map(t => t.id + '|' + t.caption + '|' + t.colour + '|' + t.mark).join('\\n');
  if (root.__sig !== sig) {                       // rebuild only when the tiles themselves change
    root.__sig = sig;
    grid.replaceChildren();
    if (!data.tiles.length) {
      const p = document.createElement('p'); p.className = 'cl-empty'; p.textContent = data.empty || '';
      grid.appendChild(p);
    }
    for (const t of data.tiles) {
      const cell = document.createElement('div'); cell.className = 'cl-cell';
      const b = document.createElement('button');
      b.type = 'button'; b.className = 'cl-pick'; b.dataset.id = t.id; b.title = t.tooltip || t.id;
      b.style.setProperty('--cl-c', t.colour);
      const img = document.createElement('img'); img.src = t.src; img.alt = t.id; img.draggable = false;
      const cap = document.createElement('span'); cap.className = 'cap'; cap.textContent = t.caption;
      b.append(img, cap);
      if (t.mark) {
        const m = document.createElement('span'); m.className = 'mark'; m.textContent = t.mark; b.appendChild(m);
      }
      cell.appendChild(b);
      if (data.open) {
        const o = document.createElement('button');
        o.type = 'button'; o.className = 'cl-open'; o.dataset.open = t.id; o.textContent = '⤢';
        o.title = 'Enlarge: a closer look at ' + t.id; o.setAttribute('aria-label', 'Enlarge ' + t.id);
        cell.appendChild(o);
      }
      grid.appendChild(cell);
    }
  }
  const tiles = () => [...grid.querySelectorAll('.cl-pick')];
  const sent = root.__sent || 0;
  if (!root.__sel || (data.ack || 0) >= sent) root.__sel = new Set(data.selected || []);
  const n = data.tiles.length;
  if (root.__cur !== undefined && root.__cur !== null) root.__cur = n ? Math.min(root.__cur, n - 1) : null;
  const paint = () => {
    tiles().forEach((b, i) => {
      b.setAttribute('aria-pressed', root.__sel.has(b.dataset.id) ? 'true' : 'false');
      b.classList.toggle('cl-cur', i === root.__cur);
    });
  };
  paint();
  const nextSeq = () => (root.__sent = Math.max(Date.now(), (root.__sent || 0) + 1));
  const sendPick = () => setTriggerValue('pick', { ids: [...root.__sel], seq: nextSeq() });
  const toggle = (id, shift) => {
    const sel = root.__sel, on = !sel.has(id), ids = data.tiles.map(t => t.id);
    let span = [id];
    if (shift && root.__last && ids.includes(root.__last)) {
      const a = ids.indexOf(root.__last), z = ids.indexOf(id);
      span = ids.slice(Math.min(a, z), Math.max(a, z) + 1);
    }
    for (const x of span) { if (on) sel.add(x); else sel.delete(x); }
    root.__last = id;
    root.__cur = ids.indexOf(id);
    paint();
    sendPick();
  };
  const open = (id) => setTriggerValue('open', { id });
  grid.onclick = (ev) => {
    const o = ev.target.closest('.cl-open');
    if (o && grid.contains(o)) { open(o.dataset.open); return; }
    const b = ev.target.closest('.cl-pick');
    if (!b || !grid.contains(b)) return;
    toggle(b.dataset.id, ev.shiftKey);
  };

  if (!data.keys) { if (buf) buf.textContent = ''; return; }
  // -- keyboard ---------------------------------------------------------------------------
  const sendKey = (action, arg) => {
    clearTimeout(root.__numTimer); root.__num = ''; if (buf) buf.textContent = '';
    setTriggerValue('key', { action, arg: arg === undefined ? null : arg, ids: [...root.__sel], seq: nextSeq() });
  };
  const columns = () => {
    const els = tiles(); if (els.length < 2) return 1;
    const top = els[0].offsetTop; let c = 0;
    for (const e of els) { if (e.offsetTop !== top) break; c++; }
    return Math.max(c, 1);
  };
  const moveCursor = (d) => {
    if (!n) return;
    root.__cur = root.__cur === null || root.__cur === undefined ? 0 : Math.min(Math.max(root.__cur + d, 0), n - 1);
    paint();
    const b = tiles()[root.__cur]; if (b && b.scrollIntoView) b.scrollIntoView({ block: 'nearest' });
  };
  const commitNumber = () => {
    const s = root.__num || '';
    if (s !== '') sendKey('move', Number(s));
  };
  const typing = (el) => {
    if (!el) return false;
    const tag = (el.tagName || '').toLowerCase();
    return tag === 'input' || tag === 'textarea' || tag === 'select' || el.isContentEditable ||
      (el.getAttribute && ['combobox', 'listbox', 'option', 'textbox', 'slider', 'spinbutton']
        .includes(el.getAttribute('role')));
  };
  const onKey = (ev) => {
    if (ev.defaultPrevented || ev.altKey || ev.metaKey) return;
    const el = ev.composedPath ? ev.composedPath()[0] : ev.target;
    if (typing(el) || document.querySelector('[role="dialog"]')) return;
    const k = ev.key, ctrl = ev.ctrlKey;
    const onTile = el && el.classList && el.classList.contains('cl-pick') && grid.contains(el);
    if ((k === ' ' || k === 'Enter') && onTile) {           // the focused button's own click toggles it
      root.__cur = tiles().indexOf(el); return;
    }
    const tag = el && el.tagName ? el.tagName.toLowerCase() : '';
    if ((k === ' ' || k === 'Enter') && ['button', 'a', 'summary'].includes(tag) && !onTile) return;   // its own
    let done = true;
    if (ctrl && (k === 'z' || k === 'Z')) sendKey(ev.shiftKey ? 'redo' : 'undo');
    else if (ctrl && (k === 'y' || k === 'Y')) sendKey('redo');
    else if (ctrl) done = false;
    else if (/^[0-9]$/.test(k)) {
      root.__num = (root.__num || '') + k;
      clearTimeout(root.__numTimer);
      if (Number(root.__num) * 10 > (data.max_cluster ?? 9)) commitNumber();   // no longer id starts like this
      else {
        if (buf) buf.textContent = 'Move the selection to cluster ' + root.__num + '… (Enter)';
        root.__numTimer = setTimeout(commitNumber, 1200);
      }
    }
    else if (k === 'Enter' && root.__num) commitNumber();
    else if (k === 'Enter' && data.open && n && root.__cur != null) open(data.tiles[root.__cur].id);
    else if (k === 'ArrowRight') moveCursor(1);
    else if (k === 'ArrowLeft') moveCursor(-1);
    else if (k === 'ArrowDown') moveCursor(columns());
    else if (k === 'ArrowUp') moveCursor(-columns());
    else if ((k === ' ' || k === 'x') && n) {
      if (root.__cur === null || root.__cur === undefined) root.__cur = 0;
      toggle(data.tiles[root.__cur].id, ev.shiftKey);
    }
    else if (k === 'a') { for (const t of data.tiles) root.__sel.add(t.id); paint(); sendPick(); }
    else if (k === 'Escape') {
      root.__sel.clear(); root.__num = ''; if (buf) buf.textContent = ''; paint(); sendPick();
    }
    else if (k === 'o') sendKey('outlier');
    else if (k === 'z') sendKey('undo');
    else if (k === 'Z' || k === 'y') sendKey('redo');
    else if (k === 'n' || k === 'PageDown') sendKey('page', 1);
    else if (k === 'p' || k === 'PageUp') sendKey('page', -1);
    else if (k === 'e' && data.open && n) open(data.tiles[root.__cur ?? 0].id);
    else done = false;
    if (done) ev.preventDefault();
  };
  document.addEventListener('keydown', onKey);
  return () => { document.removeEventListener('keydown', onKey); clearTimeout(root.__numTimer); };
}
"""

_component = st.components.v2.component("clusterlens.tile_picker", html=_HTML, css=_CSS, js=_JS)


def tile_px(size_name: str | None) -> int:
    """AppState.tile_size ("small" | "medium" | "large") -> thumbnail pixels (medium when unknown)."""
    return TILE_SIZES.get(size_name or "", TILE_SIZES["medium"])


def tile_size_control(key: str = "w_tile_size") -> int:
    """The "Tile size" control (small / medium / large), kept in AppState.tile_size across pages;
    returns the thumbnail pixels to draw."""
    from ui.state import get_state

    state = get_state()

    def changed() -> None:
        v = st.session_state.get(key)
        if v in TILE_SIZES:
            get_state().tile_size = v
        else:                        # a click on the chosen segment unselects it: keep the last size
            st.session_state[key] = get_state().tile_size

    st.segmented_control("Tile size", list(TILE_SIZES), default=state.tile_size if state.tile_size in TILE_SIZES
                         else "medium", key=key, on_change=changed, format_func=str.capitalize)
    return tile_px(get_state().tile_size)


def picker_data(ds: ImageDataset, tiles: Sequence[PickTile], selected: Sequence[str], ack: float,
                size: int = PICK_PX, empty: str = "", *, open_button: bool = False, keys: bool = False,
                max_cluster: int | None = None) -> dict[str, Any]:
    """What the browser gets: one thumbnail per tile (cached data URIs), the selection and the ack."""
    out = []
    for t in tiles:
        d = asdict(t)
        row = d.pop("row")
        out.append({**d, "id": ds.ids[row], "tooltip": t.tooltip or ds.ids[row],
                    "src": engine.thumb_uri(ds.fingerprint, row, size, ds)})
    return {"tiles": out, "selected": list(selected), "ack": float(ack), "size": int(size), "empty": empty,
            "min_w": CAPTION_MIN_PX, "open": bool(open_button), "keys": bool(keys),
            "max_cluster": 9 if max_cluster is None else int(max_cluster)}


def read_pick(value: Any) -> tuple[list[str], float] | None:
    """The ``pick`` event's payload → (selected ids, seq); None when it is not one."""
    if not isinstance(value, Mapping) or not isinstance(value.get("ids"), list):
        return None
    try:
        seq = float(value.get("seq") or 0)
    except (TypeError, ValueError):
        seq = 0.0
    return [str(i) for i in value["ids"]], seq


KEY_ACTIONS = ("move", "outlier", "undo", "redo", "page")


def read_key(value: Any) -> tuple[str, int | None, list[str], float] | None:
    """The ``key`` event's payload → (action, its number or None, the browser's selection, seq);
    None when it is not one (an unknown action included)."""
    got = read_pick(value)
    if got is None or value.get("action") not in KEY_ACTIONS:
        return None
    arg = value.get("arg")
    try:
        arg = None if arg is None else int(arg)
    except (TypeError, ValueError):
        return None
    return str(value["action"]), arg, got[0], got[1]


def read_open(value: Any) -> str | None:
    """The ``open`` event's payload → the sample id to enlarge."""
    if isinstance(value, Mapping) and isinstance(value.get("id"), str) and value["id"]:
        return value["id"]
    return None


def tile_picker(ds: ImageDataset, tiles: Sequence[PickTile], selected: Sequence[str], *, ack: float,
                on_pick: Callable[[list[str], float], None], key: str, size: int = PICK_PX,
                empty: str = "No images here.", on_open: Callable[[str], None] | None = None,
                on_key: Callable[[str, int | None], None] | None = None,
                max_cluster: int | None = None) -> list[str]:
    """Draw the grid and return the selected sample ids. A click calls ``on_pick(selected ids,
    seq)`` as a callback, i.e. before the rerun draws the page, so ``selected`` is usually current.
    ``on_open(sample id)``: the tile's enlarge button (or Enter / e on the keyboard cursor).
    ``on_key(action, arg)``: a shortcut (ui/keys.py), after ``on_pick`` took the browser's selection
    in; ``max_cluster`` is the largest cluster id a number key may name."""
    def state() -> Mapping[str, Any]:
        return st.session_state.get(key) or {}

    def picked() -> None:
        got = read_pick(state().get("pick"))
        if got is not None:
            on_pick(*got)

    def opened() -> None:
        sid = read_open(state().get("open"))
        if sid is not None and on_open is not None:
            on_open(sid)

    def pressed() -> None:
        got = read_key(state().get("key"))
        if got is not None and on_key is not None:
            action, arg, ids, seq = got
            on_pick(ids, seq)
            on_key(action, arg)

    data = picker_data(ds, tiles, selected, ack, size, empty, open_button=on_open is not None,
                       keys=on_key is not None, max_cluster=max_cluster)
    result = _component(key=key, data=data, on_pick_change=picked, on_open_change=opened, on_key_change=pressed)
    got = read_pick(result.get("pick")) if result else None
    return got[0] if got is not None else list(selected)
