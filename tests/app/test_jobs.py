"""Long work in the app: leaving the page mid-run, then stopping it, never shows a half result."""
from __future__ import annotations

from streamlit.testing.v1 import AppTest

from core.store import Store
from tests.app.helpers import choose_digits, extract_pixels, run_until, texts


def test_leaving_the_page_during_a_run_then_stopping_it(app: AppTest, allowed) -> None:  # noqa: ANN001
    choose_digits(app)
    extract_pixels(app)
    app.switch_page("pages/cluster.py").run()
    app.selectbox(key="w_algo").select("dac").run()
    app.number_input(key="p_dac_epochs").set_value(500).run()   # long enough to leave mid-run
    app.button(key="w_run").click().run()
    run_until(app, lambda a: any(b.key == "job_stop" for b in a.button))

    app.switch_page("pages/explore.py").run()                   # leave while it trains
    assert not app.exception
    assert "Cluster the images first" in texts(app)             # nothing shown as finished

    app.button(key="job_stop").click().run()
    run_until(app, lambda a: not any(b.key == "job_stop" for b in a.button))
    assert "Cluster the images first" in texts(app)
    with Store(allowed.parent / "workspace") as store:
        (run,) = store.runs()
        assert run["algo"] == "dac" and run["status"] == "cancelled"
        assert store.assignments(run["id"])[0].size == 0        # no half-written labels


def test_k_slider_is_bounded_by_the_number_of_images(app: AppTest, allowed) -> None:  # noqa: ANN001
    from PIL import Image

    folder = allowed / "five"
    folder.mkdir()
    for i in range(5):
        Image.new("RGB", (8, 8), (40 * i, 255 - 40 * i, 7 * i)).save(folder / f"{i}.png")
    app.text_input(key="w_folder").input(str(folder))
    app.button(key="w_open_folder").click().run()
    extract_pixels(app)
    app.switch_page("pages/cluster.py").run()
    k = app.slider(key="w_k")
    assert k.max == 5 and k.value == 5            # the default 10 is clamped to the 5 images
