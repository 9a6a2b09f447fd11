"""Issue 26 item 8: stopping extraction in the app keeps what was extracted, and extracting
again resumes from there instead of starting from 0."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

import core.features.cache as cache_mod
from core.data.demos import load_digits_demo
from core.features import FeatureCache, extract_features
from tests.app.helpers import choose_digits, run_until, texts
from ui.jobs import Job


def test_stopped_extraction_resumes_where_it_stopped(app: AppTest, allowed: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cache_mod, "SHARD_ROWS", 256)
    reports: list[tuple[int, float | None, str]] = []   # (job number, fraction, message)
    jobs: list[int] = []
    real_report = Job._report

    def report(self: Job, fraction: float | None, message: str) -> None:
        if not jobs or jobs[-1] != id(self):
            jobs.append(id(self))
        reports.append((len(jobs), fraction, message))
        real_report(self, fraction, message)
        if len(jobs) == 1 and fraction is not None and fraction >= 0.3:
            self.stop()   # the person presses Stop at 30 % (as the page's Stop button does)

    monkeypatch.setattr(Job, "_report", report)
    choose_digits(app)
    app.switch_page("pages/features.py").run()
    app.selectbox(key="w_backbone").select("pixels").run()
    app.button(key="w_extract").click().run()
    run_until(app, lambda a: "stopped" in texts(a))
    assert "576 of 1,797 images; the 576 extracted are kept" in texts(app)   # 9 batches of 64

    app.button(key="w_extract").click().run()
    run_until(app, lambda a: any("Features ready" in s.value for s in a.success))
    second = [(f, m) for j, f, m in reports if j == 2 and f]
    assert second and second[0][0] > 576 / 1797 and second[0][1].startswith("640/1797 images")  # not from 0
    ws = allowed.parent / "workspace" / "features"
    (entry,) = [p for p in ws.iterdir() if not p.name.startswith(".")]
    assert not list(ws.glob(".partial-*"))
    got = FeatureCache(ws).get(entry.name)
    np.testing.assert_array_equal(got, extract_features(load_digits_demo(), "pixels", batch_size=64))
