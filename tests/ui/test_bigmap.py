"""ui.bigmap (issue 28 item 3): the points a lasso or box encloses (concave lassos too), the image's
colours (a cluster's point is drawn in that cluster's colour), the render cache's key on zoom."""
from __future__ import annotations

import numpy as np
import pytest

from ui import bigmap, figures
from ui.bigmap import View, canvas_width, full_view, points_in_polygon, render, view_key, view_of_key


def _ids(mask: np.ndarray, ids: list[str]) -> set[str]:
    return {ids[i] for i in np.flatnonzero(mask)}


def test_a_box_selects_exactly_the_points_inside_it():
    xy = np.array([[0.5, 0.5], [1.5, 0.5], [0.2, 0.9], [-0.1, 0.5], [0.5, 1.2]], dtype=np.float32)
    ids = ["in-a", "out-right", "in-b", "out-left", "out-top"]
    mask = points_in_polygon(xy, [0, 1, 1, 0], [0, 0, 1, 1])
    assert _ids(mask, ids) == {"in-a", "in-b"}


def test_a_concave_lasso_leaves_out_the_points_in_its_notch():
    # a U: two arms (x 0..1 and 2..3, y 0..3) joined by a base (y 0..1); the notch x 1..2, y 1..3 is outside
    ux = [0, 3, 3, 2, 2, 1, 1, 0]
    uy = [0, 0, 3, 3, 1, 1, 3, 3]
    xy = np.array([[0.5, 2.5], [2.5, 2.5], [1.5, 0.5], [1.5, 2.0], [1.5, 2.9], [3.5, 0.5], [0.5, -0.2]])
    ids = ["left-arm", "right-arm", "base", "notch", "notch-top", "right-of-it", "below-it"]
    assert _ids(points_in_polygon(xy, ux, uy), ids) == {"left-arm", "right-arm", "base"}
    # the same U drawn the other way round selects the same points
    assert _ids(points_in_polygon(xy, ux[::-1], uy[::-1]), ids) == {"left-arm", "right-arm", "base"}


def test_a_lasso_of_fewer_than_three_points_selects_nothing():
    xy = np.zeros((4, 2))
    assert not points_in_polygon(xy, [0, 1], [0, 1]).any()
    assert not points_in_polygon(xy, [], []).any()
    assert not points_in_polygon(np.zeros((0, 2)), [0, 1, 1], [0, 0, 1]).any()


def test_the_polygon_test_agrees_with_a_brute_force_one_on_many_points():
    rng = np.random.default_rng(0)
    xy = rng.uniform(-1, 1, size=(20_000, 2))
    # a star (concave, 10 vertices): inside iff the radius is below the star's radius at that angle
    angles = np.arange(10) * np.pi / 5
    radii = np.where(np.arange(10) % 2 == 0, 0.9, 0.35)
    px, py = radii * np.cos(angles), radii * np.sin(angles)
    mask = points_in_polygon(xy, px, py)
    # brute force: the winding number of each point around the star (numpy, edge by edge)
    wind = np.zeros(len(xy))
    for i in range(10):
        a = np.arctan2(py[i] - xy[:, 1], px[i] - xy[:, 0])
        b = np.arctan2(py[(i + 1) % 10] - xy[:, 1], px[(i + 1) % 10] - xy[:, 0])
        wind += (b - a + np.pi) % (2 * np.pi) - np.pi
    assert mask.sum() > 1000
    assert np.array_equal(mask, np.abs(wind) > np.pi)


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    h = hex_colour.lstrip("#")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


def test_a_clusters_point_is_drawn_in_that_clusters_colour():
    # view 0..10 × 0..10 on 100 × 50 pixels: pixel column = floor(x * 10), row from the top = 49 - floor(y * 5)
    xy = np.array([[2.05, 7.05], [2.05, 7.05], [8.55, 1.05], [5.05, 5.05]], dtype=np.float32)
    groups = np.array([3, 3, 7, 0])
    df = bigmap.frame(xy, groups)
    img = render(df, View(0, 10, 0, 10), figures.colour, width=100, height=50, spread=0)
    assert img.shape == (50, 100, 4) and img.dtype == np.uint8
    for (x, y), g in zip(xy, groups, strict=True):
        col, row = int(x * 10), 49 - int(y * 5)
        assert tuple(img[row, col, :3]) == _rgb(figures.colour(g)), (x, y, g)
        assert img[row, col, 3] > 0
    assert img[0, 0, 3] == 0 and img[25, 80, 3] == 0        # where no point lies: transparent
    assert int((img[..., 3] > 0).sum()) == 3                 # three pixels hold points


def test_true_classes_use_their_own_palette_and_a_pan_moves_the_point():
    xy = np.array([[1.0, 1.0]], dtype=np.float32)
    df = bigmap.frame(xy, np.array([2]))
    a = render(df, View(0, 4, 0, 4), figures.class_colour, width=40, height=40, spread=0)
    b = render(df, View(-2, 2, 0, 4), figures.class_colour, width=40, height=40, spread=0)   # panned left by 2
    ra, ca = np.argwhere(a[..., 3] > 0)[0]
    rb, cb = np.argwhere(b[..., 3] > 0)[0]
    assert tuple(a[ra, ca, :3]) == _rgb(figures.class_colour(2))
    assert (ra, ca + 20) == (rb, cb)


