"""Review page, issue 26 items 4 and 5 through AppTest on the digits demo (pixels, k-means k=10):
the tile picker's own events (enlarge, a key) sent as the browser sends them; what counts is what
the workspace database and the enlarged view say afterwards."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from streamlit.testing.v1 import AppTest

from core.neighbours import nearest
from core.review import OUTLIER
from tests.app.helpers import component_data, send_component_event, texts
from tests.app.test_review_page import PICKER, db, run_id, shown_ids, workspace
from ui.tile_picker import TILE_SIZES


def db_confidence(allowed: Path, run: int) -> np.ndarray:
    from core.store import Store

    with Store(workspace(allowed)) as store:
        return store.assignments(run)[1]


def press(at: AppTest, action: str, arg: int | None = None, ids: list[str] | None = None) -> AppTest:
    """A shortcut as the browser sends it: the action with the browser's selection."""
    sel = component_data(at, PICKER)["selected"] if ids is None else ids
    send_component_event(at, PICKER, "key", {"action": action, "arg": arg, "ids": sel, "seq": time.time() * 1000})
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_keys_move_outlier_undo_redo_and_turn_the_page(reviewing: AppTest, allowed: Path) -> None:
    at = reviewing
    run = run_id(at)
    labels0, _, ids, _ = db(allowed, run)
    first, second = shown_ids(at)[:2]
    rows = [ids.index(first), ids.index(second)]
    target = next(c for c in range(10) if all(labels0[r] != c for r in rows))

    press(at, "move", target, ids=[first, second])          # select two, press the cluster's digit
    labels, _, _, corrected = db(allowed, run)
    assert [labels[r] for r in rows] == [target, target] and int(corrected.sum()) == 2
    assert f"Moved 2 image(s) to cluster_{target}. Saved." in texts(at)
    assert component_data(at, PICKER)["selected"] == []    # the move cleared the selection

    press(at, "undo")
    assert db(allowed, run)[0].tolist() == labels0.tolist()
    press(at, "redo")
    assert [db(allowed, run)[0][r] for r in rows] == [target, target]

    third = shown_ids(at)[0]
    press(at, "outlier", ids=[third])
    assert db(allowed, run)[0][ids.index(third)] == OUTLIER
    press(at, "undo")
    assert db(allowed, run)[0][ids.index(third)] == labels0[ids.index(third)]

    page1 = shown_ids(at)
    press(at, "page", 1)
    page2 = shown_ids(at)
    assert len(page2) == 60 and not set(page1) & set(page2)
    press(at, "page", -1)
    assert shown_ids(at) == page1

    press(at, "move", 57, ids=[page1[0]])                   # no such cluster: said, nothing written
    assert "There is no cluster 57" in "\n".join(e.value for e in at.error)
    assert db(allowed, run)[0][ids.index(page1[0])] == labels0[ids.index(page1[0])]
    assert "Keys:" in texts(at) and "Shift+Z" in texts(at)   # the shortcuts are listed on the page
    data = component_data(at, PICKER)
    assert data["keys"] is True and data["max_cluster"] == 9


def test_enlarged_view_shows_cluster_confidence_truth_history_and_neighbours(reviewing: AppTest,
                                                                           allowed: Path) -> None:
    at = reviewing
    run = run_id(at)
    labels0, _, ids, _ = db(allowed, run)
    sid = shown_ids(at)[0]
    row = ids.index(sid)
    target = next(c for c in range(10) if c != labels0[row])
    press(at, "move", target, ids=[sid])
    send_component_event(at, PICKER, "open", {"id": sid})
    assert not at.exception, [e.value for e in at.exception]

    from sklearn.datasets import load_digits

    truth = int(load_digits().target[row])
    page = texts(at)
    conf = float(db_confidence(allowed, run)[row])
    assert f"**Cluster:** cluster_{target} (corrected)" in page
    assert f"**Confidence:** {conf:.2f}" in page and f"**True label:** {truth}" in page
    history = [d.value for d in at.dataframe if "from" in d.value.columns]
    assert len(history) == 1 and history[0]["to"].tolist() == [f"cluster_{target}"]
    assert history[0]["from"].tolist() == [f"cluster_{labels0[row]}"]

    grid = next(h.proto.body for h in at.get("html") if 'id="enlarged-neighbours"' in h.proto.body)
    shown = [s.split('"')[0] for s in grid.split('data-sample-id="')[1:]]
    X = load_digits().data.astype(np.float32) / 16.0       # the pixels backbone's features of the digits
    from core.projection import reduce

    expect, _ = nearest(reduce(X, "pca:50", seed=0), row, 8)
    assert len(shown) == 8 and sid not in shown
    # the run clustered in its cached PCA-50 space; the view's neighbours are that space's
    assert len(set(shown) & {ids[r] for r in expect.tolist()}) >= 6
    assert "neighbours are in" in texts(at)

    at.button(key="w_enlarged_close").click().run()
    assert at.session_state["clusterlens"].enlarged is None
    assert not any('id="enlarged-neighbours"' in h.proto.body for h in at.get("html"))


def test_tile_size_is_kept_in_the_app_state(reviewing: AppTest) -> None:
    at = reviewing
    assert component_data(at, PICKER)["size"] == TILE_SIZES["medium"]
    at.segmented_control(key="w_tile_size").set_value("large").run()
    assert component_data(at, PICKER)["size"] == TILE_SIZES["large"]
    at.switch_page("pages/cluster.py").run()
    at.switch_page("pages/review.py").run()
    assert at.session_state["clusterlens"].tile_size == "large"
    assert component_data(at, PICKER)["size"] == TILE_SIZES["large"]
    # a caption is never cut: the tile is at least as wide as the longest review caption needs
    data = component_data(at, PICKER)
    assert data["min_w"] >= 100 and json.dumps(data["tiles"][0]["caption"]).startswith('"cluster_')
