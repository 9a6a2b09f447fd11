"""Explore in a real browser (issue 26): no console errors from the hover preview when the map is
redrawn or left, and the map's toolbar clear of its legend.

Each test makes its own run in the shared server's workspace (digits, pixels, k-means, a PCA map)
and opens it through the Review page's address (?run=N), then waits for *its* run in the sidebar.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.e2e.test_browser import goto, hover_on_map, shot
from tests.e2e.test_review_browser import settled

pytestmark = pytest.mark.e2e

PLOT = ".st-key-map_chart .js-plotly-plot"


def make_run(home: Path, seed: int = 0) -> int:
    from core.config import ClusterConfig, DataConfig, FeatureConfig, MapConfig, RunConfig
    from core.pipeline import run_pipeline

    return run_pipeline(RunConfig(data=DataConfig(source="digits"), features=FeatureConfig(backbone="pixels"),
                                  cluster=ClusterConfig(algo="kmeans", k=10, seed=seed), map=MapConfig(method="pca"),
                                  workspace=str(home))).run_id


def open_explore(page, url: str, run: int) -> None:  # noqa: ANN001
    """Open ``run`` (its address on the Review page), then the Explore page with its map drawn."""
    page.goto(f"{url}/review?run={run}")
    page.locator('[data-testid="stSidebar"]').get_by_text(f"Run: #{run}", exact=True).wait_for(timeout=120_000)
    settled(page)
    goto(page, "Explore")
    page.get_by_text(f"Run #{run}:").first.wait_for(timeout=120_000)
    page.locator(PLOT).first.wait_for(timeout=120_000)
    settled(page)


def test_hover_preview_cleanup_leaves_no_console_error(page, app_url: str, app_home: Path) -> None:  # noqa: ANN001
    """The preview's cleanup took listeners off a chart Plotly had purged (``gd.removeListener is
    not a function`` in the console): hover, redraw the map, leave the page and come back."""
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    run = make_run(app_home, seed=3)
    open_explore(page, app_url, run)
    plot = page.locator(PLOT).first
    hover_on_map(page, plot)                           # the preview's listeners are on this chart now
    colour_by = page.locator('[data-testid="stRadio"]', has_text="Colour by")
    colour_by.get_by_text("confidence", exact=True).click()     # a redrawn map
    settled(page)
    page.locator(PLOT).first.wait_for()
    hover_on_map(page, page.locator(PLOT).first)
    goto(page, "Review")                               # the preview unmounts with its chart gone
    settled(page)
    goto(page, "Explore")
    page.locator(PLOT).first.wait_for()
    settled(page)
    hover_on_map(page, page.locator(PLOT).first)
    goto(page, "Data")
    settled(page)
    page.wait_for_timeout(1500)                        # the 1 s re-attach poll has had its chance
    shot(page, "explore-console")
    bad = [e for e in errors if re.search(r"removeListener|is not a function|TypeError", e)]
    assert not bad, bad
