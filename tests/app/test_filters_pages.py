"""Filtering on Explore and Review (issue 26, item 6), AppTest: a confidence range, only the
corrected ones, one true class (digits has true labels: filtered by, never clustered on), and RUC's
unclean set on a RUC run. What the map draws and the galleries and the queue list are checked
against the workspace's own numbers."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
from streamlit.testing.v1 import AppTest

from core.data import open_dataset
from core.review import ReviewSession, unclean_mask
from core.store import Store
from tests.app.helpers import component_data, run_until, texts
from tests.app.test_explore_page import explore, make_run, open_run, workspace


def map_ids(at: AppTest) -> list[str]:
    (chart,) = [c for c in at.get("plotly_chart") if "customdata" in c.proto.spec]
    out: list[str] = []
    for t in json.loads(chart.proto.spec)["data"]:
        cd = t["customdata"]
        assert isinstance(cd, list), "ids arrive as a plain list"
        out += [str(x) for x in cd]
    return out


def grid_ids(at: AppTest, grid: str) -> list[str]:
    html = next((h.value for h in at.html if f'id="{grid}"' in h.value), "")
    return re.findall(r'data-sample-id="([^"]+)"', html)


def picker_ids(at: AppTest) -> list[str]:
    return [t["id"] for t in component_data(at, "rv_picker")["tiles"]]


def state(allowed: Path, run: int) -> tuple[list[str], np.ndarray, np.ndarray]:
    with Store(workspace(allowed)) as store:
        s = ReviewSession(store, run)
        return s.ids, s.confidence, s.person_mask()


def test_explore_and_review_filter_by_confidence_corrected_and_true_class(allowed: Path) -> None:
    run = make_run(allowed)
    ids, conf, _ = state(allowed, run)
    truth = open_dataset("digits", workspace=workspace(allowed)).labels
    at = open_run(run)
    explore(at)
    assert "Only RUC's unclean" not in [c.label for c in at.checkbox]      # not a RUC run: not offered

    at.slider(key="w_f_ex_conf").set_value((0.0, 0.3)).run()
    low = {i for i, c in zip(ids, conf, strict=True) if c <= 0.3 + 1e-9}
    assert 0 < len(low) < 1797 and set(map_ids(at)) == low                 # the map draws the kept ones
    assert f"keeps {len(low):,} of 1,797 images" in texts(at)
    assert set(grid_ids(at, "cluster-grid")) <= low
    at.selectbox(key="w_f_ex_class").select(3).run()                       # and true class 3
    both = {i for i, c, t in zip(ids, conf, truth, strict=True) if c <= 0.3 + 1e-9 and t == 3}
    assert set(map_ids(at)) == both and "true class 3" in texts(at)

    at.switch_page("pages/review.py").run()                                # one filter for both pages
    run_until(at, lambda a: "Review" in [t.value for t in a.title])
    assert at.slider(key="w_f_rv_conf").value == (0.0, 0.3) and at.selectbox(key="w_f_rv_class").value == 3
    assert set(picker_ids(at)) <= both and len(picker_ids(at)) == min(60, len(both))
    assert "(filter: confidence 0.00–0.30, true class 3)" in texts(at)

    at.button(key="w_f_rv_clear").click().run()                            # cleared: everything again
    assert len(picker_ids(at)) == 60 and at.slider(key="w_f_rv_conf").value == (0.0, 1.0)
    moved = picker_ids(at)[:4]
    at.session_state["clusterlens"].review.selected = moved
    at.selectbox(key="w_rv_target").select(0).run()
    at.button(key="w_rv_move").click().run()
    at.checkbox(key="w_f_rv_corrected").check().run()
    at.radio(key="w_rv_view").set_value("cluster").run()
    at.selectbox(key="w_rv_cluster").select(0).run()
    corrected = set(ids[i] for i in np.flatnonzero(state(allowed, run)[2]))
    assert set(picker_ids(at)) == corrected and len(corrected) >= 1        # the corrected ones in cluster_0
    explore(at)
    at.selectbox(key="w_gallery_cluster").select(0).run()
    assert set(grid_ids(at, "cluster-grid")) == corrected and set(map_ids(at)) == corrected


def test_only_rucs_unclean_set_on_a_ruc_run(allowed: Path) -> None:
    from core.config import ClusterConfig, DataConfig, FeatureConfig, MapConfig, RunConfig
    from core.pipeline import run_pipeline

    run = run_pipeline(RunConfig(
        data=DataConfig("digits", limit=300), features=FeatureConfig(backbone="pixels"),
        cluster=ClusterConfig(algo="ruc", k=10, seed=1, reduce="pca:30", params={"epochs": 2, "warmup": 1}),
        map=MapConfig(method="pca"), workspace=str(workspace(allowed)))).run_id
    with Store(workspace(allowed)) as store:
        ids = ReviewSession(store, run).ids
        m = unclean_mask(store, run)
    unclean = {ids[i] for i in np.flatnonzero(m)}
    assert 0 < len(unclean) < 300
    at = open_run(run)
    explore(at)
    at.checkbox(key="w_f_ex_unclean").check().run()
    assert set(map_ids(at)) == unclean
    at.switch_page("pages/review.py").run()
    run_until(at, lambda a: bool(picker_ids(a)))
    assert set(picker_ids(at)) <= unclean and len(picker_ids(at)) == min(60, len(unclean))
