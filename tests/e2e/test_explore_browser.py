"""Explore in a real browser (issue 26): no console errors from the hover preview when the map is
redrawn or left, and the map's toolbar clear of its legend.

Each test makes its own run in the shared server's workspace (digits, pixels, k-means, a PCA map)
and opens it through the Review page's address (?run=N), then waits for *its* run in the sidebar.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.e2e.test_browser import goto, hover_on_map, lasso_middle, shot
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
    # the new map is drawn once its trace is the confidence one (the old map stays until then, so
    # a chart found earlier may be swapped out under the mouse)
    page.wait_for_function("() => { const gd = document.querySelector('.st-key-map_chart .js-plotly-plot');"
                           " return !!gd && (gd._fullData || []).some(t => t.name === 'confidence'); }",
                           timeout=120_000)
    settled(page)
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


# The toolbar's and the legend's boxes on the page, and the colour plotly drew cluster_0 in.
MAP_PARTS = """() => {
  const gd = document.querySelector('.st-key-map_chart .js-plotly-plot');
  const box = (sel) => { const e = gd.querySelector(sel); if (!e) return null;
    const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; };
  const zero = gd._fullData.find(t => t.name === 'cluster_0');
  return {modebar: box('.modebar'), legend: box('.legend'), plot: box('.nsewdrag'),
          zero: zero ? zero.marker.color : null, names: gd._fullData.map(t => t.name)};
}"""


def test_map_legend_clear_of_the_toolbar_and_one_name_per_cluster(page, app_url: str, app_home: Path) -> None:  # noqa: ANN001
    from ui.figures import colour

    run = make_run(app_home, seed=4)
    open_explore(page, app_url, run)
    plot = page.locator(PLOT).first
    plot.hover()                                        # the toolbar shows while the mouse is on the map
    page.locator(f"{PLOT} .modebar").first.wait_for()
    parts = page.evaluate(MAP_PARTS)
    (ml, mt, mr, mb), (ll, lt, lr, lb) = parts["modebar"], parts["legend"]
    assert mr <= ll or lr <= ml or mb <= lt or lb <= mt, parts      # the boxes do not meet
    assert lt >= parts["plot"][3] - 1, parts                          # the legend is under the map
    assert sorted(parts["names"]) == [f"cluster_{c}" for c in range(10)]
    assert parts["zero"].lower() == colour(0).lower()
    # the features job that opening the run started belongs to the Review page: its notice stays there
    assert page.get_by_text("Features reused from the cache").count() == 0
    # the gallery and the prototypes say the same names
    page.get_by_text(re.compile(r"^cluster_0 · [\d,]+ images$")).first.wait_for()
    page.get_by_text(re.compile(r"^cluster_0: [\d,]+ images")).first.wait_for()
    shot(page, "explore-legend")


def checked_option(page, label: str) -> str:  # noqa: ANN001
    """The text of the checked option of the radio group labelled ``label``."""
    group = page.locator('[data-testid="stRadio"]', has_text=label).first
    return group.locator("label", has=page.locator("input:checked")).first.inner_text().strip()


def test_map_type_and_threshold_are_kept_when_coming_back(page, app_url: str, app_home: Path) -> None:  # noqa: ANN001
    run = make_run(app_home, seed=6)
    open_explore(page, app_url, run)
    assert checked_option(page, "Map").startswith("PCA")            # the run's own map
    page.locator('[data-testid="stRadio"]', has_text="Map").get_by_text("t-SNE (keeps neighbours)").click()
    page.wait_for_function("() => document.querySelector('.st-key-map_chart .js-plotly-plot')")
    settled(page)
    goto(page, "Cluster")
    settled(page)
    slider = page.locator('[data-testid="stSlider"]', has_text="Doubtful below confidence").first
    thumb = slider.get_by_role("slider")
    thumb.focus()
    for _ in range(3):                                               # 0.20 → 0.35 in steps of 0.05
        thumb.press("ArrowRight")
    settled(page)
    page.get_by_text("doubtful (confidence < 0.35)").first.wait_for()
    goto(page, "Review")
    settled(page)
    goto(page, "Explore")
    page.locator(PLOT).first.wait_for(timeout=120_000)
    settled(page)
    assert checked_option(page, "Map").startswith("t-SNE")
    goto(page, "Cluster")
    settled(page)
    assert slider.locator('[data-testid="stSliderThumbValue"]').inner_text() == "0.35"
    page.get_by_text("doubtful (confidence < 0.35)").first.wait_for()


def test_the_lassoed_images_are_shown_on_review_before_a_move(page, app_url: str, app_home: Path) -> None:  # noqa: ANN001
    run = make_run(app_home, seed=7)
    open_explore(page, app_url, run)
    lassoed = lasso_middle(page, page.locator(PLOT).first)
    assert lassoed, "the lasso selected no points"
    settled(page)
    goto(page, "Review")
    settled(page)
    take = page.get_by_role("button", name=f"Use the map selection ({len(lassoed):,})")
    take.click()
    page.get_by_text(f"{len(lassoed):,} image(s) selected").first.wait_for()
    settled(page)
    panel = page.get_by_text(re.compile(rf"^See the {len(lassoed):,} selected image\(s\)")).first
    panel.wait_for()
    if not page.locator("#rv-selected-grid").is_visible():              # all on the page: opened by a click
        panel.click()
    grid = page.locator("#rv-selected-grid [data-sample-id]")
    grid.first.wait_for()
    shown = grid.evaluate_all("els => els.map(e => e.getAttribute('data-sample-id'))")
    assert len(shown) == min(60, len(lassoed)) and set(shown) <= set(lassoed)
    shot(page, "review-selection-panel")
