"""The Cluster page's suggested k: a chart of the criterion over k next to the slider, and a button
that puts the suggested k on the slider (and re-clusters); computed once, not on every rerun."""
from __future__ import annotations

import json
import re

import pytest
from streamlit.testing.v1 import AppTest

import core.cluster.suggest_k as engine_suggest
from tests.app.helpers import choose_digits, extract_pixels, run_until, texts

CHART = "w_suggest_k_chart"


def suggest_chart(at: AppTest) -> dict | None:
    found = [c for c in at.get("plotly_chart") if CHART in c.proto.id]
    return json.loads(found[0].proto.spec) if found else None


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every engine call the page makes for a suggestion (its reduce), counted."""
    made: list[str] = []
    real = engine_suggest.suggest_k_for

    def counting(*args, **kwargs):
        made.append(kwargs.get("reduce", "none"))
        return real(*args, **kwargs)

    monkeypatch.setattr(engine_suggest, "suggest_k_for", counting)
    return made


def test_chart_and_use_k_button_set_the_slider(app: AppTest, calls: list[str]) -> None:
    choose_digits(app)
    extract_pixels(app)
    app.switch_page("pages/cluster.py").run()
    assert suggest_chart(app) is None and calls == []                     # only on request
    app.toggle(key="w_suggest_k").set_value(True).run()
    spec = suggest_chart(app)
    assert spec is not None, texts(app)
    line, star = spec["data"]
    assert line["x"] == list(range(2, 21)) and len(line["y"]) == 19      # one silhouette per k in 2..20
    assert spec["layout"]["yaxis"]["title"]["text"] == "silhouette"
    (button,) = [b for b in app.button if b.key == "w_use_suggested_k"]
    n = int(re.fullmatch(r"Use k = (\d+)", button.label).group(1))
    assert star["x"] == [n] and star["y"] == [max(line["y"])]            # the marked k is the best one
    assert n != 10 and not button.disabled                               # digits pca:50: not the slider's 10

    button.click().run()
    assert app.slider(key="w_k").value == n
    assert app.session_state["clusterlens"].cluster.k == n
    run_until(app, lambda a: re.search(rf"\*\*Run #\d+\*\* — kmeans, k={n}\b", texts(a)) is not None)
    assert app.button(key="w_use_suggested_k").disabled                  # the slider is there now
    app.run()
    assert calls == ["pca:50"]                                           # reruns and the k change: cached


def test_umap_suggestion_waits_for_the_cached_reduction(app: AppTest, calls: list[str]) -> None:
    choose_digits(app)
    extract_pixels(app)
    app.switch_page("pages/cluster.py").run()
    assert suggest_chart(app) is None and calls == []                     # only on request
    app.toggle(key="w_suggest_k").set_value(True).run()
    app.selectbox(key="w_reduce").select("umap:10").run()                # re-clusters: UMAP computed there
    assert suggest_chart(app) is None
    assert "A suggested k shows here once this UMAP reduction is cached" in texts(app)
    run_until(app, lambda a: re.search(r"\*\*Run #\d+\*\* — kmeans, k=10", texts(a)) is not None, timeout=300)
    run_until(app, lambda a: suggest_chart(a) is not None)
    assert calls == ["pca:50", "umap:10"]                               # the UMAP itself came from the run's cache
    assert app.button(key="w_use_suggested_k").label.startswith("Use k = ")
