"""Reusable widgets: image grid, job progress panel, generated parameter controls, score cards."""
from __future__ import annotations

import ast
import html
import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

from core.cluster.base import RUN_PARAMS
from core.cluster.dac_guard import kept_start_message
from core.data.base import ImageDataset
from ui import engine
from ui.state import current_page, get_state, set_algo_param, stop_job
from ui.text import plain

THUMB_PX = 64
PAGE_SIZE = 60

_GRID_CSS = """<style>
.cl-grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(%dpx,1fr));gap:6px}
.cl-tile{position:relative;margin:0;text-align:center;font-size:11px;color:#555;overflow:hidden}
.cl-tile .mark{position:absolute;top:3px;left:4px;font-size:11px;line-height:14px;background:#ffd54f;color:#000;
  border-radius:3px;padding:0 3px;font-weight:700}
.cl-tile img{width:%dpx;height:%dpx;object-fit:contain;image-rendering:pixelated;border-radius:4px;
  border:3px solid var(--cl-c,#ddd);background:#111}
.cl-tile figcaption{white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
</style>"""


@dataclass(frozen=True)
class Tile:
    row: int
    caption: str
    tooltip: str = ""
    colour: str = "#dddddd"
    mark: str = ""          # a short badge, e.g. "✎" for a corrected sample (review tiles)


def image_grid(ds: ImageDataset, tiles: Sequence[Tile], *, size: int = THUMB_PX, grid_id: str = "grid") -> None:
    """One HTML block of thumbnails: one element for the browser, however many images.

    Every tile carries ``data-sample-id`` (the stable id), which the browser tests read.
    """
    parts = [_GRID_CSS % (size + 10, size, size), f'<div class="cl-grid" id="{grid_id}">']
    for t in tiles:
        sid = html.escape(ds.ids[t.row])
        uri = engine.thumb_uri(ds.fingerprint, t.row, size, ds)
        parts.append(f'<figure class="cl-tile" data-sample-id="{sid}" title="{html.escape(t.tooltip or sid)}" '
                     f'style="--cl-c:{t.colour}"><img src="{uri}" alt="{sid}"/>'
                     + (f'<span class="mark">{html.escape(t.mark)}</span>' if t.mark else "") +
                     f"<figcaption>{html.escape(t.caption)}</figcaption></figure>")
    parts.append("</div>")
    st.html("".join(parts))


def relabel_pick_lists(page: str, stamp: int, keys: Sequence[str], valid: Collection[Any]) -> None:
    """Call before drawing selectboxes whose labels carry counts ("cluster_2 (237 images)"), with
    ``stamp`` changing whenever the counts may have (the run's edit version). A keyed selectbox's
    value travels as its label, and Streamlit sends the label again only when the value changes:
    after a split the closed box still read "cluster_2 (237 images)" (issue 26). Writing each
    value back once per stamp makes Streamlit send the box its new label; a value no longer
    among ``valid`` (a merged-away cluster) is dropped, so the box starts at its default."""
    drawn = get_state().labels_drawn
    if drawn.get(page) == stamp:
        return
    drawn[page] = stamp
    for key in keys:
        if key not in st.session_state:
            continue
        if st.session_state[key] in valid:
            st.session_state[key] = st.session_state[key]
        else:
            del st.session_state[key]


def paged(rows: np.ndarray, key: str, page: int, on_page: Any) -> tuple[np.ndarray, int, int]:
    """The rows of the current page, the page number and the page count; draws the page picker."""
    pages = max(1, math.ceil(len(rows) / PAGE_SIZE))
    page = min(max(page, 1), pages)
    if pages > 1:
        st.number_input(f"Page (of {pages})", 1, pages, value=page, step=1, key=key,
                        on_change=page_changed, args=(key, page, on_page))
    return rows[(page - 1) * PAGE_SIZE: page * PAGE_SIZE], page, pages


