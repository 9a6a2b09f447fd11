"""The big map in a real browser (issue 28 item 3): a run of 70,000 Fashion-MNIST images (above the
big map's threshold) opens on the Explore page as a server-drawn image; the wheel zooms (the
server draws the new range), a box and a lasso select, and the gallery shows exactly the images
inside them; a double-click clears the selection.

The expected ids are worked out here from the run's own map and the view the canvas shows, with
plain inequalities (a box) and barycentric coordinates (a triangle), not with ui.bigmap's code.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from core.store import Store
from tests.e2e.test_browser import goto, shot
from tests.e2e.test_review_browser import settled

pytestmark = pytest.mark.e2e

CANVAS = ".st-key-bigmap canvas"
HEADER = re.compile(r"Selection: [\d,]+ image")


def make_big_run(home: Path) -> tuple[int, np.ndarray, list[str]]:
    """Fashion-MNIST's 70,000 images as 8×8 pixels (64 dimensions: k-means in seconds), a PCA map."""
    from core.config import ClusterConfig, DataConfig, FeatureConfig, MapConfig, RunConfig
    from core.pipeline import run_pipeline

    res = run_pipeline(RunConfig(data=DataConfig(source="fashion-mnist-all"),
                                 features=FeatureConfig(backbone="pixels", image_size=8),
                                 cluster=ClusterConfig(algo="kmeans", k=10, seed=0), map=MapConfig(method="pca"),
                                 workspace=str(home)))
    with Store(home) as store:
        ids = store.dataset_ids(store.run(res.run_id)["dataset_id"])
    return res.run_id, np.asarray(res.map_2d, dtype=np.float64), ids


def wait_drawn(page) -> None:  # noqa: ANN001
    page.locator(f'{CANVAS}[data-rendered="1"]').wait_for(timeout=120_000)
    settled(page)


def view(page) -> list[float]:  # noqa: ANN001
    return json.loads(page.locator(CANVAS).get_attribute("data-view"))


def to_data(page, points: list[tuple[int, int]]) -> np.ndarray:  # noqa: ANN001
    """Page pixels -> map coordinates through the view the canvas shows."""
    box = page.locator(CANVAS).bounding_box()
    x0, x1, y0, y1 = view(page)
    return np.array([[x0 + (sx - box["x"]) / box["width"] * (x1 - x0), y1 - (sy - box["y"]) / box["height"] * (y1 - y0)]
                     for sx, sy in points])


def centred(canvas) -> dict:  # noqa: ANN001
    """The canvas scrolled to the middle of the window, whole (mouse events off the window are
    lost), and its box measured there (a selection's gallery below it can move the page)."""
    canvas.evaluate("c => c.scrollIntoView({block: 'center'})")
    return canvas.bounding_box()


def drag(page, points: list[tuple[int, int]]) -> None:  # noqa: ANN001
    page.mouse.move(*points[0])
    page.mouse.down()
    for p in points[1:]:
        page.mouse.move(*p, steps=6)
    page.mouse.up()


def gallery(page, lo: int, hi: int) -> tuple[int, list[str]]:  # noqa: ANN001
    """The selection's count (its header) and the ids its tiles show, once the header says a
    count from ``lo`` to ``hi`` (the previous selection's header stays up until the new one is in;
    on a timeout the test fails: the gallery never showed the selection)."""
    page.wait_for_function("([lo, hi]) => [...document.querySelectorAll('h3')].some(e => {"
                           " const m = /^Selection: ([0-9,]+) image/.exec(e.textContent);"
                           " const n = m ? parseInt(m[1].replace(/,/g, '')) : -1; return n >= lo && n <= hi; })",
                           arg=[lo, hi], timeout=60_000)
    settled(page)
    header = page.get_by_text(HEADER).first.inner_text()
    page.locator("#selection-grid [data-sample-id]").first.wait_for()
    shown = page.locator("#selection-grid [data-sample-id]").evaluate_all(
        "els => els.map(e => e.getAttribute('data-sample-id'))")
    return int(re.search(r"([\d,]+)", header).group(1).replace(",", "")), shown


