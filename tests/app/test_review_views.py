"""The Review page's views and counts after cluster-level edits (issue 26, item 10), AppTest on
digits (pixels, k-means k=10): "Most doubtful first" is by confidence, lowest first; after a split
every pick list shows the new sizes; the cluster table, the header and "checked" count only what
a person did."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
from streamlit.testing.v1 import AppTest

from core.review import ReviewSession
from core.store import Store
from tests.app.helpers import component_data, run_until, shown, texts
from tests.app.test_explore_page import make_run, open_run, workspace


def session(allowed: Path, run: int) -> ReviewSession:
    return ReviewSession(Store(workspace(allowed)), run)


def tile_ids(at: AppTest) -> list[str]:
    return [t["id"] for t in component_data(at, "rv_picker")["tiles"]]


def open_review(allowed: Path) -> tuple[AppTest, int]:
    run = make_run(allowed)
    at = open_run(run)
    at.switch_page("pages/review.py").run()
    return run_until(at, lambda a: bool(tile_ids(a))), run


def test_most_doubtful_first_is_lowest_confidence_first(allowed: Path) -> None:
    at, run = open_review(allowed)
    s = session(allowed, run)
    conf = dict(zip(s.ids, s.confidence.tolist(), strict=True))
    assert at.radio(key="w_rv_view").value == "queue"
    assert at.radio(key="w_rv_view").format_func("queue").startswith("Most doubtful first")
    page = [conf[i] for i in tile_ids(at)]
    assert len(page) == 60 and page == sorted(page)                       # ascending, the whole page
    assert page[0] == min(conf.values())
    at.radio(key="w_rv_view").set_value("odd").run()                      # the measured mix is still there
    assert tile_ids(at) != [] and "RUC's unclean set first" in texts(at)


def test_after_a_split_pick_lists_table_and_counts_are_current(allowed: Path) -> None:
    at, run = open_review(allowed)
    labels = session(allowed, run).current_labels()
    big = int(np.argmax(np.bincount(labels)))
    at.selectbox(key="w_rv_split_c").select(big).run()
    at.number_input(key="w_rv_split_k").set_value(2).run()
    at.button(key="w_rv_split").click().run()
    assert not at.exception, [e.value for e in at.exception]
    s = session(allowed, run)
    now = s.current_labels()
    new = int(s.log()[-1]["detail"]["new"][0])
    sizes = {c: int((now == c).sum()) for c in s.clusters()}
    assert sizes[big] < int((labels == big).sum()) and sizes[new] > 0
    for key in ("w_rv_target", "w_rv_rename_c", "w_rv_merge_a", "w_rv_split_c"):
        opts = [shown(o) for o in at.selectbox(key=key).options]
        for c, n in sizes.items():
            assert f"cluster_{c} ({n:,} images)" in opts, (key, c, n, opts)
    # nobody looked at the images the split moved: 0 corrected, 0 checked, in the header and the table
    assert "10 clusters" not in texts(at) and "11 clusters, 0 image(s) corrected" in texts(at)
    progress = "\n".join(p.proto.text for p in at.get("progress"))
    assert "Checked 0 of 1,797 images" in progress
    table = at.dataframe[0].value
    assert isinstance(table, pd.DataFrame) and int(table["corrected"].sum()) == 0
    assert dict(zip(table["cluster"], table["images"], strict=True)) == sizes

    # a person moves 5: the header, the table and "checked" all say 5
    row = {sid: i for i, sid in enumerate(s.ids)}
    moved = [i for i in tile_ids(at) if now[row[i]] != new][:5]
    at.session_state["clusterlens"].review.selected = moved
    at.selectbox(key="w_rv_target").select(new).run()
    at.button(key="w_rv_move").click().run()
    assert "11 clusters, 5 image(s) corrected" in texts(at)
    table = at.dataframe[0].value
    assert int(table["corrected"].sum()) == 5 and int(table.set_index("cluster").loc[new, "corrected"]) == 5
    progress = "\n".join(p.proto.text for p in at.get("progress"))
    assert re.search(r"Checked 5 of 1,797 images", progress)