def page_changed(key: str, fallback: int, on_page: Any) -> None:
    """The pager's callback. Its widget may be gone by the time it runs: clearing the map selection
    drops the selection's pager in the same rerun (a KeyError in the page, issue 26)."""
    on_page(int(st.session_state.get(key, fallback)))


# -- job panel: polled from a fragment so the page never freezes -----------------------------

@st.fragment(run_every=0.5)
def job_panel() -> None:
    job = get_state().job
    if job is None:
        return
    if job.snapshot()[0] != "running":
        st.rerun()   # a full rerun adopts the result (ui.state.adopt_finished_job)
    left, right = st.columns([5, 1], vertical_alignment="bottom")
    with left:   # a count and its rate, a fraction, or the step's time against an estimate (ui.jobs)
        bar, text = job.view()
        st.progress(bar, text=text)
    right.button("Stop", key="job_stop", on_click=stop_job, use_container_width=True)


def show_job_outcome() -> None:
    """The last outcome (a job's, or a callback's), on its own page only: a job's on the page that
    started it, anything else on the page where it first showed (issue 26: "Features extracted …"
    stayed on every later page)."""
    s = get_state()
    here = current_page()
    if (s.error, s.notice) != s.outcome_msg:   # set by a callback of this page, not by a finished job
        s.outcome_page, s.outcome_msg = here, (s.error, s.notice)
    if s.outcome_page is not None and s.outcome_page != here:
        return
    if s.error:
        st.error(plain(s.error))
    elif s.notice:
        st.info(plain(s.notice))


# -- parameter controls generated from an estimator's get_params() defaults -------------------

def param_controls(algo: str, defaults: dict[str, Any]) -> None:
    """One widget per parameter, typed from its default; values go to the state via callbacks.
    RUN_PARAMS (k, seed, metric, device) have the page's own controls, so are not repeated here."""
    edited = get_state().algo_params.get(algo, {})
    choices, docs = engine.param_choices(algo), engine.param_docs(algo)
    names = [n for n in sorted(defaults) if n not in RUN_PARAMS and _editable(defaults[n])]
    cols = st.columns(3)
    for i, name in enumerate(names):
        default, value = defaults[name], edited.get(name, defaults[name])
        key = f"p_{algo}_{name}"

        def cb(name: str = name, key: str = key, default: Any = default) -> None:
            set_algo_param(algo, name, _parse(st.session_state[key], default))

        tip = docs.get(name) or None
        with cols[i % 3]:
            if name in choices:
                options = list(choices[name])
                st.selectbox(name, options, index=options.index(value) if value in options else 0,
                             key=key, on_change=cb, help=tip)
            elif isinstance(default, bool):
                st.checkbox(name, value=bool(value), key=key, on_change=cb, help=tip)
            elif isinstance(default, int):
                st.number_input(name, value=int(value), step=1, key=key, on_change=cb, help=tip)
            elif isinstance(default, float):
                st.number_input(name, value=float(value), format="%g", key=key, on_change=cb, help=tip)
            else:
                empty = "Empty = default (None)." if default is None else ""
                st.text_input(name, value="" if value is None else str(value), key=key, on_change=cb,
                              help=" ".join(t for t in (tip, empty) if t) or None)


def _editable(v: Any) -> bool:
    return v is None or isinstance(v, bool | int | float | str)


def _parse(raw: Any, default: Any) -> Any:
    """Text boxes: '' -> None, numbers/lists/dicts as Python literals, anything else as text."""
    if not isinstance(raw, str):
        return raw
    raw = raw.strip()
    if raw == "":
        return None if default is None else default
    try:
        return ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return raw


# -- scores ----------------------------------------------------------------------------------

SCORE_LABELS = {"acc": "ACC", "nmi": "NMI", "ari": "ARI", "silhouette": "Silhouette",
                "davies_bouldin": "Davies–Bouldin", "calinski_harabasz": "Calinski–Harabasz"}


def score_text(v: Any) -> str:
    """A score as a card shows it: three decimals, or a whole number once it is that large
    (Calinski–Harabasz runs into the thousands and would not fit)."""
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 1000 else f"{v:,.0f}"
    return str(v)


