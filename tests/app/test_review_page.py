"""The Review page through AppTest on the digits demo (pixel features, k-means k=10).

Tiles are "clicked" by sending the tile picker's own event (ids + seq) as the browser would; what
counts is what the workspace database says afterwards, read by a separate ReviewSession.
"""
from __future__ import annotations

import csv
import io
import re
import time
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from core.review import ReviewSession
from core.store import Store
from tests.app.helpers import component_data, extract_pixels, run_until, send_component_event, shown, texts
from ui.review import STALE

PICKER = "rv_picker"
REPLACE_Q = "already holds an earlier ClusterLens export"   # the "Replace?" question


@pytest.fixture
def media(monkeypatch: pytest.MonkeyPatch) -> list:
    """Every MediaFileManager AppTest makes (one per run): download buttons store their files there."""
    import streamlit.testing.v1.app_test as app_test

    made: list = []

    class Recording(app_test.MediaFileManager):
        def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(app_test, "MediaFileManager", Recording)
    return made


def workspace(allowed: Path) -> Path:
    return allowed.parent / "workspace"


def run_id(at: AppTest) -> int:
    return int(re.search(r"Run #(\d+)", texts(at)).group(1))


def db(allowed: Path, run: int) -> tuple[np.ndarray, dict[int, str], list[str], np.ndarray]:
    """What the database says now: current labels, names, sample ids, corrected mask."""
    with Store(workspace(allowed)) as store:
        s = ReviewSession(store, run)
        return s.current_labels(), s.cluster_names(), s.ids, s.corrected_mask()


def shown_ids(at: AppTest) -> list[str]:
    return [t["id"] for t in component_data(at, PICKER)["tiles"]]


def click_tiles(at: AppTest, ids: list[str]) -> AppTest:
    """Click tiles one after another, as a person would (the picker sends the whole selection)."""
    selected = list(component_data(at, PICKER)["selected"])
    for sid in ids:
        selected = [x for x in selected if x != sid] if sid in selected else [*selected, sid]
        send_component_event(at, PICKER, "pick", {"ids": selected, "seq": time.time() * 1000})
        assert not at.exception, [e.value for e in at.exception]
    return at


def other_cluster(labels: np.ndarray, rows: list[int]) -> int:
    return next(c for c in range(10) if all(labels[r] != c for r in rows))


def move_two(at: AppTest, allowed: Path) -> tuple[int, list[str], np.ndarray, list[str], list[int], int]:
    """Click the first two tiles and move them to a cluster neither is in.

    Returns (run, sample ids, labels before, picked ids, their rows, target cluster)."""
    run = run_id(at)
    labels0, _, ids, _ = db(allowed, run)
    picked = shown_ids(at)[:2]
    rows = [ids.index(p) for p in picked]
    target = other_cluster(labels0, rows)
    click_tiles(at, picked)
    at.selectbox(key="w_rv_target").select(target).run()
    at.button(key="w_rv_move").click().run()
    return run, ids, labels0, picked, rows, target


def progress(at: AppTest) -> str:
    """The text of the page's progress bar(s)."""
    return "\n".join(p.proto.text for p in at.get("progress"))


def success(at: AppTest) -> str:
    return shown("\n".join(s.value for s in at.success))


