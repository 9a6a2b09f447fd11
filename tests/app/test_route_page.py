"""The route chosen from the data, in the app: "auto" is the Features page's default, the Cluster
page says which route and why, lists the others, and uses another in one click."""
from __future__ import annotations

from streamlit.testing.v1 import AppTest

from tests.app.helpers import run_until, shown, texts


def test_auto_route_is_the_default_is_shown_and_another_is_one_click(app: AppTest) -> None:
    app.selectbox(key="w_demo").select("digits")
    app.number_input(key="w_limit").set_value(300)
    app.button(key="w_use_demo").click().run()
    app.switch_page("pages/features.py").run()
    assert app.selectbox(key="w_backbone").value == "auto"
    app.button(key="w_extract").click().run()
    run_until(app, lambda a: any("Features ready" in s.value for s in a.success), timeout=300)
    assert "Route chosen from the data:" in texts(app)

    app.switch_page("pages/cluster.py").run()
    panel = next(e for e in app.expander if e.label.startswith("Route chosen from the data: "))
    chosen = panel.label.removeprefix("Route chosen from the data: ")
    labels = [shown(b.label) for b in app.button if b.key and b.key.startswith("w_route_")]
    assert labels[0] == f"{chosen} (in use)" and len(labels) == 5   # four single spaces and all of them joined
    assert app.selectbox(key="w_reduce").value == ("umap:10" if "umap" in chosen else "none")
    other = next(b for b in app.button if b.key == "w_route_3")
    name = shown(other.label).removeprefix("Use ")
    other.click().run()
    run_until(app, lambda a: "Run #" in texts(a), timeout=300)
    labels = [shown(b.label) for b in app.button if b.key and b.key.startswith("w_route_")]
    assert f"{name} (in use)" in labels and f"Use {chosen}" in labels
    want_reduce = "umap:10" if "umap" in name else "none"
    assert app.selectbox(key="w_reduce").value == want_reduce
