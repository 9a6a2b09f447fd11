"""Features → Cluster → Explore through AppTest on the digits demo with the fast `pixels` backbone."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
from streamlit.testing.v1 import AppTest

from core.store import Store
from tests.app.helpers import choose_digits, extract_pixels, run_until, shown, texts


def sizes_caption(at: AppTest) -> list[int]:
    """Cluster sizes of the *current* run (its caption comes first on the page)."""
    cap = next(c.value for c in at.caption if "clusters, sizes" in c.value)
    return [int(n) for n in re.search(r"sizes ([\d, ]+) \(", cap).group(1).split(", ")]


def test_extract_then_cached_then_cluster_then_change_k(app: AppTest) -> None:
    choose_digits(app)
    extract_pixels(app)
    ready = next(s.value for s in app.success if "Features ready" in s.value)
    assert "1,797 images × 64 dimensions" in ready          # 8×8 pixels, native size

    app.button(key="w_extract").click().run()               # again: straight from the disk cache
    run_until(app, lambda a: "reused from the cache" in texts(a))

    app.switch_page("pages/cluster.py").run()
    assert app.slider(key="w_k").value == 10
    app.button(key="w_run").click().run()
    run_until(app, lambda a: "Run #" in texts(a))
    labels = [m.label for m in app.metric]
    assert {"ACC", "NMI", "ARI"} <= set(labels)
    acc = float(next(m.value for m in app.metric if m.label == "ACC"))
    assert 0.5 < acc <= 1.0
    sizes = sizes_caption(app)
    assert len(sizes) == 10 and sum(sizes) == 1797
    first = re.search(r"\*\*Run #(\d+)\*\*", texts(app)).group(1)

    app.slider(key="w_k").set_value(7).run()                # moving the slider re-clusters at once
    run_until(app, lambda a: re.search(r"\*\*Run #(\d+)\*\* — kmeans, k=7", texts(a)) is not None)
    second = re.search(r"\*\*Run #(\d+)\*\*", texts(app)).group(1)
    assert second != first
    sizes = sizes_caption(app)
    assert len(sizes) == 7 and sum(sizes) == 1797
    assert "Kept runs (2)" in texts(app)
    assert len(app.get("plotly_chart")) >= 2 + 2 * 2        # current sizes+confusion, two compared runs

    app.switch_page("pages/explore.py").run()
    run_until(app, lambda a: "Cluster gallery" in texts(a))
    assert len(app.get("plotly_chart")) == 1
    grid = next(h.value for h in app.html if 'id="cluster-grid"' in h.value)
    cap = next(shown(c.value) for c in app.caption if shown(c.value).startswith("cluster_0:"))
    n0 = int(re.search(r"cluster_0: ([\d,]+) images", cap).group(1).replace(",", ""))
    assert grid.count("data-sample-id=") == min(60, n0)
    protos = [h.value for h in app.html if 'id="proto-' in h.value]
    assert len(protos) == 7 and all(p.count("data-sample-id=") == 8 for p in protos)


def test_pages_before_their_inputs_say_what_to_do_first(app: AppTest) -> None:
    for page, needs in [("pages/features.py", "Choose the images first"),
                        ("pages/cluster.py", "Extract features first"),
                        ("pages/explore.py", "Cluster the images first")]:
        app.switch_page(page).run()
        assert not app.exception
        assert needs in texts(app)


def test_ruc_from_the_cluster_page_with_its_pick_lists(app: AppTest, allowed: Path) -> None:
    choose_digits(app)
    extract_pixels(app)
    app.switch_page("pages/cluster.py").run()
    app.selectbox(key="w_algo").select("ruc").run()
    # text parameters with a fixed set of values are pick lists, not free text boxes
    assert app.selectbox(key="p_ruc_input").options == ["auto", "features", "images", "pixels"]
    assert app.selectbox(key="p_ruc_strategy").options == ["confidence", "metric", "hybrid"]
    assert app.selectbox(key="p_ruc_initial").options == ["kmeans", "dac", "temi"]
    # each control's tooltip is the estimator's docstring entry
    assert app.selectbox(key="p_ruc_strategy").help.startswith("clean-set selection")
    assert app.number_input(key="p_ruc_tau").help.startswith("confidence threshold of the initial split")
    guard = app.checkbox(key="p_ruc_guard")                        # a true/false option is a checkbox, on
    assert guard.value is True and guard.help.startswith("when the networks train on the space the start")
    assert [t.key for t in app.text_input if t.key and t.key.startswith("p_ruc_")] == ["p_ruc_initial_params"]
    app.selectbox(key="p_ruc_input").select("pixels").run()
    app.selectbox(key="p_ruc_strategy").select("confidence").run()
    app.number_input(key="p_ruc_epochs").set_value(3).run()       # quick on CPU
    app.number_input(key="p_ruc_warmup").set_value(1).run()
    app.button(key="w_run").click().run()
    run_until(app, lambda a: re.search(r"\*\*Run #\d+\*\* — ruc, k=10", texts(a)) is not None, timeout=300)

    run = int(re.search(r"\*\*Run #(\d+)\*\*", texts(app)).group(1))
    with Store(allowed.parent / "workspace") as store:
        rec = store.run(run)
        n_unclean = int(np.load(store.abs(rec["artifacts"]["unclean"])).sum())
    assert rec["config"]["cluster"]["params"] == {"input": "pixels", "strategy": "confidence",
                                                  "epochs": 3, "warmup": 1}
    assert [h["epoch"] for h in rec["history"] if "epoch" in h] == [1, 2, 3]   # (a kept start adds a record)
    assert 0 < n_unclean < 1797
    assert f"RUC's final split: {1797 - n_unclean:,} clean, {n_unclean:,} unclean" in texts(app)
    # the per-epoch history (clean set, its precision and ACC with the digits' labels) is drawn
    assert "Training history (3 epochs)" in [e.label for e in app.expander]
    shown = {t.get("name") for c in app.get("plotly_chart") for t in json.loads(c.proto.spec)["data"]}
    assert {"clean set (share of images)", "clean-set precision (ground truth)", "ACC (ground truth)"} <= shown
