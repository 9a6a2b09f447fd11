"""Review in a real browser: click two tiles, move them, reload (the change is still there), undo."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from core.review import ReviewSession
from core.store import Store
from tests.e2e.conftest import ARTIFACTS
from tests.e2e.test_browser import goto, pick, shot

pytestmark = pytest.mark.e2e

TILES = ".cl-picker .cl-pick[data-id]"      # the tile picker's buttons (inside its shadow root)


def labels_now(home: Path, run: int) -> tuple[list[str], list[int], list[bool]]:
    with Store(home) as store:
        s = ReviewSession(store, run)
        return s.ids, s.current_labels().tolist(), s.corrected_mask().tolist()


def settled(page) -> None:  # noqa: ANN001
    """Wait until the app's script run is over (a rerun redraws widgets and closes open lists)."""
    page.wait_for_function("() => document.querySelector('[data-test-script-state]')"
                           "?.getAttribute('data-test-script-state') === 'notRunning'")


def choose(page, label: str, option: str) -> None:  # noqa: ANN001
    """Pick an option of a selectbox through its own "Open" button; a rerun landing just then can
    close the list, so open it again, as a person would (a few times at most)."""
    box = page.locator('[data-testid="stSelectbox"]', has_text=label).first
    option_el = page.get_by_role("option", name=re.compile(rf"^{re.escape(option)}")).first
    for _attempt in range(5):
        settled(page)
        box.locator('button[aria-haspopup="listbox"]').click()
        try:
            option_el.wait_for(timeout=3_000)
            break
        except PlaywrightTimeout:
            page.keyboard.press("Escape")
    option_el.click()
    page.wait_for_function("([l, o]) => [...document.querySelectorAll('[data-testid=stSelectbox]')]"
                           ".some(b => b.textContent.includes(l) && b.querySelector('input').value.startsWith(o))",
                           arg=[label, option])
    settled(page)


def tile_ids(page) -> list[str]:  # noqa: ANN001
    return page.locator(TILES).evaluate_all("els => els.map(e => e.dataset.id)")


def test_click_two_tiles_move_reload_then_undo(page, app_url: str, app_home: Path) -> None:  # noqa: ANN001
    page.goto(app_url)
    page.get_by_role("heading", name="Data").first.wait_for()
    settled(page)
    pick(page, "Demo", "digits")
    settled(page)
    page.get_by_role("button", name="Use this demo").click()
    page.get_by_text("A sample of the images").first.wait_for(timeout=120_000)
    goto(page, "Features")
    settled(page)
    pick(page, "Backbone", "pixels")
    page.get_by_text("raw pixels in [0,1]").first.wait_for()
    settled(page)
    page.get_by_role("button", name="Extract features").click()
    page.get_by_text("Features ready").first.wait_for(timeout=120_000)
    goto(page, "Cluster")
    settled(page)
    page.get_by_role("button", name="Run", exact=True).click()
    page.get_by_text(re.compile(r"Run #\d+")).first.wait_for(timeout=120_000)

    goto(page, "Review")
    caption = page.get_by_text(re.compile(r"^Run #\d+ \(kmeans\)")).first
    caption.wait_for(timeout=60_000)
    run = int(re.search(r"Run #(\d+)", caption.inner_text()).group(1))
    page.locator(TILES).first.wait_for()
    assert len(tile_ids(page)) == 60
    shot(page, "review-1-queue")

    # click two tiles: each shows its outline at once, and the page counts them
    first, second = tile_ids(page)[:2]
    for sid in (first, second):
        page.locator(f'{TILES}[data-id="{sid}"]').click()
        page.wait_for_selector(f'.cl-pick[data-id="{sid}"][aria-pressed="true"]', state="attached")
    page.get_by_text("2 image(s) selected").first.wait_for()
    settled(page)
    assert page.locator('.cl-pick[aria-pressed="true"]').count() == 2
    page.locator(".cl-picker").first.screenshot(path=str(ARTIFACTS / "review-2-two-selected.png"))

    ids, before, _ = labels_now(app_home, run)
    rows = [ids.index(first), ids.index(second)]
    target = next(c for c in range(10) if c not in (before[rows[0]], before[rows[1]]))
    choose(page, "Move the selection to", f"cluster_{target} (")
    page.get_by_role("button", name="Move 2 selected").click()
    page.get_by_text(f"Moved 2 image(s) to cluster_{target}. Saved.").first.wait_for()
    _, after, corrected = labels_now(app_home, run)                 # in the database when confirmed
    assert [after[r] for r in rows] == [target, target] and sum(corrected) == 2
    assert page.url.endswith(f"?run={run}")
    shot(page, "review-3-moved")

    # reload: a new session reopens the run from the address; the move is still there
    page.reload()
    page.get_by_text(re.compile(rf"^Run #{run} \(kmeans\)")).first.wait_for(timeout=60_000)
    page.get_by_text("2 image(s) corrected").first.wait_for()
    page.get_by_text("A cluster's members").first.click()
    choose(page, "Cluster", f"cluster_{target} (")
    page.get_by_text(re.compile(rf"in cluster_{target}, least confident first")).first.wait_for()
    for sid in (first, second):
        page.locator(f'{TILES}[data-id="{sid}"]').wait_for()
        assert page.locator(f'{TILES}[data-id="{sid}"] .mark').inner_text() == "✎"
    assert [labels_now(app_home, run)[1][r] for r in rows] == [target, target]
    shot(page, "review-4-after-reload")

    # undo: the change is gone, in the database and on the page
    page.get_by_role("tab", name="Undo and history").click()
    page.get_by_role("button", name=re.compile(r"Undo: moved 2 image\(s\)")).click()
    page.get_by_text("Undone. Saved.").first.wait_for()
    _, undone, corrected = labels_now(app_home, run)
    assert undone == before and not any(corrected)
    page.get_by_text("0 image(s) corrected").first.wait_for()
    for sid in (first, second):
        page.locator(f'{TILES}[data-id="{sid}"]').wait_for(state="detached")
    shot(page, "review-5-undone")


