"""The README's screenshot, made by driving the real app: digits demo → pixels → k-means → Explore.

Run `python3 -m pytest -q tests/e2e/test_screenshot.py` after a change to the app's look and commit
assets/screenshot.png, so the picture on the README is the app as it is now.
"""
from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.e2e.conftest import ROOT
from tests.e2e.test_browser import HOVERED_IN_PLOTLY, POINT_XY, goto, pick

pytestmark = pytest.mark.e2e

SCREENSHOT = ROOT / "assets" / "screenshot.png"
VIEWPORT = {"width": 1400, "height": 900}
MAX_BYTES = 300_000     # the README's picture stays small enough to keep in git

# How many points the Explore map draws, all traces together (plotly's decoded traces: the
# figure's own arrays arrive base64-packed).
MAP_POINTS = """() => {
  const gd = document.querySelector('.st-key-map_chart .js-plotly-plot');
  return gd && gd._fullData ? gd._fullData.reduce((n, t) => n + (t.x ? t.x.length : 0), 0) : 0;
}"""


# The preview lives in a component's shadow root: read through Playwright's locators, which pierce it.


def preview_of_hovered(page, seconds: float) -> str | None:  # noqa: ANN001
    """The id the preview shows once it shows the hovered point (None if it does not in time)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        hovered = page.evaluate(HOVERED_IN_PLOTLY)
        if hovered and page.locator(f'.cl-hover img[data-sample-id="{hovered}"]').count():
            return hovered
        page.wait_for_timeout(250)
    return None


def hover_a_point(page) -> None:  # noqa: ANN001
    """Move the mouse onto the map's first point (on a UMAP map points overlap, so plotly may
    hover a neighbour of it: whichever it hovers is the one the preview must show)."""
    x, y = page.evaluate(POINT_XY)
    page.mouse.move(x - 20, y - 20)
    page.mouse.move(x, y, steps=5)


def test_readme_screenshot(browser, app_url: str) -> None:  # noqa: ANN001
    ctx = browser.new_context(viewport=VIEWPORT)
    page = ctx.new_page()
    page.set_default_timeout(60_000)
    try:
        page.goto(app_url)
        page.get_by_role("heading", name="Data").first.wait_for()
        pick(page, "Demo", "digits")
        page.get_by_role("button", name="Use this demo").click()
        page.get_by_text("1,797").first.wait_for()

        goto(page, "Features")
        pick(page, "Backbone", "pixels")
        page.get_by_text("raw pixels in [0,1]").first.wait_for()   # the choice applied before the click
        page.get_by_role("button", name="Extract features").click()
        page.get_by_text("1,797 images × 64 dimensions").first.wait_for(timeout=120_000)

        goto(page, "Cluster")
        page.get_by_role("button", name="Run", exact=True).click()
        # this session's run: the sidebar names it (the workspace may hold other tests' runs,
        # whose "Run #N" the Cluster page lists at once)
        page.locator('[data-testid="stSidebar"]').get_by_text(re.compile(r"^Run: #\d+$")).first.wait_for(
            timeout=120_000)

        goto(page, "Explore")
        page.get_by_text(re.compile(r"^Run #\d+: demo: digits, 10 clusters\.")).first.wait_for(timeout=120_000)
        plot = page.locator(".st-key-map_chart .js-plotly-plot").first
        plot.wait_for(timeout=180_000)      # the first map is drawn in the background
        try:
            page.wait_for_function(f"() => ({MAP_POINTS})() === 1797", timeout=30_000)
        except PlaywrightTimeout:
            pass    # the assertion below says what the map drew instead
        assert page.evaluate(MAP_POINTS) == 1797, \
            f"the map should draw every one of the 1,797 digits, it drew {page.evaluate(MAP_POINTS)}"
        assert page.locator(".st-key-map_chart .legendtext").count() == 10   # one colour per cluster

        # A hovered point shows its image beside the map: the picture shows what the map is for.
        # (The page is at its top, where the picture is taken; a first hover can come before the
        # preview's listeners attach, so hover again, as a person would.)
        shown = None
        for _attempt in range(5):
            hover_a_point(page)
            shown = preview_of_hovered(page, 15)
            if shown:
                break
            page.mouse.move(1, 1)
        assert shown, "the preview beside the map never showed the hovered point's image"
        assert page.locator(".cl-hover img").get_attribute("src").startswith("data:image/png;base64,")
        caption = page.locator(".cl-hover figcaption").inner_text()
        assert caption.startswith(f"{shown} · cluster_"), f"the preview's caption {caption!r} is not {shown}'s"
        SCREENSHOT.parent.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), type="png")
    finally:
        ctx.close()
    data = SCREENSHOT.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) < MAX_BYTES, f"assets/screenshot.png is {len(data):,} bytes; keep it under {MAX_BYTES:,}"