def test_confidence_runs_from_red_to_green():
    xy = np.array([[1.0, 1.0], [3.0, 3.0]], dtype=np.float32)
    df = bigmap.frame(xy, values=np.array([0.0, 1.0]))
    img = render(df, View(0, 4, 0, 4), figures.colour, width=40, height=40, spread=0)
    low, high = img[39 - 10, 10], img[39 - 30, 30]
    assert tuple(low[:3]) == _rgb(bigmap.CONFIDENCE_CMAP[0]) and tuple(high[:3]) == _rgb(bigmap.CONFIDENCE_CMAP[-1])


def test_an_empty_view_is_a_transparent_image():
    df = bigmap.frame(np.array([[1.0, 1.0]], dtype=np.float32), np.array([0]))
    img = render(df, View(5, 6, 5, 6), figures.colour, width=30, height=20)
    assert img.shape == (20, 30, 4) and not img[..., 3].any()


def test_the_render_cache_key_changes_on_zoom_and_not_on_float_noise():
    full = View(-10.0, 10.0, -5.0, 5.0)
    assert view_key(full, full) == (0, 10_000, 0, 10_000)
    noisy = View(-10.0 + 1e-7, 10.0 - 1e-7, -5.0, 5.0 + 1e-8)
    assert view_key(noisy, full) == view_key(full, full)
    zoomed = View(-5.0, 5.0, -2.5, 2.5)
    assert view_key(zoomed, full) == (2_500, 7_500, 2_500, 7_500)
    assert view_key(zoomed, full) != view_key(full, full)
    back = view_of_key(view_key(zoomed, full), full)
    assert back.as_list() == pytest.approx(zoomed.as_list())


def test_the_image_cache_renders_a_view_once(monkeypatch):
    calls: list[View] = []
    real = bigmap.render

    def counting(df, view, palette, **kw):  # noqa: ANN001, ANN202
        calls.append(view)
        return real(df, view, palette, **kw)

    monkeypatch.setattr(bigmap, "render", counting)
    rng = np.random.default_rng(1)
    xy = rng.normal(size=(500, 2)).astype(np.float32)
    groups = rng.integers(0, 3, 500)
    token = f"test-cache-{rng.integers(1 << 30)}"
    full = bigmap._cached_full(token, _xy=xy)
    kw = dict(_xy=xy, _groups=groups, _values=None, _palette=figures.colour)
    whole = bigmap._image(token, view_key(full, full), 300, 200, **kw)
    again = bigmap._image(token, view_key(View(full.x0 + 1e-9, full.x1, full.y0, full.y1), full), 300, 200, **kw)
    zoomed = bigmap._image(token, view_key(View(-1, 1, -1, 1), full), 300, 200, **kw)
    assert whole == again and whole != zoomed
    assert len(calls) == 2 and calls[1].as_list() == pytest.approx([-1, 1, -1, 1], abs=1e-3)
    assert whole.startswith("data:image/png;base64,")


def test_the_whole_map_has_a_margin_and_a_browser_view_is_checked():
    v = full_view(np.array([[0.0, 0.0], [10.0, 2.0]]))
    assert v.x0 < 0 < 10 < v.x1 and v.y0 < 0 < 2 < v.y1
    assert full_view(np.array([[1.0, 1.0]])).x1 > full_view(np.array([[1.0, 1.0]])).x0
    assert View.parse({"x0": 0, "x1": 1, "y0": 0, "y1": 2}) == View(0, 1, 0, 2)
    for bad in (None, {"x0": 0}, {"x0": 1, "x1": 0, "y0": 0, "y1": 1}, {"x0": "a", "x1": 1, "y0": 0, "y1": 1},
                {"x0": 0, "x1": float("nan"), "y0": 0, "y1": 1}):
        assert View.parse(bad) is None
    assert canvas_width({"w": 1200}) == 1200 and canvas_width({"w": 10}) == 300 and canvas_width(None) == 900


def test_legend_lists_groups_by_id_with_outliers_last():
    rows = bigmap.legend(np.array([2, 0, 0, -1, 2, 2]), lambda c: f"c{c}", figures.colour, figures.OUTLIER_COLOUR)
    assert [(r["name"], r["n"]) for r in rows] == [("c0", 2), ("c2", 3), ("outliers", 1)]
    assert rows[-1]["colour"] == figures.OUTLIER_COLOUR and rows[0]["colour"] == figures.colour(0)


def test_the_threshold_reads_its_environment_variable(monkeypatch):
    monkeypatch.delenv(bigmap.THRESHOLD_ENV, raising=False)
    assert bigmap.threshold() == bigmap.DEFAULT_THRESHOLD
    assert not bigmap.use_bigmap(bigmap.DEFAULT_THRESHOLD) and bigmap.use_bigmap(bigmap.DEFAULT_THRESHOLD + 1)
    monkeypatch.setenv(bigmap.THRESHOLD_ENV, "1000")
    assert bigmap.use_bigmap(1001) and not bigmap.use_bigmap(1000)


def test_a_click_picks_the_nearest_point_within_its_radius():
    xy = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 10.0]])
    assert bigmap.nearest(xy, 0.9, 0.1, 0.5, 0.5) == 1
    assert bigmap.nearest(xy, 0.1, 8.0, 0.5, 3.0) == 2          # the axes' radii differ (data units per pixel)
    assert bigmap.nearest(xy, 0.5, 5.0, 0.5, 0.5) is None        # nothing that near
    assert bigmap.nearest(xy, 0.45, 0.45, 0.5, 0.5) is None      # inside the box, outside the ellipse
    assert bigmap.nearest(np.zeros((0, 2)), 0, 0, 1, 1) is None
