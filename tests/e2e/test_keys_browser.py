"""Review in a real browser, issue 26 items 4 and 5: keyboard shortcuts change the workspace's labels
and undo restores them; a tile's ⤢ opens the enlarged view; captions are never cut off.

Each test makes its own run in the shared server's workspace and opens it by its address
(?run=N), then waits for *its* run in the sidebar ("Run: #N"), not any earlier test's.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.e2e.test_browser import shot
from tests.e2e.test_explore_browser import make_run
from tests.e2e.test_review_browser import TILES, labels_now, settled, tile_ids

pytestmark = pytest.mark.e2e


def open_review(page, url: str, run: int) -> None:  # noqa: ANN001
    page.goto(f"{url}/review?run={run}")
    page.locator('[data-testid="stSidebar"]').get_by_text(f"Run: #{run}", exact=True).wait_for(timeout=120_000)
    page.get_by_text(re.compile(rf"^Run #{run} \(kmeans\)")).first.wait_for(timeout=120_000)
    page.locator(TILES).first.wait_for()
    settled(page)


def wait_labels(home: Path, run: int, want, timeout_s: float = 60) -> list[int]:  # noqa: ANN001
    """Poll the database until ``want(labels)`` holds (a key's edit is written by the server)."""
    import time

    end = time.monotonic() + timeout_s
    while True:
        labels = labels_now(home, run)[1]
        if want(labels) or time.monotonic() > end:
            return labels
        time.sleep(0.2)


def test_keys_select_move_undo_redo_outlier_and_page(page, app_url: str, app_home: Path) -> None:  # noqa: ANN001
    run = make_run(app_home, seed=11)
    open_review(page, app_url, run)
    ids, before, _ = labels_now(app_home, run)
    shown = tile_ids(page)
    first, second = shown[:2]
    rows = [ids.index(first), ids.index(second)]
    target = next(c for c in range(10) if c not in (before[rows[0]], before[rows[1]]))

    # select the first tile with a click, the second with the keyboard cursor and Space
    page.locator(f'{TILES}[data-id="{first}"]').click()
    page.wait_for_selector(f'.cl-pick[data-id="{first}"][aria-pressed="true"]', state="attached")
    page.keyboard.press("ArrowRight")
    page.wait_for_selector(f'.cl-pick.cl-cur[data-id="{second}"]', state="attached")
    page.keyboard.press("x")
    page.wait_for_selector(f'.cl-pick[data-id="{second}"][aria-pressed="true"]', state="attached")
    page.get_by_text("2 image(s) selected").first.wait_for()
    settled(page)

    page.keyboard.press(str(target))                                 # move to cluster N
    page.get_by_text(f"Moved 2 image(s) to cluster_{target}. Saved.").first.wait_for()
    after = wait_labels(app_home, run, lambda lab: lab[rows[0]] == target)
    assert [after[r] for r in rows] == [target, target]
    settled(page)
    shot(page, "keys-1-moved")

    page.keyboard.press("z")                                         # undo: back as it was
    page.get_by_text("Undone. Saved.").first.wait_for()
    assert wait_labels(app_home, run, lambda lab: lab == before) == before
    settled(page)
    page.keyboard.press("Shift+Z")                                   # redo
    page.get_by_text("Redone. Saved.").first.wait_for()
    assert [wait_labels(app_home, run, lambda lab: lab[rows[0]] == target)[r] for r in rows] == [target, target]
    settled(page)
    page.keyboard.press("Control+z")                                 # undo again, the other way
    page.get_by_text("Undone. Saved.").first.wait_for()
    assert wait_labels(app_home, run, lambda lab: lab == before) == before
    settled(page)

    third = tile_ids(page)[0]
    page.locator(f'{TILES}[data-id="{third}"]').click()
    page.get_by_text("1 image(s) selected").first.wait_for()
    settled(page)
    page.keyboard.press("o")                                         # outliers
    page.get_by_text("Moved 1 image(s) to the outliers. Saved.").first.wait_for()
    assert wait_labels(app_home, run, lambda lab: lab[ids.index(third)] == -1)[ids.index(third)] == -1
    settled(page)

    page1 = tile_ids(page)
    page.keyboard.press("n")                                         # next page
    page.get_by_text(re.compile(r"page 2 of \d+")).first.wait_for()
    settled(page)
    page2 = tile_ids(page)
    assert page2 and not set(page1) & set(page2)
    page.keyboard.press("p")
    page.get_by_text(re.compile(r"page 1 of \d+")).first.wait_for()
    settled(page)
    assert tile_ids(page)[0] in page1
    # the shortcuts are listed on the page
    page.get_by_text("Keys:").first.wait_for()


def test_enlarge_a_tile_and_captions_are_whole(page, app_url: str, app_home: Path) -> None:  # noqa: ANN001
    run = make_run(app_home, seed=12)
    open_review(page, app_url, run)
    # no caption is cut off ("cluster_3 · 0.…"): every caption's text fits its box
    cut = page.locator(f"{TILES} span.cap").evaluate_all(
        "els => els.filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.textContent)")
    assert cut == []
    captions = page.locator(f"{TILES} span.cap").all_inner_texts()
    assert all(re.fullmatch(r"cluster_\d+ · \d\.\d\d", c.replace("\n", " ")) for c in captions), captions[:3]

    sid = tile_ids(page)[3]
    page.locator(f'.cl-open[data-open="{sid}"]').click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text("A closer look").first.wait_for()
    dialog.locator(f'img.cl-big[data-sample-id="{sid}"]').wait_for()
    ids, labels, _ = labels_now(app_home, run)
    row = ids.index(sid)
    from sklearn.datasets import load_digits

    facts = dialog.locator('[data-testid="stMarkdownContainer"]', has_text="Confidence:").first.inner_text()
    assert f"Cluster: cluster_{labels[row]}" in facts
    assert f"True label: {int(load_digits().target[row])}" in facts
    dialog.get_by_text("Never edited").first.wait_for()
    dialog.locator("#enlarged-neighbours [data-sample-id]").first.wait_for()
    neigh = dialog.locator("#enlarged-neighbours [data-sample-id]").evaluate_all(
        "els => els.map(e => e.getAttribute('data-sample-id'))")
    assert len(neigh) == 8 and sid not in neigh
    shot(page, "keys-2-enlarged")
    page.keyboard.press("Escape")
    dialog.wait_for(state="detached")
    settled(page)
    # closed for good: another rerun (a tile click) does not bring it back
    page.locator(f'{TILES}[data-id="{sid}"]').click()
    page.get_by_text("1 image(s) selected").first.wait_for()
    settled(page)
    assert page.get_by_role("dialog").count() == 0


def test_a_click_on_an_explore_gallery_tile_opens_the_enlarged_view(page, app_url: str,  # noqa: ANN001
                                                                    app_home: Path) -> None:
    from tests.e2e.test_explore_browser import open_explore

    run = make_run(app_home, seed=13)
    open_explore(page, app_url, run)
    tile = page.locator("#cluster-grid [data-sample-id]").nth(2)
    tile.wait_for()
    sid = tile.get_attribute("data-sample-id")
    tile.scroll_into_view_if_needed()
    tile.click()
    dialog = page.get_by_role("dialog")
    dialog.locator(f'img.cl-big[data-sample-id="{sid}"]').wait_for()
    ids, labels, _ = labels_now(app_home, run)
    facts = dialog.locator('[data-testid="stMarkdownContainer"]', has_text="Confidence:").first.inner_text()
    assert f"Cluster: cluster_{labels[ids.index(sid)]}" in facts
    dialog.locator("#enlarged-neighbours [data-sample-id]").first.wait_for()   # one HTML block: all 8 at once
    assert dialog.locator("#enlarged-neighbours [data-sample-id]").count() == 8
    shot(page, "keys-3-explore-enlarged")
    dialog.locator(".st-key-w_enlarged_close button").click()
    dialog.wait_for(state="detached")
