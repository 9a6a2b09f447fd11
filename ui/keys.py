"""The Review page's keyboard shortcuts: what each key does (listed on the page) and the handler
the tile picker calls (ui/tile_picker.py sends the key with the browser's selection).

Every edit goes through the same ui.review callbacks as the buttons, quoting the version the page
was drawn with, so a key is exactly a click: saved before it is confirmed, refused when stale.
"""
from __future__ import annotations

from collections.abc import Callable

from core.review import OUTLIER

SHORTCUTS: tuple[tuple[str, str], ...] = (
    ("← → ↑ ↓", "move the keyboard cursor over the tiles"),
    ("Space or x", "select / deselect the tile under the cursor (Shift: the range)"),
    ("a · Esc", "select the whole page · clear the selection"),
    ("0–9", "move the selection to cluster N (two digits for N ≥ 10, or a digit then Enter)"),
    ("o", "mark the selection as outliers"),
    ("z or Ctrl+Z", "undo the last edit"),
    ("Shift+Z, y or Ctrl+Y", "redo"),
    ("n / p (PageDown / PageUp)", "next / previous page"),
    ("Enter or e", "enlarge the tile under the cursor (a closer look)"),
)

SUMMARY = ("Keys: **Space** select · **0–9** move to cluster N · **o** outliers · **z** undo · **Shift+Z** redo · "
           "**n / p** next / previous page · **Enter** enlarge (arrows move the cursor; all below)")


def help_markdown() -> str:
    """The shortcut list as the page shows it (one markdown table)."""
    rows = "\n".join(f"| `{k}` | {what} |" for k, what in SHORTCUTS)
    return "| key | does |\n|---|---|\n" + rows


NOTHING_SELECTED = "Select images first (click them, or Space on the cursor)."


def review_handler(version: int, page: int, pages: int, clusters: list[int],
                   set_page: Callable[[int], None], pager_key: str) -> Callable[[str, int | None], None]:
    """The Review page's ``on_key``: ``version`` is the run's version the page was drawn with,
    ``clusters`` the cluster ids a number may name, ``pager_key`` the page picker's widget key (set
    too, or it would show the old page). The selection is already the browser's."""
    import streamlit as st

    from ui import review
    from ui.state import get_state

    def handle(action: str, arg: int | None) -> None:
        rv = get_state().review
        if action == "move":
            if arg is None or int(arg) not in clusters:
                rv.message, rv.area = None, "edit"
                rv.error = (f"There is no cluster {arg}: the number keys name clusters "
                            f"{', '.join(str(c) for c in clusters[:12])}{'…' if len(clusters) > 12 else ''}.")
            elif not rv.selected:
                rv.message, rv.error, rv.area = None, NOTHING_SELECTED, "edit"
            else:
                review.move_selected(version, int(arg))
        elif action == "outlier":
            if rv.selected:
                review.move_selected(version, OUTLIER)
            else:
                rv.message, rv.error, rv.area = None, NOTHING_SELECTED, "edit"
        elif action == "undo":
            review.undo(version)
        elif action == "redo":
            review.redo(version)
        elif action == "page" and arg is not None:
            new = min(max(page + int(arg), 1), pages)
            set_page(new)
            if pages > 1:
                st.session_state[pager_key] = new
    return handle
