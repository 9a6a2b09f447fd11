"""The Explore page through AppTest (issue 26): it shows the run's *current* labels (the run plus
its edit log), with the clusters' one name, on the map, the prototypes and the gallery."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from core.review import ReviewSession
from core.store import Store
from tests.app.helpers import run_until, texts

APP = Path(__file__).resolve().parents[2] / "app.py"


def workspace(allowed: Path) -> Path:
    return allowed.parent / "workspace"


def make_run(allowed: Path, **cluster: object) -> int:
    from core.config import ClusterConfig, DataConfig, FeatureConfig, MapConfig, RunConfig
    from core.pipeline import run_pipeline

    c = {"algo": "kmeans", "k": 10, "seed": 0, **cluster}
    return run_pipeline(RunConfig(data=DataConfig("digits"), features=FeatureConfig(backbone="pixels"),
                                  cluster=ClusterConfig(**c), map=MapConfig(method="pca"),
                                  workspace=str(workspace(allowed)))).run_id


def open_run(run: int) -> AppTest:
    """A new session opens ``run`` from the Review page (its features come from the cache)."""
    at = AppTest.from_file(str(APP), default_timeout=120)
    at.switch_page("pages/review.py").run()
    at.selectbox(key="w_rv_open").select(run).run()
    at.button(key="w_rv_open_run").click().run()
    return run_until(at, lambda a: f"Run #{run} (" in texts(a) and "Features: pixels" in texts(a))


def explore(at: AppTest) -> AppTest:
    at.switch_page("pages/explore.py").run()
    return run_until(at, lambda a: "Cluster gallery" in texts(a))


def map_sizes(at: AppTest) -> dict[str, int]:
    """Points per trace of the Explore map, by trace name (the legend)."""
    (chart,) = [c for c in at.get("plotly_chart") if "customdata" in c.proto.spec]
    return {t["name"]: _n(t["customdata"]) for t in json.loads(chart.proto.spec)["data"]}


def _n(customdata: object) -> int:
    return len(customdata) if isinstance(customdata, list) else int(customdata["shape"].split(",")[0])


def proto_captions(at: AppTest) -> dict[str, int]:
    """The 'Clusters at a glance' captions: name → size."""
    out = {}
    for c in at.caption:
        m = re.fullmatch(r"(\S+) · ([\d,]+) images", c.value)
        if m:
            out[m.group(1).replace("\\_", "_")] = int(m.group(2).replace(",", ""))
    return out


@pytest.fixture
def run(allowed: Path) -> int:
    return make_run(allowed)


def test_explore_shows_the_moves_made_on_review(allowed: Path, run: int) -> None:
    at = open_run(run)
    with Store(workspace(allowed)) as store:
        s = ReviewSession(store, run)
        labels, ids = s.current_labels(), s.ids
    explore(at)
    before = proto_captions(at)
    assert sum(before.values()) == 1797 and set(before) == {f"cluster_{c}" for c in range(10)}
    assert map_sizes(at) == before                               # map legend and counts agree

    src = int(np.argmax(np.bincount(labels)))                    # move 5 of the biggest cluster to the smallest
    dst = int(np.argmin(np.bincount(labels)))
    moved = [ids[i] for i in np.flatnonzero(labels == src)[:5]]
    at.switch_page("pages/review.py").run()
    at.session_state["clusterlens"].review.selected = moved      # as if clicked (the picker's own test does that)
    at.selectbox(key="w_rv_target").select(dst).run()
    at.button(key="w_rv_move").click().run()
    assert not at.exception and "5 image(s) corrected" in texts(at)

    explore(at)
    after = proto_captions(at)
    assert after[f"cluster_{src}"] == before[f"cluster_{src}"] - 5
    assert after[f"cluster_{dst}"] == before[f"cluster_{dst}"] + 5
    assert map_sizes(at) == after                                # the map is coloured by the current labels
    assert "5 image(s) corrected on the Review page" in texts(at)
    at.selectbox(key="w_gallery_cluster").select(dst).run()
    cap = next(c.value for c in at.caption if c.value.replace("\\_", "_").startswith(f"cluster_{dst}:"))
    assert f"{before[f'cluster_{dst}'] + 5:,} images" in cap
    at.session_state["clusterlens"].selected_ids = moved         # as if lassoed on the map
    at.run()
    grid = next(h.value for h in at.html if 'id="selection-grid"' in h.value)
    assert sorted(re.findall(r'data-sample-id="([^"]+)"', grid)) == sorted(moved)
    captions = re.findall(r"<figcaption>([^<]+)</figcaption>", grid)
    assert [c.split(" · ")[0] for c in captions] == [f"cluster_{dst}"] * 5    # the tiles look corrected
    assert grid.count('class="mark"') == 5                       # with the ✎ badge
