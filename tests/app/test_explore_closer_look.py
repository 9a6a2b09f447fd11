"""Explore (issue 26, items 4 and 7) through AppTest on the digits demo: while a new map is drawn
the old one stays in view, said as such; a click on a gallery tile opens the enlarged view; the
tile size control sizes the gallery and is kept in the app state."""
from __future__ import annotations

import re

import pytest
from streamlit.testing.v1 import AppTest

from tests.app.helpers import make_run, run_until, send_component_event, texts
from ui.tile_picker import TILE_SIZES


@pytest.fixture
def exploring(app: AppTest) -> AppTest:
    from core.config import MapConfig

    make_run(app)
    app.session_state["clusterlens"].map = MapConfig(method="pca", seed=0)   # opens on PCA: instant, no UMAP job
    app.switch_page("pages/explore.py").run()
    run_until(app, lambda a: "Cluster gallery" in texts(a) and len(a.get("plotly_chart")) == 1)
    return app


def test_the_old_map_stays_while_the_new_one_is_drawn(exploring: AppTest, monkeypatch: pytest.MonkeyPatch) -> None:
    at = exploring
    monkeypatch.setenv("CLUSTERLENS_JOB_WAIT_S", "0")
    at.radio(key="w_map").set_value("tsne").run()
    assert not at.exception, [e.value for e in at.exception]
    job = at.session_state["clusterlens"].job
    assert job.kind == "map" and job.running
    assert "Showing the PCA map until the t-SNE map is ready" in texts(at)
    assert len(at.get("plotly_chart")) == 1 and "Cluster gallery" in texts(at)   # the page is all there
    def panel(a: AppTest) -> str:
        return "\n".join(p.proto.text for p in a.get("progress"))

    run_until(at, lambda a: "TSNE of 1,797 points" in panel(a), timeout=60)   # past "loading features"
    assert "Showing the PCA map until the t-SNE map is ready" in texts(at)
    assert "estimated from the size" in panel(at) and "no estimate" not in panel(at)
    at.button(key="job_stop").click().run()
    assert job.wait(60)


def test_a_gallery_click_opens_the_enlarged_view_and_tile_size_applies(exploring: AppTest) -> None:
    at = exploring
    grid = next(h.proto.body for h in at.get("html") if 'id="cluster-grid"' in h.proto.body)
    assert f"width:{TILE_SIZES['medium']}px" in grid
    sid = re.search(r'data-sample-id="([^"]+)"', grid).group(1)
    send_component_event(at, "grid_opener", "open", {"id": sid})
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state["clusterlens"].enlarged == sid
    big = [h.proto.body for h in at.get("html") if 'class="cl-big"' in h.proto.body]
    assert len(big) == 1 and f'data-sample-id="{sid}"' in big[0]
    neigh = next(h.proto.body for h in at.get("html") if 'id="enlarged-neighbours"' in h.proto.body)
    assert neigh.count("data-sample-id=") == 8
    assert "**Confidence:**" in texts(at) and "**True label:**" in texts(at)
    at.button(key="w_enlarged_close").click().run()

    at.segmented_control(key="w_explore_tile_size").set_value("small").run()
    grid = next(h.proto.body for h in at.get("html") if 'id="cluster-grid"' in h.proto.body)
    assert f"width:{TILE_SIZES['small']}px" in grid
    assert at.session_state["clusterlens"].tile_size == "small"


def test_a_newer_map_choice_replaces_the_stale_map_job(exploring: AppTest, monkeypatch: pytest.MonkeyPatch) -> None:
    at = exploring
    monkeypatch.setenv("CLUSTERLENS_JOB_WAIT_S", "0")
    at.radio(key="w_map").set_value("tsne").run()
    stale = at.session_state["clusterlens"].job
    assert stale.kind == "map" and stale.params["map"].method == "tsne"
    at.radio(key="w_map").set_value("umap").run()            # changed one's mind before t-SNE was drawn
    job = at.session_state["clusterlens"].job
    assert job is not stale and job.params["map"].method == "umap"
    assert stale._stop.is_set()                              # the stale job was told to stop
    assert "Showing the PCA map until the UMAP map is ready" in texts(at)
    at.button(key="job_stop").click().run()
    assert job.wait(120) and stale.wait(120)
    assert job.status == "cancelled"
