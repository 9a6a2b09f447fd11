"""A hostile folder in the app (issue 25): every bad file is listed with its reason on the Data page,
nothing outside the folder is shown, and the good images go on to features, a run and the Review page."""
from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from tests.app.helpers import component_data, metrics, run_until, shown, texts
from tests.data.conftest import make_hostile_folder


def test_a_hostile_folder_runs_to_the_end_in_the_app(app: AppTest, allowed: Path) -> None:
    h = make_hostile_folder(allowed)
    app.text_input(key="w_folder").input(str(h.root))
    app.button(key="w_open_folder").click().run()
    assert not app.exception and not app.error, [e.value for e in app.error]
    assert metrics(app)["Images"] == str(len(h.kept))
    assert metrics(app)["Skipped files"] == str(len(h.skipped))
    listed = app.dataframe[0].value
    assert dict(zip(listed["file"], listed["reason"], strict=True)) == h.skipped
    sample = next(x.value for x in app.html if 'id="sample-grid"' in x.value)
    assert sample.count("data-sample-id=") == len(h.kept) and "secret" not in sample

    app.switch_page("pages/features.py").run()
    app.selectbox(key="w_backbone").select("pixels").run()
    app.button(key="w_extract").click().run()
    run_until(app, lambda a: any("Features ready" in s.value for s in a.success))
    app.switch_page("pages/cluster.py").run()
    app.slider(key="w_k").set_value(2).run()
    app.button(key="w_run").click().run()
    run_until(app, lambda a: "Run #" in texts(a))
    app.switch_page("pages/review.py").run()
    run_until(app, lambda a: "(kmeans)" in texts(a))
    tiles = component_data(app, "rv_picker")["tiles"]
    assert sorted(t["id"] for t in tiles) == sorted(h.kept)
    assert f"folder: {h.root}" in shown(texts(app))
