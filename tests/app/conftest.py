"""AppTest fixtures: a fresh workspace and allowed root per test, and a poll helper for jobs."""
from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

APP = Path(__file__).resolve().parents[2] / "app.py"


@pytest.fixture
def allowed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "allowed"
    root.mkdir()
    monkeypatch.setenv("CLUSTERLENS_HOME", str(tmp_path / "workspace"))
    monkeypatch.setenv("CLUSTERLENS_ALLOWED_ROOTS", str(root))
    monkeypatch.setenv("CLUSTERLENS_JOB_WAIT_S", "2")
    return root


@pytest.fixture
def app(allowed: Path) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=120)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.fixture
def reviewing(app: AppTest) -> AppTest:
    """The app on the Review page of a fresh k-means run (tests/app/helpers.make_run)."""
    from tests.app.helpers import make_run

    make_run(app)
    app.switch_page("pages/review.py").run()
    assert not app.exception, [e.value for e in app.exception]
    return app
