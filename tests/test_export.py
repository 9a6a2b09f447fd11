"""Export a corrected run and read it back; refuse to clobber; the CLI subcommand."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.errors import DataError, ParameterError
from core.export import export_run, read_labels_csv, read_labels_json
from core.review import ReviewSession
from core.store import Store
from tests.review_helpers import make_run

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def corrected(tmp_path):
    run, ids, base = make_run(tmp_path / "ws", n=9, k=3, files=True)
    store = Store(tmp_path / "ws")
    s = ReviewSession(store, run)
    s.move([ids[0], ids[1]], 2)
    s.mark_outliers([ids[4]])
    s.rename(2, "cats/dogs")
    yield store, run, ids, s
    store.close()


def test_csv_and_json_reimport_to_the_same_labels(corrected, tmp_path):
    store, run, ids, s = corrected
    summary = export_run(store, run, "csv", tmp_path / "out" / "labels.csv")
    assert summary["n_samples"] == 9 and summary["n_corrected"] == 3
    got_ids, got = read_labels_csv(tmp_path / "out" / "labels.csv")
    assert got_ids == ids and (got == s.current_labels()).all()
    export_run(store, run, "json", tmp_path / "labels.json")
    doc = json.loads((tmp_path / "labels.json").read_text())
    rows = {r["sample_id"]: r for r in doc["samples"]}
    assert [rows[i]["cluster"] for i in ids] == s.current_labels().tolist()
    assert rows[ids[0]]["cluster_name"] == "cats/dogs" and rows[ids[0]]["corrected"] is True
    assert rows[ids[4]]["cluster_name"] == "outliers" and rows[ids[3]]["corrected"] is False


def test_json_export_reads_back_to_the_same_labels_corrections_included(corrected, tmp_path):
    store, run, ids, s = corrected
    export_run(store, run, "json", tmp_path / "labels.json")
    got_ids, got = read_labels_json(tmp_path / "labels.json")
    assert got_ids == ids and got.dtype == np.int64
    assert dict(zip(got_ids, got.tolist(), strict=True)) == dict(zip(ids, s.current_labels().tolist(), strict=True))
    corrected_rows = np.flatnonzero(s.corrected_mask())
    assert len(corrected_rows) == 3                               # two moves and an outlier, as corrected
    assert got[corrected_rows].tolist() == [2, 2, -1]
    # the JSON and CSV exports of the same run agree
    export_run(store, run, "csv", tmp_path / "labels.csv")
    csv_ids, csv_labels = read_labels_csv(tmp_path / "labels.csv")
    assert csv_ids == got_ids and (csv_labels == got).all()


@pytest.mark.parametrize("text,why", [("{not json", "not valid JSON"), ('{"run": 1}', "samples"),
                                      ('{"samples": [{"sample_id": "a"}]}', "lacks sample_id or cluster"),
                                      ('{"samples": [{"sample_id": "a", "cluster": "x"}]}', "not an integer"),
                                      ('{"samples": [{"sample_id": "a", "cluster": 1.5}]}', "not an integer")])
def test_bad_json_is_a_clear_data_error(tmp_path, text, why):
    (tmp_path / "l.json").write_text(text)
    with pytest.raises(DataError, match=why):
        read_labels_json(tmp_path / "l.json")
    with pytest.raises(DataError, match="cannot read"):
        read_labels_json(tmp_path / "missing.json")


def test_existing_file_refused_without_overwrite(corrected, tmp_path):
    store, run, ids, s = corrected
    out = tmp_path / "labels.csv"
    out.write_text("mine")
    with pytest.raises(ParameterError, match="already exists"):
        export_run(store, run, "csv", out)
    assert out.read_text() == "mine"
    export_run(store, run, "csv", out, overwrite=True)
    assert read_labels_csv(out)[0] == ids


def test_imagefolder_by_cluster_name_copy_and_link(corrected, tmp_path):
    store, run, ids, s = corrected
    out = tmp_path / "folders"
    export_run(store, run, "imagefolder", out)
    names = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert names == ["cats_dogs", "cluster_0", "cluster_1", "outliers"]
    lab = s.current_labels()
    back = {p.name: p.parent.name for p in out.rglob("*.png")}
    folder = {2: "cats_dogs", 0: "cluster_0", 1: "cluster_1", -1: "outliers"}
    assert {i.replace("/", "__"): folder[int(c)] for i, c in zip(ids, lab, strict=True)} == back
    assert not any(p.is_symlink() for p in out.rglob("*.png"))
    with pytest.raises(ParameterError, match="already has files"):
        export_run(store, run, "imagefolder", out)
    export_run(store, run, "imagefolder", out, overwrite=True, link=True)
    assert all(p.is_symlink() for p in out.rglob("*.png"))


def test_non_empty_foreign_folder_is_never_replaced(corrected, tmp_path):
    store, run, ids, s = corrected
    out = tmp_path / "photos"
    out.mkdir()
    (out / "precious.jpg").write_text("x")
    for overwrite in (False, True):
        with pytest.raises(ParameterError):
            export_run(store, run, "imagefolder", out, overwrite=overwrite)
    assert [p.name for p in out.iterdir()] == ["precious.jpg"]


def test_paths_outside_allowed_roots_are_refused(corrected, tmp_path):
    store, run, ids, s = corrected
    with pytest.raises(ParameterError, match="outside"):
        export_run(store, run, "csv", tmp_path / "a" / ".." / ".." / "x.csv", allowed_roots=[tmp_path / "a"])
    export_run(store, run, "csv", tmp_path / "a" / "x.csv", allowed_roots=[tmp_path / "a"])


def test_array_dataset_cannot_be_exported_as_folders(tmp_path):
    run, ids, base = make_run(tmp_path / "ws", n=4, k=2)
    with Store(tmp_path / "ws") as store:
        with pytest.raises(DataError, match="no image file"):
            export_run(store, run, "imagefolder", tmp_path / "f")
        with pytest.raises(ParameterError, match="unknown export format"):
            export_run(store, run, "xml", tmp_path / "f")


def test_cli_export(corrected, tmp_path):
    store, run, ids, s = corrected
    out = tmp_path / "cli.csv"
    args = [sys.executable, "-m", "core", "export", "--workspace", str(tmp_path / "ws"), "--run", str(run),
            "--format", "csv", "--out", str(out)]
    r = subprocess.run(args + ["--json"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.strip().splitlines()[-1])["n_corrected"] == 3
    assert (read_labels_csv(out)[1] == s.current_labels()).all()
    r = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "already exists" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run(args[:-6] + ["--run", "999", "--format", "csv", "--out", str(out), "--overwrite"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "no run 999" in r.stderr
