"""The TEMI head on the Cluster page: listed with its parameters, runs, and its history is kept."""
from __future__ import annotations

import re
from pathlib import Path

from streamlit.testing.v1 import AppTest

from core.store import Store
from tests.app.helpers import choose_digits, extract_pixels, run_until, texts


def test_temi_from_the_cluster_page(app: AppTest, allowed: Path) -> None:
    choose_digits(app)
    extract_pixels(app)
    app.switch_page("pages/cluster.py").run()
    assert "temi" in app.selectbox(key="w_algo").options
    app.selectbox(key="w_algo").select("temi").run()
    assert app.selectbox(key="p_temi_knn_space").options == ["each", "joint"]
    assert app.number_input(key="p_temi_knn").value == 20
    assert app.number_input(key="p_temi_heads").help.startswith("independent heads trained side by side")
    app.text_input(key="p_temi_epochs").input("5").run()         # "auto" by default; quick on CPU
    app.number_input(key="p_temi_heads").set_value(2).run()
    app.button(key="w_run").click().run()
    run_until(app, lambda a: re.search(r"\*\*Run #\d+\*\* — temi, k=10", texts(a)) is not None, timeout=300)

    run = int(re.search(r"\*\*Run #(\d+)\*\*", texts(app)).group(1))
    with Store(allowed.parent / "workspace") as store:
        rec = store.run(run)
    assert rec["config"]["cluster"]["params"] == {"epochs": 5, "heads": 2}
    assert [h["epoch"] for h in rec["history"]] == [1, 2, 3, 4, 5]
    assert all(1 <= h["best_head"] <= 2 and "acc" in h for h in rec["history"])
