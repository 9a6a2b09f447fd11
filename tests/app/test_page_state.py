"""Stale state and messages (issue 26, item 10), through AppTest on the digits demo: a job's message
stays on its own page, controls keep their values when a person comes back, and the Cluster page
shows no run under another algorithm's name."""
from __future__ import annotations

from streamlit.testing.v1 import AppTest

from tests.app.helpers import choose_digits, extract_pixels, make_run, run_until, texts

EXTRACTED = "Features extracted: 1,797 × 64 in"


def test_a_jobs_message_stays_on_the_page_that_started_it(app: AppTest) -> None:
    choose_digits(app)
    extract_pixels(app)
    assert EXTRACTED in texts(app)                                 # where the person pressed Extract
    for page in ("pages/cluster.py", "pages/data.py"):
        app.switch_page(page).run()
        assert not app.exception
        assert EXTRACTED not in texts(app), page                   # not on the later pages
    app.switch_page("pages/cluster.py").run()
    app.button(key="w_run").click().run()
    run_until(app, lambda a: "Run #" in texts(a))
    app.switch_page("pages/features.py").run()
    assert EXTRACTED not in texts(app)                             # a newer job's outcome replaced it


def test_map_colour_and_threshold_keep_their_values_when_coming_back(app: AppTest) -> None:
    make_run(app)
    app.slider(key="w_threshold").set_value(0.35).run()
    app.switch_page("pages/explore.py").run()
    run_until(app, lambda a: "Cluster gallery" in texts(a), timeout=300)
    app.radio(key="w_map").set_value("pca").run()
    run_until(app, lambda a: "Cluster gallery" in texts(a))
    app.radio(key="w_colour").set_value("confidence").run()
    app.radio(key="w_gallery_order").set_value("most doubtful first").run()
    for page in ("pages/review.py", "pages/data.py"):
        app.switch_page(page).run()
        assert not app.exception
    app.switch_page("pages/explore.py").run()
    run_until(app, lambda a: "Cluster gallery" in texts(a))
    assert app.radio(key="w_map").value == "pca"
    assert app.radio(key="w_colour").value == "confidence"
    assert app.radio(key="w_gallery_order").value == "most doubtful first"
    app.switch_page("pages/cluster.py").run()
    assert app.slider(key="w_threshold").value == 0.35
    assert "doubtful (confidence < 0.35)" in texts(app)


def test_another_algorithm_shows_no_run_until_it_runs(app: AppTest) -> None:
    make_run(app)
    assert "— kmeans, k=10" in texts(app)
    app.selectbox(key="w_algo").select("dac").run()
    assert "— kmeans, k=10" not in texts(app)                      # the k-means run is not shown as DAC's
    assert "Not run yet for dac" in texts(app)
    app.selectbox(key="w_algo").select("kmeans").run()             # back: the run of these settings again
    assert "— kmeans, k=10" in texts(app) and "Not run yet" not in texts(app)
