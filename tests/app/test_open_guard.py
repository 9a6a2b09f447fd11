"""Opening data in the app: every way (the Data page, ?run=N, a run picked from the workspace) goes
through the allowed-root check, and a run whose folder changed is shown by its own sample ids."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from core.cli import main
from core.review import ReviewSession
from core.store import Store
from tests.app.helpers import component_data, run_until, shown, texts
from ui.engine import PLACEHOLDER_URI
from ui.text import plain

APP = str(Path(__file__).resolve().parents[2] / "app.py")
PICKER = "rv_picker"


def png_folder(root: Path, n: int = 24) -> Path:
    """Two classes of flat grey squares: dark ones in a/, light ones in b/."""
    for i in range(n):
        cls = "a" if i % 2 else "b"
        (root / cls).mkdir(parents=True, exist_ok=True)
        value = 20 + i if cls == "a" else 200 + i
        Image.fromarray(np.full((8, 8), value, np.uint8)).save(root / cls / f"img{i:03d}.png")
    return root


def cli_run(folder: Path, workspace: Path) -> int:
    assert main(["run", "--data", str(folder), "--backbone", "pixels", "--reduce", "none", "--k", "2", "--map", "none",
                 "--workspace", str(workspace)]) == 0
    with Store(workspace) as store:
        return store.runs()[-1]["id"]


def reopen(run: int) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["run"] = str(run)
    return at.switch_page("pages/review.py").run()


def test_a_run_on_a_folder_outside_the_allowed_roots_is_not_opened(allowed: Path, tmp_path: Path) -> None:
    run = cli_run(png_folder(tmp_path / "outside"), tmp_path / "workspace")
    at = reopen(run)                                               # ?run=N in the address
    assert not at.exception, [e.value for e in at.exception]
    errors = shown(" ".join(e.value for e in at.error))
    assert f"Run {run} cannot be opened: That folder is not under the folders this app may read" in errors
    assert not [e for e in at.get("bidi_component") if e.proto.id.endswith(PICKER)]   # no images shown

    at = AppTest.from_file(APP, default_timeout=120)               # picked from the workspace's runs
    at.switch_page("pages/review.py").run()
    at.button(key="w_rv_open_run").click().run()
    assert f"Run {run} cannot be opened" in shown(" ".join(e.value for e in at.error))
    assert not [e for e in at.get("bidi_component") if e.proto.id.endswith(PICKER)]


@pytest.mark.parametrize("text", ["/tmp/a\x00b", "\x00"])
def test_a_nul_in_the_folder_path_is_a_clear_message(app: AppTest, text: str) -> None:
    app.text_input(key="w_folder").input(text)
    app.button(key="w_open_folder").click().run()
    assert not app.exception, [e.value for e in app.exception]
    assert [e.value for e in app.error] == [plain(
        "the path contains a control character ('\\x00'), which no file name can hold; type or paste the path again")]


def test_a_run_whose_folder_changed_is_shown_by_its_own_ids(allowed: Path, tmp_path: Path) -> None:
    folder = png_folder(allowed / "photos")
    run = cli_run(folder, tmp_path / "workspace")
    gone = ["a/img001.png", "b/img010.png"]
    for sid in gone:
        (folder / sid).unlink()
    Image.fromarray(np.full((8, 8), 90, np.uint8)).save(folder / "a" / "img000-new.png")

    at = run_until(reopen(run), lambda a: f"Run #{run} (kmeans)" in texts(a))
    assert f"the folder changed since run {run}: 2 file(s) removed, 1 added" in texts(at)
    at.radio(key="w_rv_view").set_value("cluster").run()
    with Store(tmp_path / "workspace") as store:
        s = ReviewSession(store, run)
        ids, labels, names = s.ids, s.current_labels(), s.cluster_names()
    seen = {}
    for c in sorted(set(labels.tolist())):
        at.selectbox(key="w_rv_cluster").select(c).run()
        for t in component_data(at, PICKER)["tiles"]:
            seen[t["id"]] = t
            assert t["caption"].startswith(names[int(labels[ids.index(t["id"])])])   # the run's own cluster
    assert sorted(seen) == sorted(ids)                             # every run sample, none of the new file
    assert [sid for sid, t in seen.items() if t["src"] == PLACEHOLDER_URI] == gone
