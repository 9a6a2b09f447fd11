"""Which images the Explore and Review pages show (issue 26, item 6): a confidence range, only the
corrected ones, only one true class (when the data set has true labels: shown and filtered by,
never trained on or used to pick anything), only RUC's unclean set (when the run stored one).

One filter for both pages (``AppState.filter``): what a person narrowed down on one page is what
they see on the other. The mask is pure numpy; the page draws the controls and applies it.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import streamlit as st

HIDDEN = -2   # the label a page gives the images the filter leaves out (never a cluster, nor -1 = outliers)


@dataclass(frozen=True)
class Filter:
    conf_lo: float = 0.0
    conf_hi: float = 1.0
    corrected_only: bool = False
    true_class: int | None = None     # an index into the data set's class names
    unclean_only: bool = False

    def active(self) -> bool:
        return self != Filter()


def mask(f: Filter, confidence: np.ndarray, corrected: np.ndarray, truth: np.ndarray | None = None,
         unclean: np.ndarray | None = None) -> np.ndarray:
    """(N,) bool: the images the filter keeps. A part the data cannot answer (no true labels, a
    run without RUC's split) keeps everything: its control is not offered then."""
    conf = np.asarray(confidence, dtype=np.float64)
    keep = (conf >= f.conf_lo - 1e-9) & (conf <= f.conf_hi + 1e-9)
    if f.corrected_only:
        keep &= np.asarray(corrected, dtype=bool)
    if f.true_class is not None and truth is not None:
        keep &= np.asarray(truth) == int(f.true_class)
    if f.unclean_only and unclean is not None:
        keep &= np.asarray(unclean, dtype=bool)
    return keep


def describe(f: Filter, class_names: Sequence[str] | None = None) -> str:
    """The filter in words, for the caption over what it shows ("" when it keeps everything)."""
    parts = []
    if (f.conf_lo, f.conf_hi) != (0.0, 1.0):
        parts.append(f"confidence {f.conf_lo:.2f}–{f.conf_hi:.2f}")
    if f.corrected_only:
        parts.append("corrected only")
    if f.true_class is not None:
        label = class_names[f.true_class] if class_names and f.true_class < len(class_names) else str(f.true_class)
        parts.append(f"true class {label}")
    if f.unclean_only:
        parts.append("RUC's unclean set only")
    return ", ".join(parts)


def _state() -> Any:
    from ui.state import get_state  # lazy: ui.state holds a Filter

    return get_state()


def set_filter(**changes: Any) -> None:
    s = _state()
    s.filter = replace(s.filter, **changes)
    s.gallery = replace(s.gallery, page=1)
    s.review.page = 1


def clear_filter() -> None:
    set_filter(**asdict(Filter()))
    for key in list(st.session_state):
        if isinstance(key, str) and key.startswith("w_f_"):
            del st.session_state[key]    # the controls show the cleared filter


def controls(page: str, class_names: Sequence[str] | None, has_unclean: bool) -> Filter:
    """The filter's controls (keys ``w_f_<page>_…``, their values kept in AppState), in an
    expander that is open while a filter is on; returns the filter in force."""
    f = _state().filter
    if class_names is None and f.true_class is not None:
        set_filter(true_class=None)
        f = _state().filter
    if not has_unclean and f.unclean_only:
        set_filter(unclean_only=False)
        f = _state().filter
    label = f"Filter: {describe(f, class_names)}" if f.active() else "Filter the images"
    with st.expander(label, expanded=f.active()):
        a, b, c, d = st.columns([3, 2, 2, 2], vertical_alignment="bottom")
        key = f"w_f_{page}_conf"
        a.slider("Confidence", 0.0, 1.0, value=(f.conf_lo, f.conf_hi), step=0.05, key=key,
                 on_change=lambda: set_filter(conf_lo=float(st.session_state[key][0]),
                                              conf_hi=float(st.session_state[key][1])))
        key_c = f"w_f_{page}_corrected"
        b.checkbox("Only corrected", value=f.corrected_only, key=key_c,
                   help="Images a person moved or marked as outliers on the Review page",
                   on_change=lambda: set_filter(corrected_only=bool(st.session_state[key_c])))
        if class_names is not None:
            key_t = f"w_f_{page}_class"
            options = [None, *range(len(class_names))]
            c.selectbox("True class", options, index=options.index(f.true_class) if f.true_class in options else 0,
                        format_func=lambda i: "any" if i is None else str(class_names[i]), key=key_t,
                        help="The data set's own labels: shown and filtered by, never used to cluster",
                        on_change=lambda: set_filter(true_class=st.session_state[key_t]))
        if has_unclean:
            key_u = f"w_f_{page}_unclean"
            d.checkbox("Only RUC's unclean", value=f.unclean_only, key=key_u,
                       help="The images RUC's final split left out of its clean set: its likely mistakes",
                       on_change=lambda: set_filter(unclean_only=bool(st.session_state[key_u])))
        if f.active():
            st.button("Clear the filter", key=f"w_f_{page}_clear", on_click=clear_filter)
    return f