def test_big_map_zooms_and_its_box_and_lasso_fill_the_gallery(page, app_url: str, app_home: Path) -> None:  # noqa: ANN001
    run, xy, ids = make_big_run(app_home)
    assert len(xy) == 70_000
    page.goto(f"{app_url}/review?run={run}")
    page.locator('[data-testid="stSidebar"]').get_by_text(f"Run: #{run}", exact=True).wait_for(timeout=120_000)
    settled(page)
    goto(page, "Explore")
    page.get_by_text(f"Run #{run}:").first.wait_for(timeout=120_000)
    wait_drawn(page)
    assert page.locator(".st-key-map_chart").count() == 0          # not plotly's map at this size
    canvas = page.locator(CANVAS)
    canvas.scroll_into_view_if_needed()
    # the image is coloured: several clusters' colours are on it
    colours = canvas.evaluate("""c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        const seen = new Set();
        for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 0) seen.add(d[i] << 16 | d[i + 1] << 8 | d[i + 2]);
        return seen.size; }""")
    assert colours >= 10
    full = view(page)

    # zoom in around the middle: the server draws the narrower range
    box = centred(canvas)
    mid = (round(box["x"] + box["width"] / 2), round(box["y"] + box["height"] / 2))
    page.mouse.move(*mid)
    for _ in range(3):
        page.mouse.wheel(0, -200)
        page.wait_for_timeout(50)
    wait_drawn(page)
    zoomed = view(page)
    assert zoomed[1] - zoomed[0] < 0.6 * (full[1] - full[0])
    assert zoomed[0] > full[0] and zoomed[1] < full[1]

    # a box around the middle of the zoomed view
    page.get_by_role("button", name="Box").click()
    box = centred(canvas)
    a = (round(box["x"] + box["width"] * 0.35), round(box["y"] + box["height"] * 0.35))
    b = (round(box["x"] + box["width"] * 0.6), round(box["y"] + box["height"] * 0.7))
    (ax, ay), (bx, by) = to_data(page, [a, b])
    drag(page, [a, (b[0], a[1]), b])
    inside = ((xy[:, 0] >= min(ax, bx)) & (xy[:, 0] <= max(ax, bx))
              & (xy[:, 1] >= min(ay, by)) & (xy[:, 1] <= max(ay, by)))
    expected = {ids[i] for i in np.flatnonzero(inside)}
    assert len(expected) > 60
    n, shown = gallery(page, len(expected), len(expected))
    assert n == len(expected)
    box_n = n
    assert len(shown) == 60 and set(shown) <= expected
    shot(page, "bigmap-box")

    # a lasso: a triangle, drawn corner to corner (the mouse's steps lie on its edges)
    page.get_by_role("button", name="Lasso").click()
    wait_drawn(page)
    box = centred(canvas)
    corners = [(round(box["x"] + box["width"] * fx), round(box["y"] + box["height"] * fy))
               for fx, fy in ((0.3, 0.3), (0.7, 0.4), (0.45, 0.8))]
    p0, p1, p2 = to_data(page, corners)
    drag(page, [*corners, corners[0]])
    d = (p1[1] - p2[1]) * (p0[0] - p2[0]) + (p2[0] - p1[0]) * (p0[1] - p2[1])
    l1 = ((p1[1] - p2[1]) * (xy[:, 0] - p2[0]) + (p2[0] - p1[0]) * (xy[:, 1] - p2[1])) / d
    l2 = ((p2[1] - p0[1]) * (xy[:, 0] - p2[0]) + (p0[0] - p2[0]) * (xy[:, 1] - p2[1])) / d
    expected = {ids[i] for i in np.flatnonzero((l1 > 0) & (l2 > 0) & (1 - l1 - l2 > 0))}
    assert len(expected) > 60
    # the lasso keeps a point of the mouse's path every 3 pixels: a point within a pixel of an
    # edge may fall either way
    slack = max(3, len(expected) // 200)
    assert abs(box_n - len(expected)) > slack     # so the box's header, still up, cannot pass for the lasso's
    n, shown = gallery(page, len(expected) - slack, len(expected) + slack)
    assert abs(n - len(expected)) <= slack
    assert len(shown) == 60 and len(set(shown) - expected) <= 2
    shot(page, "bigmap-lasso")

    # a double-click clears the selection
    canvas.dblclick(position={"x": 5, "y": 5})
    page.get_by_text(HEADER).first.wait_for(state="detached", timeout=60_000)
    assert page.locator("#selection-grid").count() == 0