def score_cards(scores: dict[str, Any], per_row: int = 7) -> None:
    """One card per score, ``per_row`` to a row (fewer in a half-width column, or the values
    are cut to "0…")."""
    shown = [(SCORE_LABELS[k], scores[k]) for k in SCORE_LABELS if scores.get(k) is not None]
    shown.append(("Clusters", scores.get("n_clusters")))
    for start in range(0, len(shown), per_row):
        row = shown[start:start + per_row]
        for col, (label, v) in zip(st.columns(per_row), row, strict=False):
            col.metric(label, score_text(v))


def not_run_yet(workspace: str, run_id: int, algo: str) -> bool:
    """True (and says so) when the page's algorithm is not the one ``run_id`` ran: its results
    would show under another algorithm's name (issue 26). Changing the algorithm does not
    re-cluster by itself (DAC and RUC take minutes): Run does."""
    ran = engine.run_record(workspace, run_id)["algo"]
    if ran == algo:
        return False
    st.divider()
    st.info(f"Not run yet for {plain(algo)}: press **Run** to cluster with it. The last run (#{run_id}, "
            f"{plain(ran)}) stays on the Explore and Review pages, and under Kept runs below.")
    return True


def run_view(workspace: str, run_id: int, class_names: list[str] | None, threshold: float, key: str,
             narrow: bool = False) -> None:
    """A finished run: its scores, cluster sizes and (with ground truth) the confusion matrix.
    ``narrow``: drawn in half the page's width (runs compared side by side)."""
    from ui import figures
    from ui.review import load_view  # lazy: ui.review draws tiles with this module's Tile

    rec = engine.run_record(workspace, run_id)
    view = load_view(Path(workspace), run_id)       # current labels and names: the run plus its edits
    labels, confidence = view.labels, view.confidence
    cfg = (rec.get("config") or {}).get("cluster", {})
    st.markdown(f"**Run #{run_id}** — {rec['algo']}, k={rec['k']}, metric {cfg.get('metric', '?')}, "
                f"reduce {cfg.get('reduce', 'none')}, seed {cfg.get('seed', 0)}")
    score_cards(rec["scores"] or {}, per_row=4 if narrow else 7)
    sizes = np.asarray([view.size(c) for c in view.clusters], dtype=np.int64)
    outliers = int((labels < 0).sum())   # marked by a person, kept out of every cluster
    st.caption(f"{len(sizes)} clusters, sizes {', '.join(str(int(n)) for n in sizes)} "
               f"(sum {int(sizes.sum()):,}){f'; {outliers:,} outliers' if outliers else ''}; "
               f"{int((confidence < threshold).sum()):,} doubtful "
               f"(confidence < {threshold:.2f})")
    if len(view.edits):
        st.caption(f"These are the run's current clusters, with {view.n_corrected:,} image(s) a person corrected "
                   "on the Review page; the scores above are the clustering's own.")
    unclean = engine.unclean(workspace, run_id)
    if unclean is not None:
        n_unclean = int(unclean.sum())
        st.caption(f"RUC's final split: {len(labels) - n_unclean:,} clean, {n_unclean:,} unclean "
                   f"(the Review page shows the unclean ones first)")
    kept = kept_start_message(rec.get("history"))   # DAC/RUC ended below their start: say so
    if kept:
        st.caption(kept)
    st.plotly_chart(figures.cluster_sizes(labels, confidence, threshold, name=view.name), key=f"{key}_sizes")
    history = rec.get("history") or []
    fig = figures.run_history(history)
    if fig is not None:
        steps = f"{len(fig.data[0].x)} {fig.layout.xaxis.title.text}s"   # "3 epochs", "12 iterations"
        with st.expander(f"Training history ({steps})"):
            st.plotly_chart(fig, key=f"{key}_history")
    matrix = (rec["scores"] or {}).get("confusion")
    if matrix:
        st.plotly_chart(figures.confusion(matrix, class_names), key=f"{key}_confusion")