def test_click_tiles_move_rename_undo_redo_and_history(reviewing: AppTest, allowed: Path) -> None:
    at = reviewing
    run = run_id(at)
    labels0, _, ids, _ = db(allowed, run)
    picked = shown_ids(at)[:2]                                # the two most doubtful images
    rows = [ids.index(p) for p in picked]
    target = other_cluster(labels0, rows)

    click_tiles(at, picked)
    assert "**2 image(s) selected**" in texts(at)
    assert component_data(at, PICKER)["selected"] == picked   # the outline comes back from the server
    at.selectbox(key="w_rv_target").select(target).run()
    at.button(key="w_rv_move").click().run()
    assert f"Moved 2 image(s) to cluster_{target}. Saved." in success(at)

    labels, _, _, corrected = db(allowed, run)                 # in the database, seen by another session
    assert [int(labels[r]) for r in rows] == [target, target]
    assert corrected.sum() == 2 and corrected[rows].all()
    assert np.array_equal(np.delete(labels, rows), np.delete(labels0, rows))
    assert not set(picked) & set(shown_ids(at))               # the queue moves on
    assert component_data(at, PICKER)["selected"] == []       # and the selection is spent
    assert "2 image(s) corrected" in texts(at)

    # browse the target cluster: the moved images are there, marked as corrected
    at.radio(key="w_rv_view").set_value("cluster").run()
    at.selectbox(key="w_rv_cluster").select(target).run()
    tiles = {t["id"]: t for t in component_data(at, PICKER)["tiles"]}
    assert set(picked) <= set(tiles) and all(tiles[p]["mark"] == "✎" for p in picked)

    at.selectbox(key="w_rv_rename_c").select(target).run()
    at.text_input(key="w_rv_name").input("sevens").run()
    at.button(key="w_rv_rename").click().run()
    assert db(allowed, run)[1][target] == "sevens"
    tiles = component_data(at, PICKER)["tiles"]
    assert tiles and all(t["caption"].startswith("sevens · ") for t in tiles)   # the name is shown
    assert "sevens" in at.dataframe[0].value["name"].tolist()

    # history of one moved sample
    at.selectbox(key="w_rv_history").select(picked[0]).run()
    hist = at.dataframe[-1].value
    assert hist["what"].tolist() == ["move"] and hist["to"].tolist() == ["sevens"]
    assert hist["state"].tolist() == ["applied"]

    # undo the rename, then the move: the database is back where it started
    assert shown(at.button(key="w_rv_undo").label).startswith("Undo: renamed cluster")
    at.button(key="w_rv_undo").click().run()
    assert db(allowed, run)[1][target] == f"cluster_{target}"
    assert shown(at.button(key="w_rv_undo").label).startswith("Undo: moved 2 image(s)")
    at.button(key="w_rv_undo").click().run()
    labels, _, _, corrected = db(allowed, run)
    assert np.array_equal(labels, labels0) and not corrected.any()
    assert set(picked) <= set(shown_ids(at)) or at.radio(key="w_rv_view").value == "cluster"
    at.selectbox(key="w_rv_history").select(picked[0]).run()
    assert at.dataframe[-1].value["state"].tolist() == ["undone"]

    at.button(key="w_rv_redo").click().run()                   # redo the move
    assert [int(db(allowed, run)[0][r]) for r in rows] == [target, target]
    last = at.dataframe[1].value                               # last edits, newest first
    assert last["what"].iloc[0].startswith("redo of edit #")


def test_stale_edit_from_another_session_is_refused_and_nothing_is_overwritten(reviewing: AppTest,
                                                                              allowed: Path) -> None:
    at = reviewing
    run = run_id(at)
    labels0, _, ids, _ = db(allowed, run)
    mine = shown_ids(at)[:2]
    click_tiles(at, mine)

    theirs_to = other_cluster(labels0, [ids.index(m) for m in mine])
    mine_to = next(c for c in range(10) if c != theirs_to and c not in labels0[[ids.index(m) for m in mine]])
    at.selectbox(key="w_rv_target").select(mine_to).run()

    # after this page was drawn, another tab moves one of the same images elsewhere
    with Store(workspace(allowed)) as store:
        ReviewSession(store, run).move([mine[0]], theirs_to)
    at.button(key="w_rv_move").click().run()
    assert STALE in shown("\n".join(e.value for e in at.error))
    labels, _, _, corrected = db(allowed, run)
    assert labels[ids.index(mine[0])] == theirs_to             # their edit stands
    assert labels[ids.index(mine[1])] == labels0[ids.index(mine[1])]   # ours was not written
    assert corrected.sum() == 1
    with Store(workspace(allowed)) as store:
        assert [e["op"] for e in store.edits(run)] == ["move"]

    # the page was redrawn from the database: trying again now works
    assert "1 image(s) corrected" in texts(at)
    assert component_data(at, PICKER)["selected"] == mine      # the selection is kept for the retry
    at.button(key="w_rv_move").click().run()
    assert not at.error and "Moved 2 image(s)" in success(at)
    labels = db(allowed, run)[0]
    assert labels[ids.index(mine[0])] == mine_to and labels[ids.index(mine[1])] == mine_to


