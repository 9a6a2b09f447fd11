"""The whole path in a real browser: demo → features → clusters → hover preview → lasso shows exactly those images."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.e2e.conftest import ARTIFACTS

pytestmark = pytest.mark.e2e

# Ids of the points plotly itself marks as selected (customdata of selectedpoints, every trace).
SELECTED_IN_PLOTLY = """() => {
  const gd = document.querySelector('.js-plotly-plot');
  const ids = [];
  for (const t of gd.data) {
    for (const i of (t.selectedpoints || [])) ids.push(String(t.customdata[i]));
  }
  return ids;
}"""


# The sample id of the point plotly is showing a hover label for.
HOVERED_IN_PLOTLY = """() => {
  const gd = document.querySelector('.st-key-map_chart .js-plotly-plot');
  const h = (gd && gd._hoverdata) || [];
  return h.length ? String(h[0].customdata) : null;
}"""

# Page pixel position of point 0 of trace 0, from plotly's own axis mapping.
POINT_XY = """() => {
  const gd = document.querySelector('.st-key-map_chart .js-plotly-plot');
  const L = gd._fullLayout, r = gd.getBoundingClientRect(), t = gd._fullData[0];
  return [r.left + L._size.l + L.xaxis.l2p(t.x[0]), r.top + L._size.t + L.yaxis.l2p(t.y[0])];
}"""



def lasso_middle(page, plot, frac: float = 0.08) -> list[str]:  # noqa: ANN001
    """Lasso a square around the middle of the map (``frac`` of its width and height each way,
    starting off the map so the lasso starts clean); the ids plotly marks as selected."""
    page.mouse.move(1, 1)
    box = plot.locator(".nsewdrag").first.bounding_box()
    cx, cy = box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5
    w, h = box["width"] * frac, box["height"] * frac
    polygon = [(cx - w, cy - h), (cx + w, cy - h), (cx + w, cy + h), (cx - w, cy + h), (cx - w, cy - h)]
    page.mouse.move(*polygon[0])
    page.mouse.down()
    for x, y in polygon[1:]:
        page.mouse.move(x, y, steps=8)
    page.mouse.up()
    page.get_by_text(re.compile(r"Selection: [\d,]+ image")).first.wait_for(timeout=60_000)
    return page.evaluate(SELECTED_IN_PLOTLY)

def hover_on_map(page, plot) -> None:  # noqa: ANN001
    plot.scroll_into_view_if_needed()
    x, y = page.evaluate(POINT_XY)
    page.mouse.move(x - 20, y - 20)
    page.mouse.move(x, y, steps=5)
    # wait for a hover, then for the path to settle: points crossed on the way are hovered first,
    # and reading one of those raced the preview of the point under the cursor. (On the UMAP map
    # points overlap, so the point under the cursor may be a neighbour of point 0: whichever is
    # hovered is the one the preview must show.)
    page.wait_for_function("() => { const gd = document.querySelector('.st-key-map_chart .js-plotly-plot');"
                           " return ((gd && gd._hoverdata) || []).length > 0; }")
    page.wait_for_timeout(500)


def goto(page, title: str) -> None:  # noqa: ANN001
    page.locator('[data-testid="stSidebarNav"] a', has_text=title).first.click()
    page.get_by_role("heading", name=title).first.wait_for()


def pick(page, label: str, option: str) -> None:  # noqa: ANN001
    page.locator('[data-testid="stSelectbox"]', has_text=label).first.click()
    page.get_by_role("option", name=re.compile(rf"^{re.escape(option)}")).first.click()


def shot(page, name: str) -> None:  # noqa: ANN001
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_demo_to_lasso_selection(page, app_url: str) -> None:  # noqa: ANN001
    page.goto(app_url)
    page.get_by_role("heading", name="Data").first.wait_for()
    pick(page, "Demo", "digits")
    page.get_by_role("button", name="Use this demo").click()
    page.get_by_text("1,797").first.wait_for()
    shot(page, "1-data")

    goto(page, "Features")
    pick(page, "Backbone", "pixels")
    # wait for the rerun that applies the choice: a click racing it would send the old image size
    page.get_by_text("raw pixels in [0,1]").first.wait_for()
    page.get_by_role("button", name="Extract features").click()
    page.get_by_text("Features ready").first.wait_for(timeout=120_000)
    page.get_by_text("1,797 images × 64 dimensions").first.wait_for()   # 8×8 pixels
    shot(page, "2-features")

    goto(page, "Cluster")
    page.get_by_role("button", name="Run", exact=True).click()
    page.get_by_text(re.compile(r"Run #\d+")).first.wait_for(timeout=120_000)
    page.get_by_text("ACC").first.wait_for()
    page.locator(".js-plotly-plot").first.wait_for()
    shot(page, "3-cluster")

    goto(page, "Explore")
    page.get_by_text("Cluster gallery").first.wait_for(timeout=120_000)
    plot = page.locator(".st-key-map_chart .js-plotly-plot").first
    plot.wait_for()
    cap = page.get_by_text(re.compile(r"^cluster_0: [\d,]+ images")).first.inner_text()
    n0 = int(re.search(r"cluster_0: ([\d,]+) images", cap).group(1).replace(",", ""))
    page.locator("#cluster-grid [data-sample-id]").first.wait_for()
    page.wait_for_function(f"() => document.querySelectorAll('#cluster-grid [data-sample-id]').length == {min(60, n0)}")
    shot(page, "4-explore")

    # Hover a real point: the preview beside the map shows exactly that sample's image. The first
    # hover can come before the preview's listeners attach to a just-drawn chart, so hover again,
    # as a person moving the mouse would, a few times at most.
    for _attempt in range(5):
        hover_on_map(page, plot)
        hovered = page.evaluate(HOVERED_IN_PLOTLY)
        assert hovered, "plotly reports no hovered point"
        preview = page.locator(f'.cl-hover img[data-sample-id="{hovered}"]')
        try:
            preview.wait_for(timeout=6_000)
            break
        except PlaywrightTimeout:
            page.mouse.move(1, 1)
    else:
        raise AssertionError(f"the preview never showed the hovered sample {hovered}")
    assert preview.get_attribute("src").startswith("data:image/png;base64,")
    assert page.locator(".cl-hover img").count() == 1
    page.locator(".cl-hover").screenshot(path=str(ARTIFACTS / "4b-hover-preview.png"))
    shot(page, "4c-hover")
    expected = lasso_middle(page, plot, 0.12)   # a region around the middle of the map
    assert expected, "the lasso selected no points; the map may not have drawn"
    header = page.get_by_text(re.compile(r"Selection: [\d,]+ image")).first.inner_text()
    assert int(re.search(r"([\d,]+)", header).group(1).replace(",", "")) == len(expected)
    page.locator("#selection-grid [data-sample-id]").first.wait_for()
    shown = page.locator("#selection-grid [data-sample-id]").evaluate_all(
        "els => els.map(e => e.getAttribute('data-sample-id'))")
    assert len(shown) == min(60, len(expected))
    assert set(shown) <= set(expected)
    if len(expected) <= 60:
        assert sorted(shown) == sorted(expected)
    shot(page, "5-lasso")
    page.locator("#selection-grid").scroll_into_view_if_needed()
    page.locator("#selection-grid").screenshot(path=str(ARTIFACTS / "6-selection-grid.png"))
    page.locator("#cluster-grid").screenshot(path=str(ARTIFACTS / "7-cluster-grid.png"))
