"""The Cluster page's waits (issue 26, item 7), through AppTest on the digits demo: moving k three
times in a row starts one run (the last setting's), the run shown stays until it is ready, and the
progress panel never says "no estimate yet"."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.store import Store
from tests.app.helpers import make_run, run_until, texts


def shown_run(at: AppTest) -> tuple[int, int]:
    m = re.search(r"\*\*Run #(\d+)\*\* — kmeans, k=(\d+)", texts(at))
    return int(m.group(1)), int(m.group(2))


def test_three_slider_moves_make_one_run_and_the_old_one_stays_in_view(
        app: AppTest, allowed: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ui import jobs

    make_run(app)
    first, k0 = shown_run(app)
    assert k0 == 10
    monkeypatch.setenv("CLUSTERLENS_JOB_WAIT_S", "0")   # the page does not wait for the job: a person's view
    monkeypatch.setattr(jobs, "SETTLE_S", 30.0)        # each move lands well within the settle time
    for k in (5, 7, 12):
        app.slider(key="w_k").set_value(k).run()
        assert not app.exception, [e.value for e in app.exception]
        assert shown_run(app) == (first, 10)            # the old run is still shown, not an empty page
        assert f"Showing run #{first} until the new run (kmeans, k={k}) is ready" in texts(app)
    progress = [p.proto.text for p in app.get("progress")]
    assert progress and "waiting for the setting to settle" in progress[0] and "no estimate" not in progress[0]

    job = app.session_state["clusterlens"].job
    assert job.running and job.params["cluster"].k == 12
    with Store(allowed.parent / "workspace") as store:
        assert [(r["k"], r["status"]) for r in store.runs()] == [(10, "done")]   # nothing started for 5, 7, 12

    app.button(key="job_stop").click().run()            # Stop while it settles: it ends without a run
    assert job.wait(30) and job.status == "cancelled"
    app.button(key="w_run").click().run()                # Run starts at once, with the slider's k
    run_until(app, lambda a: shown_run(a)[1] == 12)
    second, _ = shown_run(app)
    assert second != first
    with Store(allowed.parent / "workspace") as store:
        assert [(r["k"], r["status"]) for r in store.runs()] == [(10, "done"), (12, "done")]
    assert "Showing run" not in texts(app)
