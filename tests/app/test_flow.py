"""Features → Cluster → Explore through AppTest on the digits demo with the fast `pixels` backbone."""
from __future__ import annotations

import re

from streamlit.testing.v1 import AppTest

from tests.app.helpers import choose_digits, extract_pixels, run_until, texts


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
    cap = next(c.value for c in app.caption if c.value.startswith("Cluster 0:"))
    n0 = int(re.search(r"Cluster 0: ([\d,]+) images", cap).group(1).replace(",", ""))
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