def test_two_tabs_on_one_run_the_stale_edit_is_refused(browser, app_url: str, app_home: Path) -> None:  # noqa: ANN001
    from core.config import ClusterConfig, DataConfig, FeatureConfig, MapConfig, RunConfig
    from core.pipeline import run_pipeline

    run = run_pipeline(RunConfig(data=DataConfig(source="digits"), features=FeatureConfig(backbone="pixels"),
                                 cluster=ClusterConfig(algo="kmeans", k=10, seed=1), map=MapConfig(method="none"),
                                 workspace=str(app_home))).run_id
    tabs = []
    for _ in range(2):                       # two tabs opened at the same address
        ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
        pg = ctx.new_page()
        pg.set_default_timeout(60_000)
        pg.goto(f"{app_url}/review?run={run}")
        pg.get_by_text(re.compile(rf"^Run #{run} \(kmeans\)")).first.wait_for(timeout=120_000)
        pg.locator(TILES).first.wait_for()
        settled(pg)
        tabs.append((ctx, pg))
    (_, a), (_, b) = tabs
    try:
        ids, before, _ = labels_now(app_home, run)
        first, second = tile_ids(b)[:2]
        target = next(c for c in range(10) if c not in (before[ids.index(first)], before[ids.index(second)]))

        # tab B gets ready to move two images, but has not clicked Move yet
        for sid in (first, second):
            b.locator(f'{TILES}[data-id="{sid}"]').click()
            b.wait_for_selector(f'.cl-pick[data-id="{sid}"][aria-pressed="true"]', state="attached")
        b.get_by_text("2 image(s) selected").first.wait_for()
        settled(b)
        choose(b, "Move the selection to", f"cluster_{target} (")

        # meanwhile tab A moves the first of them to the outliers
        a.locator(f'{TILES}[data-id="{first}"]').click()
        a.get_by_text("1 image(s) selected").first.wait_for()
        settled(a)
        a.get_by_role("button", name="Mark as outliers").click()
        a.get_by_text("Moved 1 image(s) to the outliers. Saved.").first.wait_for()

        b.get_by_role("button", name="Move 2 selected").click()     # drawn before A's edit: refused
        b.get_by_text("Someone else changed this run").first.wait_for()
        b.get_by_text("1 image(s) corrected").first.wait_for()       # and B now shows A's edit
        shot(b, "review-6-stale-tab")
        _, now, corrected = labels_now(app_home, run)
        assert now[ids.index(first)] == -1 and now[ids.index(second)] == before[ids.index(second)]
        assert sum(corrected) == 1
        with Store(app_home) as store:
            assert [e["op"] for e in store.edits(run)] == ["outlier"]
    finally:
        for ctx, _ in tabs:
            ctx.close()


def test_a_fresh_server_opened_at_a_run_address_shows_the_app_frame(browser, tmp_path: Path) -> None:  # noqa: ANN001
    """The address the Review page keeps (…/review?run=N), opened as the first request to a newly
    started server: Streamlit would run pages/review.py on its own (its legacy pages/ mode: no wide
    layout, the files listed as navigation, "app" among them). It must show the app's own frame."""
    from core.config import ClusterConfig, DataConfig, FeatureConfig, MapConfig, RunConfig
    from core.pipeline import run_pipeline
    from tests.e2e.conftest import served_app

    home = tmp_path / "home"
    home.mkdir()
    run = run_pipeline(RunConfig(data=DataConfig("digits"), features=FeatureConfig(backbone="pixels"),
                                 cluster=ClusterConfig(algo="kmeans", k=10), map=MapConfig(method="pca"),
                                 workspace=str(home))).run_id
    with served_app(home) as url:
        ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
        pg = ctx.new_page()
        pg.set_default_timeout(60_000)
        try:
            pg.goto(f"{url}/review?run={run}")
            pg.get_by_text(f"Run #{run} (kmeans)").first.wait_for(timeout=120_000)
            nav = pg.locator('[data-testid="stSidebarNav"] a').all_inner_texts()
            assert [t.split()[-1] for t in nav] == ["Data", "Features", "Cluster", "Explore", "Review"]
            # layout="wide" from app.py's page config: the main block spans more than the centred 736 px
            width = pg.locator('[data-testid="stMainBlockContainer"]').bounding_box()["width"]
            assert width > 900, width
            assert pg.url.endswith(f"/review?run={run}")
        finally:
            ARTIFACTS.mkdir(exist_ok=True)
            pg.screenshot(path=str(ARTIFACTS / "fresh-server-run-address.png"), full_page=True)
            ctx.close()