def test_a_full_disk_during_a_move_is_one_line_and_every_earlier_edit_stays(reviewing: AppTest, allowed: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.test_store_disk_full import FullDisk, full_message

    at = reviewing
    run, ids, labels0, picked, rows, target = move_two(at, allowed)
    assert [shown(s.value) for s in at.success] == [f"Moved 2 image(s) to cluster_{target}. Saved."]
    disks: list[FullDisk] = []
    opened = Store.__init__

    def on_a_full_disk(self: Store, root: Path) -> None:    # every commit now fails as SQLite's does
        opened(self, root)
        self._db = FullDisk(self._db, "COMMIT")
        disks.append(self._db)
    monkeypatch.setattr(Store, "__init__", on_a_full_disk)
    move_two(at, allowed)
    assert not at.exception, [e.value for e in at.exception]
    assert [shown(e.value) for e in at.error] == [full_message(workspace(allowed))]
    assert not at.success and sum(d.hits for d in disks) == 1
    labels, _, _, corrected = db(allowed, run)                  # the first move is all there, the second not
    assert [int(labels[r]) for r in rows] == [target, target] and corrected.sum() == 2
    assert np.array_equal(np.delete(labels, rows), np.delete(labels0, rows))
    with Store(workspace(allowed)) as store:
        assert [e["op"] for e in store.edits(run)] == ["move"]


def test_spot_check_shows_the_runs_random_sample_and_moves_on_past_checked_and_corrected(
        reviewing: AppTest, allowed: Path) -> None:
    at = reviewing
    run = run_id(at)
    doubtful = shown_ids(at)
    at.radio(key="w_rv_view").set_value("sample").run()
    assert "in random order: a spot check" in texts(at)
    with Store(workspace(allowed)) as store:
        s = ReviewSession(store, run)
        sample = [s.ids[r] for r in s.review_queue(order="sample")]
    page = shown_ids(at)
    assert page == sample[:len(page)] and page != doubtful             # the run's own fixed shuffle
    at.button(key="w_rv_checked").click().run()                          # looked at and fine: the sample moves on
    assert shown_ids(at)[:5] == sample[len(page):len(page) + 5]
    run, ids, labels0, picked, rows, target = move_two(at, allowed)     # correcting two keeps the rest in order
    rest = [x for x in sample[len(page):] if x not in picked]
    assert shown_ids(at)[:5] == rest[:5]
    assert [int(db(allowed, run)[0][r]) for r in rows] == [target, target]


def test_merge_split_outliers_checked_and_reviewed(reviewing: AppTest, allowed: Path) -> None:
    at = reviewing
    run = run_id(at)
    labels0, _, ids, _ = db(allowed, run)

    at.selectbox(key="w_rv_merge_a").select(0).run()
    at.selectbox(key="w_rv_merge_b").select(1).run()
    at.button(key="w_rv_merge").click().run()
    labels = db(allowed, run)[0]
    assert not (labels == 1).any() and (labels == 0).sum() == ((labels0 == 0) | (labels0 == 1)).sum()

    at.selectbox(key="w_rv_split_c").select(0).run()
    at.number_input(key="w_rv_split_k").set_value(2).run()
    at.button(key="w_rv_split").click().run()
    labels = db(allowed, run)[0]
    assert sorted(set(labels.tolist())) == [0, *range(2, 11)]     # a new cluster 10 (ids are never reused)
    assert "Split cluster_0 into 2: new cluster(s) cluster_10. Saved." in success(at)

    page = shown_ids(at)
    click_tiles(at, page[:3])
    at.button(key="w_rv_outliers").click().run()
    labels = db(allowed, run)[0]
    assert all(labels[ids.index(p)] == -1 for p in page[:3])

    # marking a page checked moves the queue on; marking a cluster reviewed counts in the progress
    page = shown_ids(at)
    at.button(key="w_rv_checked").click().run()
    assert not set(page) & set(shown_ids(at))
    # only what a person looked at counts: the 3 outliers and the page, not what the merge or split moved
    with Store(workspace(allowed)) as store:
        by_person = ReviewSession(store, run).person_mask()
    checked = by_person | np.isin(ids, page)
    assert by_person.sum() == 3 and checked.sum() == 3 + len(page)
    assert f"Checked {int(checked.sum()):,} of 1,797 images" in progress(at)
    at.radio(key="w_rv_view").set_value("cluster").run()
    at.selectbox(key="w_rv_cluster").select(2).run()
    at.button(key="w_rv_mark_cluster").click().run()
    assert "1 of 10 clusters marked reviewed" in progress(at)
    with Store(workspace(allowed)) as store:
        assert "cluster:2" in ReviewSession(store, run).reviewed()
    assert at.button(key="w_rv_mark_cluster").disabled


def test_export_download_csv_and_save_refuses_to_overwrite_without_confirmation(
        reviewing: AppTest, allowed: Path, media: list) -> None:
    at = reviewing
    run, ids, labels0, picked, rows, target = move_two(at, allowed)

    # the download button builds the CSV when clicked: run that as the browser's click would
    mgr = media[-1]
    url = mgr.execute_deferred(at.get("download_button")[0].proto.deferred_file_id)
    body = mgr._storage.get_file(url.rsplit("/", 1)[-1].split(".")[0]).content.decode()
    rows = list(csv.DictReader(io.StringIO(body)))
    assert len(rows) == 1797 and [r["sample_id"] for r in rows] == ids
    by_id = {r["sample_id"]: r for r in rows}
    for p in picked:
        assert by_id[p]["cluster"] == str(target) and by_id[p]["corrected"] == "1"
    assert sum(r["corrected"] == "1" for r in rows) == 2

    # save on the server: a fresh file is written at once
    out = allowed / "labels.csv"
    at.radio(key="w_rv_exp_fmt").set_value("csv").run()
    at.text_input(key="w_rv_exp_path").input(str(out)).run()
    at.button(key="w_rv_save").click().run()
    assert f"to {out}." in success(at)
    assert out.read_text() == body

    # another edit, then save again to the same file: asked first, the file untouched
    at.button(key="w_rv_undo").click().run()
    at.button(key="w_rv_save").click().run()
    assert any(REPLACE_Q in w.value for w in at.warning)
    assert out.read_text() == body
    at.button(key="w_rv_cancel").click().run()
    assert not any(REPLACE_Q in w.value for w in at.warning)
    assert out.read_text() == body

    at.button(key="w_rv_save").click().run()
    at.button(key="w_rv_replace").click().run()                # confirmed: now replaced
    fresh = list(csv.DictReader(io.StringIO(out.read_text())))
    assert all(r["corrected"] == "0" for r in fresh)
    assert {r["sample_id"]: r["cluster"] for r in fresh}[picked[0]] == str(labels0[ids.index(picked[0])])

    # outside the allowed folders: refused, nothing written
    at.text_input(key="w_rv_exp_path").input(str(allowed.parent / "elsewhere.csv")).run()
    at.button(key="w_rv_save").click().run()
    assert any("not under the folders this app may read" in e.value for e in at.error)
    assert not (allowed.parent / "elsewhere.csv").exists()

    # digits are arrays, not files: an ImageFolder export says what to do instead
    at.radio(key="w_rv_exp_fmt").set_value("imagefolder").run()
    at.button(key="w_rv_save").click().run()
    assert any("export csv or json instead" in e.value for e in at.error)


def test_save_refuses_a_foreign_or_hand_edited_file_with_a_message_and_no_replace_question(
        reviewing: AppTest, allowed: Path) -> None:
    at = reviewing

    def errors() -> list[str]:
        return [shown(e.value) for e in at.error]

    at.radio(key="w_rv_exp_fmt").set_value("csv").run()
    foreign = allowed / "precious.csv"
    foreign.write_text("mine")
    at.text_input(key="w_rv_exp_path").input(str(foreign)).run()
    at.button(key="w_rv_save").click().run()
    assert errors() == [f"{foreign} already exists and was not written by a ClusterLens export, so it will not "
                        "be replaced; choose another file name"]
    assert not any(REPLACE_Q in w.value for w in at.warning)      # no "Replace?" to click
    assert foreign.read_text() == "mine"

    ours = allowed / "labels.csv"
    at.text_input(key="w_rv_exp_path").input(str(ours)).run()
    at.button(key="w_rv_save").click().run()
    at.button(key="w_rv_save").click().run()
    assert any(REPLACE_Q in w.value for w in at.warning)          # our own export: asked
    ours.write_text(ours.read_text() + "edited by hand\n")                  # ... and edited meanwhile
    at.button(key="w_rv_replace").click().run()
    assert any("was changed since ClusterLens exported it" in e for e in errors())
    assert not any(REPLACE_Q in w.value for w in at.warning)      # the question is gone
    assert ours.read_text().endswith("edited by hand\n")


def test_imagefolder_export_asks_before_replacing_an_earlier_export(app: AppTest, allowed: Path) -> None:
    from PIL import Image

    folder = allowed / "shapes"
    folder.mkdir()
    for i in range(12):
        Image.new("RGB", (8, 8), [(250, 10, 10), (10, 250, 10), (10, 10, 250)][i % 3]).save(folder / f"{i:02d}.png")
    app.text_input(key="w_folder").input(str(folder))
    app.button(key="w_open_folder").click().run()
    extract_pixels(app)
    app.switch_page("pages/cluster.py").run()
    app.slider(key="w_k").set_value(3).run()
    run_until(app, lambda a: "Run #" in texts(a))
    app.switch_page("pages/review.py").run()

    out = allowed / "export"
    app.text_input(key="w_rv_exp_path").input(str(out)).run()
    app.button(key="w_rv_save").click().run()
    assert "Exported 12 images (0 corrected) in 3 clusters" in success(app)
    first = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert len(first) == 12

    app.button(key="w_rv_save").click().run()                  # the folder has files now
    assert any(REPLACE_Q in w.value for w in app.warning)
    (out / "cluster_0" / "00.png").unlink() if (out / "cluster_0" / "00.png").exists() else None
    before = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    app.button(key="w_rv_cancel").click().run()
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png")) == before   # untouched
    app.button(key="w_rv_save").click().run()
    app.button(key="w_rv_replace").click().run()
    assert "Exported 12 images" in success(app)
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png")) == first


def test_retrain_holds_the_corrections_and_switches_to_the_new_run(reviewing: AppTest, allowed: Path) -> None:
    at = reviewing
    run, ids, labels0, picked, rows, target = move_two(at, allowed)
    odd = shown_ids(at)[0]                                          # and one marked as an outlier
    click_tiles(at, [odd])
    at.button(key="w_rv_outliers").click().run()

    at.selectbox(key="w_rv_algo").select("dac").run()
    at.number_input(key="p_dac_epochs").set_value(2).run()        # quick: two epochs on CPU
    at.button(key="w_rv_retrain").click().run()
    run_until(at, lambda a: f"re-trained from run #{run}" in texts(a), timeout=300)
    new = run_id(at)
    assert new != run
    assert f"this is now run #{new}" in shown("\n".join(i.value for i in at.info))
    with Store(workspace(allowed)) as store:
        rec = store.run(new)
        assert rec["algo"] == "dac" and rec["config"]["parent_run"] == run
        labels, confidence = store.assignments(new)
    assert [int(labels[r]) for r in rows] == [target, target]      # the corrections were held
    assert all(confidence[r] == 1.0 for r in rows)
    assert db(allowed, run)[0][rows].tolist() == [target, target]  # the parent keeps its edits
    assert "0 image(s) corrected" in texts(at)                      # a fresh review of the new run
    assert component_data(at, PICKER)["selected"] == []
    assert labels[ids.index(odd)] == -1                             # outliers stay out of every cluster
    # the other pages draw a run that holds outliers (label -1) without tripping over them
    at.switch_page("pages/cluster.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert "; 1 outliers;" in texts(at)
    at.switch_page("pages/explore.py").run()
    assert not at.exception, [e.value for e in at.exception]


def test_a_new_session_reopens_the_run_from_the_address_with_its_edits(reviewing: AppTest, allowed: Path) -> None:
    at = reviewing
    run, ids, labels0, picked, rows, target = move_two(at, allowed)
    assert at.query_params["run"] == str(run)                      # the address names the run

    fresh = AppTest.from_file(str(Path(__file__).resolve().parents[2] / "app.py"), default_timeout=120)
    fresh.query_params["run"] = str(run)                              # a reload: same address, new session
    fresh.switch_page("pages/review.py").run()
    run_until(fresh, lambda a: f"Run #{run} (kmeans)" in texts(a))
    assert "2 image(s) corrected" in texts(fresh)
    fresh.radio(key="w_rv_view").set_value("cluster").run()
    fresh.selectbox(key="w_rv_cluster").select(target).run()
    tiles = {t["id"]: t for t in component_data(fresh, PICKER)["tiles"]}
    assert set(picked) <= set(tiles) and all(tiles[p]["mark"] == "✎" for p in picked)
    run_until(fresh, lambda a: "Features: pixels" in texts(a))     # reopened from the feature cache


def test_without_a_run_the_page_offers_the_workspace_runs(reviewing: AppTest, allowed: Path) -> None:
    run = run_id(reviewing)
    fresh = AppTest.from_file(str(Path(__file__).resolve().parents[2] / "app.py"), default_timeout=120)
    fresh.switch_page("pages/review.py").run()
    assert "Cluster the images first" in texts(fresh)
    assert fresh.selectbox(key="w_rv_open").options == [f"#{run} · kmeans, k=10"]
    fresh.button(key="w_rv_open_run").click().run()
    run_until(fresh, lambda a: f"Run #{run} (kmeans)" in texts(a))
    assert component_data(fresh, PICKER)["tiles"]


def _xs(trace: dict) -> np.ndarray:
    """A plotly trace's x values from the page's JSON (a list, or base64 "bdata" for arrays)."""
    import base64

    x = trace["x"]
    return np.frombuffer(base64.b64decode(x["bdata"]), np.dtype(x["dtype"])) if isinstance(x, dict) else np.array(x)


def test_an_opened_run_puts_its_settings_on_the_cluster_and_explore_pages(allowed: Path) -> None:
    """A run made elsewhere (the CLI) and opened from the Review page: the Cluster page's controls
    show that run's algorithm, k, reduction, seed and own parameters, so Run starts from it; the
    Explore page shows the map the run drew (t-SNE here) without drawing it again."""
    import json

    from core.config import ClusterConfig, DataConfig, FeatureConfig, MapConfig, RunConfig
    from core.pipeline import run_pipeline

    ws = workspace(allowed)
    result = run_pipeline(RunConfig(
        data=DataConfig("digits", limit=300), features=FeatureConfig(backbone="pixels"),
        cluster=ClusterConfig(algo="dac", k=7, seed=3, reduce="pca:30", params={"epochs": 2, "balance": 0.5}),
        map=MapConfig(method="tsne"), workspace=str(ws)))
    run = result.run_id
    at = AppTest.from_file(str(Path(__file__).resolve().parents[2] / "app.py"), default_timeout=120)
    at.switch_page("pages/review.py").run()
    at.button(key="w_rv_open_run").click().run()
    run_until(at, lambda a: f"Run #{run} (dac)" in texts(a) and "Features: pixels" in texts(a))
    at.switch_page("pages/cluster.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="w_algo").value == "dac"
    assert at.slider(key="w_k").value == 7
    assert at.selectbox(key="w_reduce").value == "pca:30"        # not one of the page's usual choices
    assert at.number_input(key="w_seed").value == 3
    assert at.number_input(key="p_dac_epochs").value == 2
    assert at.number_input(key="p_dac_balance").value == 0.5
    assert at.number_input(key="p_dac_lr").value == 1e-3          # not set by the run: the default

    at.switch_page("pages/explore.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.radio(key="w_map").value == "tsne"
    (chart,) = [c for c in at.get("plotly_chart") if "customdata" in c.proto.spec]
    traces = json.loads(chart.proto.spec)["data"]
    first = min(traces, key=lambda t: t["name"])                  # "cluster 0"
    in_zero = result.labels == 0
    np.testing.assert_allclose(_xs(first), result.map_2d[in_zero, 0], rtol=1e-6)
    assert not (ws / "maps").exists() or not any((ws / "maps").iterdir())   # nothing drawn again


def test_retraining_a_ruc_run_starts_from_what_the_person_picks(allowed: Path) -> None:
    """The Re-train tab asks where RUC starts (the run's RUC start by default) and the engine gets it."""
    from core.config import ClusterConfig, DataConfig, FeatureConfig, MapConfig, RunConfig
    from core.pipeline import run_pipeline

    ws = workspace(allowed)
    run = run_pipeline(RunConfig(
        data=DataConfig("digits", limit=300), features=FeatureConfig(backbone="pixels"),
        cluster=ClusterConfig(algo="ruc", k=10, seed=1, reduce="pca:30", params={"epochs": 2, "warmup": 1}),
        map=MapConfig(method="pca"), workspace=str(ws))).run_id
    at = AppTest.from_file(str(Path(__file__).resolve().parents[2] / "app.py"), default_timeout=120)
    at.switch_page("pages/review.py").run()
    at.button(key="w_rv_open_run").click().run()
    run_until(at, lambda a: f"Run #{run} (ruc)" in texts(a))
    radio = at.radio(key="w_rv_refine")
    assert radio.value == "start" and radio.options == ["Where this run's RUC started", "This run's labels"]
    parent = run
    for choice in ("current", "start"):       # the second re-trains the first's result, a RUC run too
        at.radio(key="w_rv_refine").set_value(choice).run()
        at.button(key="w_rv_retrain").click().run()
        run_until(at, lambda a, p=parent: f"re-trained from run #{p}" in texts(a), timeout=300)
        with Store(ws) as store:
            rec = store.run(run_id(at))
        assert rec["config"]["parent_run"] == parent and rec["config"]["retrain"]["refined"] == choice
        parent = run_id(at)


def test_tile_picker_payloads() -> None:
    from core.data.arrays import make_array_dataset
    from ui.tile_picker import PickTile, picker_data, read_pick

    assert read_pick({"ids": ["a", 2], "seq": 5}) == (["a", "2"], 5.0)
    for junk in (None, "a", {"ids": "a"}, {"seq": 1}, []):
        assert read_pick(junk) is None
    assert read_pick({"ids": [], "seq": "x"}) == ([], 0.0)

    ds = make_array_dataset("z", np.zeros((3, 8, 8), np.uint8), None, None, [("s", 3)])
    data = picker_data(ds, [PickTile(row=2, caption="c1 · 0.50", mark="✎")], ["s/2", "gone"], ack=7.0)
    (tile,) = data["tiles"]
    assert tile["id"] == "s/2" and tile["tooltip"] == "s/2" and tile["mark"] == "✎" and "row" not in tile
    assert tile["src"].startswith("data:image/png;base64,")
    assert data["selected"] == ["s/2", "gone"] and data["ack"] == 7.0
