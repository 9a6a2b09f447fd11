"""What every page shows around itself: sidebar status, the running job's progress, outcomes.

Why each page calls :func:`frame` itself instead of app.py doing it: Streamlit runs a page file
*without* the entrypoint when the app has a ``pages/`` folder and a run starts before any
``st.navigation`` call (AppTest does this on every run; the server on a fresh start opened at a
page URL). The frame, first thing on every page, notices that and runs the page again through
app.py (:func:`_through_the_entrypoint`), so the page config and navigation are always app.py's.
"""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from ui.state import AppState, adopt_finished_job, get_state, settings
from ui.text import plain
from ui.widgets import job_panel, show_job_outcome

LOGO = Path(__file__).resolve().parents[1] / "assets" / "logo.svg"


def _through_the_entrypoint() -> None:
    """A page run without app.py (the legacy ``pages/`` mode above) has no page config and lists
    the files, "app" included, as its navigation: switch that mode off and run again, so app.py
    routes to this same page (its address and query string kept). Streamlit reads the flag only
    until the first ``st.navigation`` call in the process, which sets it the same way."""
    from streamlit.runtime.pages_manager import PagesManager  # internal: read defensively

    if getattr(PagesManager, "uses_pages_directory", None):
        PagesManager.uses_pages_directory = False
        st.rerun()


def frame() -> AppState:
    _through_the_entrypoint()
    st.logo(str(LOGO), size="large")
    state = get_state()
    if state.job is not None and state.job.running:
        state.job.wait(settings().job_wait_s)   # quick jobs show their result in this very run
    adopt_finished_job()
    with st.sidebar:
        st.caption(f"Workspace: {plain(settings().workspace)}")
        st.caption(f"Data: **{plain(state.data_label)}**" if state.data else "Data: none chosen yet")
        if state.feature_info is not None:
            st.caption(f"Features: {state.feature_info.features.backbone}, {state.feature_info.dim}-d")
        if state.run_id is not None:
            st.caption(f"Run: #{state.run_id}")
    if state.job is not None and state.job.running:
        job_panel()
    show_job_outcome()
    return state
