"""The Data page's "Stored uploads and extracted archives": the engine's listing and removal, as callbacks.

What the session has open counts as a use (it may not be in the workspace database yet), so
"remove unused" never takes the data from under the page. After a removal the opened-dataset
cache is cleared: a dataset whose files are gone must be opened again, to say so.
"""
from __future__ import annotations

from typing import Any

import streamlit as st

from core.data.stored import human_size, list_stored, remove_stored, remove_unused
from core.errors import ClusterLensError
from ui import engine
from ui.state import get_state, settings

_OUTCOME = "clusterlens_storage_outcome"   # the last removal's one-line outcome, shown once


def _open_sources() -> list[str]:
    s = get_state()
    return [s.data.source] if s.data is not None else []


def rows() -> list[dict[str, Any]]:
    """One row per stored entry, for a dataframe (plain text cells)."""
    return [{"kind": r["kind"], "name": r["name"], "size": r["size_text"], "created": r["created"],
             "used by": ", ".join(r["used_by"]) or "unused"}
            for r in (i.row() for i in list_stored(settings().workspace, _open_sources()))]


def remove_entry(name: str) -> None:
    try:
        item = remove_stored(settings().workspace, name, _open_sources())
    except ClusterLensError as e:
        st.session_state[_OUTCOME] = f"Nothing removed: {e}"
        return
    engine.dataset.clear()
    used = f"; it was used by {', '.join(map(str, item.used_by))}" if item.used else ""
    st.session_state[_OUTCOME] = f"Removed {item.kind} {item.name} ({human_size(item.size)}){used}."


def remove_all_unused() -> None:
    try:
        done = remove_unused(settings().workspace, _open_sources())
    except ClusterLensError as e:
        st.session_state[_OUTCOME] = f"Stopped: {e}"
        return
    engine.dataset.clear()
    text = f"Removed {len(done.removed)} unused entries ({human_size(done.freed)})."
    if done.recent:
        text += (f" Kept {len(done.recent)} under an hour old (another session may be using them; "
                 "remove one by one if not).")
    st.session_state[_OUTCOME] = text


def outcome() -> str | None:
    """The last removal's outcome, once."""
    return st.session_state.pop(_OUTCOME, None)
