"""After a split, in a real browser (issue 26, item 10): the pick lists show the new sizes, and
the header counts nobody's look ("0 image(s) corrected", "Checked 0")."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from core.review import ReviewSession
from core.store import Store
from tests.e2e.test_explore_browser import make_run
from tests.e2e.test_review_browser import choose, settled

pytestmark = pytest.mark.e2e


def options_of(page, label: str) -> list[str]:  # noqa: ANN001
    """The option texts a person sees when opening the selectbox labelled ``label``."""
    box = page.locator('[data-testid="stSelectbox"]', has_text=label).first
    for attempt in range(3):   # a rerun that lands just after the click redraws the box closed
        settled(page)
        box.locator('button[aria-haspopup="listbox"]').click()
        try:
            page.get_by_role("option").first.wait_for(timeout=15_000)
            break
        except PlaywrightTimeout:
            if attempt == 2:
                raise
    texts = page.get_by_role("option").all_inner_texts()
    page.keyboard.press("Escape")
    settled(page)
    return texts


def test_split_then_the_pick_lists_show_the_new_sizes(page, app_url: str, app_home: Path) -> None:  # noqa: ANN001
    run = make_run(app_home, seed=5)
    with Store(app_home) as store:
        labels = ReviewSession(store, run).current_labels()
    big = max(range(10), key=lambda c: int((labels == c).sum()))
    page.goto(f"{app_url}/review?run={run}")
    page.locator('[data-testid="stSidebar"]').get_by_text(f"Run: #{run}", exact=True).wait_for(timeout=120_000)
    page.get_by_text(re.compile(rf"^Run #{run} \(kmeans\)")).first.wait_for(timeout=60_000)
    settled(page)
    before = options_of(page, "Move the selection to")
    assert f"cluster_{big} ({int((labels == big).sum()):,} images)" in before

    page.get_by_role("tab", name="Clusters: rename, merge, split").click()
    choose(page, "Split", f"cluster_{big} (")
    page.get_by_role("button", name="Split", exact=True).click()
    page.get_by_text(re.compile(rf"Split cluster_{big} into 2")).first.wait_for(timeout=60_000)
    settled(page)
    with Store(app_home) as store:
        s = ReviewSession(store, run)
        now = s.current_labels()
        sizes = {c: int((now == c).sum()) for c in s.clusters()}
    assert len(sizes) == 11
    want = [f"cluster_{c} ({n:,} images)" for c, n in sizes.items()]
    # the closed box shows its chosen cluster with the new size too
    shown = page.locator('[data-testid="stSelectbox"]', has_text="Split").first.locator("input").input_value()
    assert shown == f"cluster_{big} ({sizes[big]:,} images)", shown
    for label in ("Move the selection to", "Cluster to rename", "Keep"):
        got = options_of(page, label)
        assert set(want) <= set(got), (label, want, got)
    page.get_by_text(re.compile(rf"^Run #{run} \(kmeans\).*11 clusters, 0 image\(s\) corrected")).first.wait_for()
    page.get_by_text(re.compile(r"Checked 0 of 1,797 images")).first.wait_for()
