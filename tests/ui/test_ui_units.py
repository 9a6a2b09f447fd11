"""ui/ pieces without a browser: allowed roots, uploads, gallery order, scatter ids, jobs."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from core.data.arrays import make_array_dataset
from core.errors import ClusterLensError, DataError
from ui import figures, gallery, hover_preview
from ui.jobs import Job
from ui.settings import Settings, allowed_folder
from ui.uploads import Upload, save_uploads


def settings(root: Path) -> Settings:
    return Settings(workspace=root / "ws", allowed_roots=(root.resolve(),), max_upload_mb=1, job_wait_s=0)


def test_allowed_folder_inside_outside_and_dotdot(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    s = settings(tmp_path / "a")
    assert allowed_folder(str(tmp_path / "a"), s) == (tmp_path / "a").resolve()
    with pytest.raises(DataError) as e1:
        allowed_folder(str(tmp_path / "a" / ".." / "b"), s)
    with pytest.raises(DataError) as e2:
        allowed_folder("/definitely/not/here", s)
    assert str(e1.value) == str(e2.value)


def test_uploads_are_content_addressed_and_names_sanitised(tmp_path: Path) -> None:
    files = [Upload("../../x.png", b"1"), Upload("x.png", b"2"), Upload(".hidden", b"3")]
    folder = save_uploads(files, tmp_path, max_mb=1)
    assert sorted(p.name for p in folder.iterdir()) == ["hidden", "x-1.png", "x.png"]
    assert save_uploads(files, tmp_path, max_mb=1) == folder
    with pytest.raises(DataError, match=r"over the 1e-06 MB limit"):
        save_uploads(files, tmp_path, max_mb=0.000001)
    with pytest.raises(DataError, match="one .zip"):
        save_uploads([Upload("a.zip", b"z"), Upload("b.png", b"p")], tmp_path, max_mb=1)


def test_cluster_rows_order_and_prototypes() -> None:
    labels = np.array([0, 1, 0, 0, 1])
    conf = np.array([0.2, 0.9, 0.8, 0.5, 0.1], dtype=np.float32)
    assert gallery.cluster_rows(labels, conf, 0, gallery.ORDERS[0]).tolist() == [2, 3, 0]
    assert gallery.cluster_rows(labels, conf, 0, gallery.ORDERS[1]).tolist() == [0, 3, 2]
    assert gallery.prototypes(labels, conf, 1, n=1).tolist() == [1]


def test_scatter_carries_ids_in_customdata_and_selection_reads_them() -> None:
    xy = np.arange(12, dtype=np.float32).reshape(6, 2)
    ids = [f"s/{i}" for i in range(6)]
    fig = figures.scatter(xy, ids, np.array([1, 0, 1, 0, 2, 2]), None)
    assert [t.type for t in fig.data] == ["scattergl"] * 3
    assert sorted(i for t in fig.data for i in t.customdata) == sorted(ids)
    # point_indices are per trace and would be ambiguous; customdata is not.
    event = {"selection": {"points": [{"curve_number": 0, "point_index": 0, "customdata": "s/1"},
                                      {"curve_number": 1, "point_index": 0, "customdata": "s/0"}],
                           "point_indices": [0, 0]}}
    assert gallery.selected_ids(event) == ["s/1", "s/0"]


def test_outliers_marked_by_a_person_get_their_own_bar_and_trace() -> None:
    # A re-trained run keeps outliers as -1: they must neither crash bincount nor wrap to a cluster.
    labels = np.array([0, 0, 1, -1, 2, -1, 1])
    conf = np.array([0.9, 0.1, 0.8, 1.0, 0.05, 0.1, 0.9])
    fig = figures.cluster_sizes(labels, conf, threshold=0.2)
    confident, doubtful = fig.data
    assert list(confident.x) == ["cluster_0", "cluster_1", "cluster_2", "outliers"]   # the clusters' one name
    assert list(confident.y) == [1, 2, 0, 1] and list(doubtful.y) == [1, 0, 1, 1]
    sc = figures.scatter(np.zeros((7, 2)), [str(i) for i in range(7)], labels, ["a", "b", "c"])
    assert {t.name: len(t.customdata) for t in sc.data} == {"outliers": 2, "a": 2, "b": 2, "c": 1}


def test_run_history_draws_what_each_clusterer_recorded() -> None:
    ruc = [{"epoch": 1, "loss": 1.5, "clean_size": 50, "clean_fraction": 0.5, "clean_precision": 0.9, "acc": 0.8},
           {"epoch": 2, "loss": 1.2, "clean_size": 70, "clean_fraction": 0.7, "clean_precision": 0.85, "acc": 0.82}]
    fig = figures.run_history(ruc)
    series = {t.name: (list(t.x), list(t.y), t.yaxis) for t in fig.data}
    assert series == {"clean set (share of images)": ([1, 2], [0.5, 0.7], None),
                      "clean-set precision (ground truth)": ([1, 2], [0.9, 0.85], None),
                      "ACC (ground truth)": ([1, 2], [0.8, 0.82], None),
                      "loss": ([1, 2], [1.5, 1.2], "y2")}
    kmeans = [{"iteration": 1, "inertia": 9.0, "moved": 1.0}, {"iteration": 2, "inertia": 7.5, "moved": 0.1}]
    fig = figures.run_history(kmeans)
    assert [(t.name, list(t.y)) for t in fig.data] == [("inertia", [9.0, 7.5])]
    assert fig.layout.xaxis.title.text == "iteration"
    assert figures.run_history([]) is None


def test_hover_preview_sends_one_image_for_the_hovered_id_only() -> None:
    images = np.zeros((3, 8, 8), np.uint8)
    images[1, 2:6, 3] = 255
    ds = make_array_dataset("t", images, np.array([0, 1, 0]), ["a", "b"], [("s", 3)])
    index = {sid: i for i, sid in enumerate(ds.ids)}
    labels, conf = np.array([2, 0, 1]), np.array([0.5, 0.25, 1.0])

    def describe(r: int) -> str:
        return gallery.describe(r, labels, conf, ds.ids, ds.class_names, ds.labels)

    data = hover_preview.preview_data(ds, index, "s/1", describe, "#chart")
    assert data["id"] == "s/1" and data["chart"] == "#chart"
    assert data["src"].startswith("data:image/png;base64,")
    assert data["caption"] == "s/1 · cluster_0 · confidence 0.25 · true class b"
    for unknown in (None, "", "nope"):   # nothing hovered yet, or an id of another dataset
        assert hover_preview.preview_data(ds, index, unknown, describe, "#chart") == {
            "chart": "#chart", "id": None, "src": None, "caption": hover_preview.HINT}


def test_job_reports_progress_finishes_fails_and_stops() -> None:
    def ok(report, stop):  # noqa: ANN001, ANN202
        report(0.5, "half")
        return 42

    job = Job.start("t", "ok", ok)
    assert job.wait(5) and job.status == "done" and job.result == 42

    def bad(report, stop):  # noqa: ANN001, ANN202
        raise ClusterLensError("bad input")

    job = Job.start("t", "bad", bad)
    assert job.wait(5) and job.status == "failed" and job.error == "bad input"

    started = threading.Event()

    def slow(report, stop):  # noqa: ANN001, ANN202
        started.set()
        while not stop():
            time.sleep(0.01)
        raise ClusterLensError("stopped")

    job = Job.start("t", "slow", slow)
    started.wait(5)
    assert job.running
    job.stop()
    assert job.wait(5) and job.status == "cancelled" and job.result is None


def _cards_page() -> None:
    from ui.widgets import score_cards

    scores = {"acc": 0.4697, "nmi": 0.36586, "ari": 0.2437, "silhouette": 0.0201, "davies_bouldin": 3.2523,
              "calinski_harabasz": 7852.264, "n_clusters": 10}
    score_cards(scores)               # full width: one row of seven
    score_cards(scores, per_row=4)    # half width (runs compared side by side): rows of four


def test_score_cards_fit_their_width_and_large_scores_are_whole_numbers() -> None:
    from streamlit.testing.v1 import AppTest

    from ui.widgets import score_text

    assert score_text(0.4697) == "0.470" and score_text(-0.0201) == "-0.020"
    assert score_text(7852.264) == "7,852" and score_text(999.4) == "999.400" and score_text(10) == "10"
    at = AppTest.from_function(_cards_page).run()
    assert not at.exception, [e.value for e in at.exception]
    values = ["0.470", "0.366", "0.244", "0.020", "3.252", "7,852", "10"]
    assert [m.value for m in at.metric] == values * 2
    # 7 columns for the full-width row, then 4 + 4 for the two half-width rows
    assert len(at.columns) == 7 + 8
    assert [len(c.children) for c in at.columns][7:] == [1, 1, 1, 1, 1, 1, 1, 0]


def test_plain_escapes_every_markdown_character_and_joins_lines() -> None:
    import string

    from ui.text import plain

    assert plain(string.punctuation) == "".join("\\" + c for c in string.punctuation)
    assert plain("![b](http://h/x.png)") == "\\!\\[b\\]\\(http\\:\\/\\/h\\/x\\.png\\)"
    assert plain("two\nlines\r\n") == "two lines  "
    assert plain("café 3 ✎") == "café 3 ✎"            # letters, digits and other text stay as they are


def test_check_source_allows_demos_roots_and_uploads_only(tmp_path: Path) -> None:
    from ui.settings import check_source

    root, ws = tmp_path / "allowed", tmp_path / "ws"
    (root / "photos").mkdir(parents=True)
    (ws / "uploads" / "upload-abc").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    (root / "link-out").symlink_to(tmp_path / "elsewhere")
    s = Settings(workspace=ws, allowed_roots=(root.resolve(),), max_upload_mb=1, job_wait_s=0)
    for ok in ("digits", "torchvision:mnist", str(root / "photos"), str(ws / "uploads" / "upload-abc")):
        check_source(ok, s)
    for bad in (str(tmp_path / "elsewhere"), str(root / "link-out"), str(ws), str(ws / "datasets"), "/etc"):
        with pytest.raises(DataError, match="not under the folders this app may read"):
            check_source(bad, s)
    with pytest.raises(DataError, match=r"control character \('\\x00'\)"):
        check_source("digits\x00", s)


def test_allowed_folder_refuses_a_nul_with_a_message(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"^the path contains a control character \('\\x00'\), which no file name "
                                        r"can hold; type or paste the path again$"):
        allowed_folder(f"{tmp_path}/a\x00b", settings(tmp_path))


def test_a_tile_that_cannot_be_read_now_is_a_placeholder(tmp_path: Path) -> None:
    from PIL import Image

    from core.data.folder import open_folder
    from ui.engine import PLACEHOLDER_URI, thumb_uri

    for name in ("a.png", "b.png"):
        Image.new("RGB", (4, 4), "red").save(tmp_path / name)
    ds = open_folder(tmp_path)
    assert thumb_uri(ds.fingerprint, 0, 32, ds).startswith("data:image/png;base64,")
    (tmp_path / "b.png").write_text("not an image any more")
    assert thumb_uri(ds.fingerprint, 1, 32, ds) == PLACEHOLDER_URI
    (tmp_path / "a.png").unlink()
    (tmp_path / "a.png").symlink_to("/etc/hostname")
    assert thumb_uri(ds.fingerprint + "x", 0, 32, ds) == PLACEHOLDER_URI   # a link out of the folder


def test_a_job_that_fills_the_disk_says_so_in_one_line() -> None:
    import errno

    def full(report, stop):  # noqa: ANN001, ANN202
        raise OSError(errno.ENOSPC, "No space left on device", "/ws/features/.tmp-x/shard-00000.npy")

    job = Job.start("t", "full", full)
    assert job.wait(5) and job.status == "failed"
    assert job.error == ("the disk holding /ws/features/.tmp-x is full; nothing was lost (the last change was "
                         "not saved); free some space and retry")


def test_the_pager_callback_survives_its_widget_being_dropped(monkeypatch) -> None:
    import streamlit as st

    from ui.widgets import page_changed

    got: list[int] = []
    monkeypatch.setattr(st, "session_state", {"w_sel_page": 3})
    page_changed("w_sel_page", 1, got.append)
    monkeypatch.setattr(st, "session_state", {})               # the selection was cleared meanwhile
    page_changed("w_sel_page", 2, got.append)
    assert got == [3, 2]
