"""Export a corrected run and read it back; refuse to clobber; the CLI subcommand."""
import csv
import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.errors import DataError, ParameterError, WorkspaceError
from core.export import export_run, read_labels_csv, read_labels_json, render_export
from core.review import ReviewSession
from core.store import DB_NAME, Store
from tests.review_helpers import FileDataset, make_run

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
    # overwrite replaces only ClusterLens's own earlier exports (issue 25): "mine" is not one
    with pytest.raises(ParameterError, match="not written by a ClusterLens export"):
        export_run(store, run, "csv", out, overwrite=True)
    assert out.read_text() == "mine"
    ours = tmp_path / "ours.csv"
    export_run(store, run, "csv", ours)
    with pytest.raises(ParameterError, match="already exists"):
        export_run(store, run, "csv", ours)
    export_run(store, run, "csv", ours, overwrite=True)
    assert read_labels_csv(ours)[0] == ids


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


# -- issue 25: what an export may replace, where it may go, CSV injection, a full disk ----------
def _left_behind(folder: Path) -> list[str]:
    """Temporary files or folders an export leaves beside its target (there should be none)."""
    return sorted(p.name for p in folder.iterdir() if ".tmp" in p.name or ".old" in p.name)


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_the_workspace_database_is_never_overwritten(corrected, tmp_path):
    store, run, ids, s = corrected
    ws = tmp_path / "ws"
    db = ws / DB_NAME
    labels = s.current_labels()
    for fmt in ("csv", "json"):
        with pytest.raises(ParameterError, match=r"is inside the workspace .*; choose a path outside it"):
            export_run(store, run, fmt, db, overwrite=True)
    with pytest.raises(ParameterError, match="inside the workspace"):
        export_run(store, run, "imagefolder", ws, overwrite=True)
    with pytest.raises(ParameterError, match=r"the workspace .* is inside"):
        export_run(store, run, "imagefolder", tmp_path, overwrite=True)   # would replace the workspace
    store.close()
    with Store(ws) as again:                               # still a database, with its run and corrections
        assert [r["id"] for r in again.runs()] == [run]
        session = ReviewSession(again, run)
        assert (session.current_labels() == labels).all() and session.cluster_names()[2] == "cats/dogs"


def test_a_new_file_inside_the_workspace_is_refused(corrected, tmp_path):
    store, run, ids, s = corrected
    ws = tmp_path / "ws"
    before = sorted(p.relative_to(ws).as_posix() for p in ws.rglob("*"))
    for fmt, out in (("csv", ws / "labels.csv"), ("json", ws / "runs" / "new" / "labels.json"),
                     ("imagefolder", ws / "folders")):
        with pytest.raises(ParameterError, match="inside the workspace"):
            export_run(store, run, fmt, out)
        assert not out.exists()
    assert sorted(p.relative_to(ws).as_posix() for p in ws.rglob("*")) == before


def test_a_symlink_is_resolved_before_the_checks(corrected, tmp_path):
    store, run, ids, s = corrected
    ws = tmp_path / "ws"
    db_bytes = (ws / DB_NAME).read_bytes()
    to_db, to_new, to_ws = tmp_path / "to-db.csv", tmp_path / "to-new.csv", tmp_path / "to-ws"
    to_db.symlink_to(ws / DB_NAME)
    to_new.symlink_to(ws / "new.csv")                      # a dangling link into the workspace
    to_ws.symlink_to(ws, target_is_directory=True)
    for out in (to_db, to_new, to_ws / "x.csv"):
        with pytest.raises(ParameterError, match="inside the workspace"):
            export_run(store, run, "csv", out, overwrite=True)
    assert (ws / DB_NAME).read_bytes() == db_bytes and not (ws / "new.csv").exists()
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "out.csv").symlink_to(tmp_path / "b.csv")      # leads out of the allowed root
    with pytest.raises(ParameterError, match="outside the folders exports may go to"):
        export_run(store, run, "csv", tmp_path / "a" / "out.csv", allowed_roots=[tmp_path / "a"])
    assert not (tmp_path / "b.csv").exists()


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_a_foreign_file_is_never_replaced(corrected, tmp_path, fmt):
    store, run, ids, s = corrected
    precious = tmp_path / "precious.txt"
    precious.write_text("years of notes\n")
    with pytest.raises(ParameterError) as e:
        export_run(store, run, fmt, precious, overwrite=True)
    assert str(e.value) == (f"{precious} already exists and was not written by a ClusterLens export, so it will "
                            "not be replaced; choose another file name")
    assert precious.read_text() == "years of notes\n" and _left_behind(tmp_path) == []


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_an_earlier_export_is_replaced_and_an_edited_one_is_not(corrected, tmp_path, fmt):
    store, run, ids, s = corrected
    out = tmp_path / f"labels.{fmt}"
    export_run(store, run, fmt, out)
    first = out.read_bytes()
    s.move([ids[3]], 1)
    with pytest.raises(ParameterError, match=r"already exists \(an earlier ClusterLens export\); pass overwrite"):
        export_run(store, run, fmt, out)
    assert out.read_bytes() == first
    export_run(store, run, fmt, out, overwrite=True)                  # our own, unchanged: replaced
    read = read_labels_csv if fmt == "csv" else read_labels_json
    assert (read(out)[1] == s.current_labels()).all() and out.read_bytes() != first
    export_run(store, run, fmt, out, overwrite=True)                  # and again: the record follows
    edited = out.read_bytes() + b"\n"                                 # a person edits it by hand
    out.write_bytes(edited)
    with pytest.raises(ParameterError) as e:
        export_run(store, run, fmt, out, overwrite=True)
    assert str(e.value) == (f"{out} was changed since ClusterLens exported it (edited by hand?), so it will not "
                            "be replaced; choose another file name")
    assert out.read_bytes() == edited and _left_behind(tmp_path) == []


def test_a_new_export_is_readable_like_any_file(corrected, tmp_path):
    store, run, ids, s = corrected
    umask = os.umask(0o022)
    os.umask(umask)
    export_run(store, run, "csv", tmp_path / "l.csv")
    assert (tmp_path / "l.csv").stat().st_mode & 0o777 == 0o666 & ~umask      # not mkstemp's 0600


def test_the_download_is_the_saved_file(corrected, tmp_path):
    store, run, ids, s = corrected
    for fmt in ("csv", "json"):
        export_run(store, run, fmt, tmp_path / f"l.{fmt}")
        assert render_export(store, run, fmt) == (tmp_path / f"l.{fmt}").read_bytes()


def test_an_imagefolder_export_with_added_or_changed_files_is_not_replaced(corrected, tmp_path):
    store, run, ids, s = corrected
    out = tmp_path / "folders"
    export_run(store, run, "imagefolder", out)
    added = out / "cluster_0" / "my-own.jpg"
    added.write_bytes(b"mine")
    with pytest.raises(ParameterError, match=r"did not write or that changed since .*cluster_0/my-own.jpg"):
        export_run(store, run, "imagefolder", out, overwrite=True)
    assert added.read_bytes() == b"mine"
    added.unlink()
    png = next(out.rglob("*.png"))
    png.write_bytes(png.read_bytes() + b"edited")
    with pytest.raises(ParameterError, match="changed since"):
        export_run(store, run, "imagefolder", out, overwrite=True)
    assert png.read_bytes().endswith(b"edited")
    png.unlink()                                           # one of ours removed: nothing to lose
    export_run(store, run, "imagefolder", out, overwrite=True)
    assert len(list(out.rglob("*.png"))) == 9 and _left_behind(tmp_path) == []


def test_an_imagefolder_export_holding_the_runs_own_images_is_not_replaced(corrected, tmp_path):
    store, run, ids, s = corrected
    out = tmp_path / "folders"
    export_run(store, run, "imagefolder", out)
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    ds = FileDataset(name="from-export", ids=files, fingerprint="fp-export", root=str(out))   # opened from it
    ds_id = store.upsert_dataset(ds, "src")
    run2 = store.start_run(ds_id, None, "kmeans", 2, {})
    store.finish_run(run2, np.arange(len(files)) % 2, np.ones(len(files)), {}, [], {})
    before = _snapshot(out)
    with pytest.raises(ParameterError, match="this run's images are inside .*; replacing it would delete them"):
        export_run(store, run2, "imagefolder", out, overwrite=True)
    assert _snapshot(out) == before


def _odd_run(ws: Path, ids: list[str], name: str) -> int:
    """A run over sample ids of our choosing whose paths are the ids themselves (relative)."""
    class IdPaths(FileDataset):
        def path(self, i):
            return self.ids[i]

    with Store(ws) as store:
        ds_id = store.upsert_dataset(IdPaths(name="odd", ids=ids, fingerprint="fp-odd", root=None), "src")
        run = store.start_run(ds_id, None, "kmeans", 2, {})
        store.finish_run(run, np.arange(len(ids)) % 2, np.ones(len(ids)), {}, [], {})
        ReviewSession(store, run).rename(0, name)
        ReviewSession(store, run).mark_outliers([ids[-1]])
    return run


ODD_IDS = ["=1+1", "-2", "+x", "@SUM(A1)", "\tTab", "\rCR", "'quoted", "''two", "'=quoted formula", "plain",
           "a=b", "-"]


def test_csv_cells_cannot_start_a_formula_and_json_stays_exact(tmp_path):
    name = '=HYPERLINK("http://evil.example","click")'
    run = _odd_run(tmp_path / "ws", ODD_IDS, name)
    with Store(tmp_path / "ws") as store:
        export_run(store, run, "csv", tmp_path / "l.csv")
        export_run(store, run, "json", tmp_path / "l.json")
    with open(tmp_path / "l.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [r["sample_id"] for r in rows] == ["'=1+1", "'-2", "'+x", "'@SUM(A1)", "'\tTab", "'\rCR", "''quoted",
                                             "'''two", "''=quoted formula", "plain", "a=b", "'-"]
    assert [r["path"] for r in rows] == [r["sample_id"] for r in rows]
    assert {r["cluster_name"] for r in rows if r["cluster"] == "0"} == {"'" + name}
    assert rows[-1]["cluster"] == "-1" and rows[-1]["cluster_name"] == "outliers"     # numbers untouched
    for r in rows:
        assert not r["sample_id"].startswith(("=", "+", "-", "@", "\t", "\r"))
        assert not r["cluster_name"].startswith(("=", "+", "-", "@", "\t", "\r"))
    doc = json.loads((tmp_path / "l.json").read_text(encoding="utf-8"))
    assert [r["sample_id"] for r in doc["samples"]] == ODD_IDS
    assert [r["path"] for r in doc["samples"]] == ODD_IDS
    assert doc["samples"][0]["cluster_name"] == name


def test_csv_sample_ids_round_trip_exactly(tmp_path):
    run = _odd_run(tmp_path / "ws", ODD_IDS, "x")
    with Store(tmp_path / "ws") as store:
        export_run(store, run, "csv", tmp_path / "l.csv")
        want = ReviewSession(store, run).current_labels()
    got_ids, got = read_labels_csv(tmp_path / "l.csv")
    assert got_ids == ODD_IDS and (got == want).all()
    # a file from before the rule (an id that merely starts with a quote) reads as written
    (tmp_path / "old.csv").write_text("sample_id,cluster\n'abc,1\nplain,0\n", encoding="utf-8")
    assert read_labels_csv(tmp_path / "old.csv")[0] == ["'abc", "plain"]


_REAL_WRITE = os.write


def _fail_writes_to(monkeypatch, name: str, err: int = errno.ENOSPC) -> None:
    """os.write raises ``err`` for files whose name contains ``name`` (as a full disk would)."""
    def write(fd, data):
        if name in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(err, os.strerror(err))
        return _REAL_WRITE(fd, data)

    monkeypatch.setattr(os, "write", write)


DISK_FULL = "the disk is full; nothing was lost (the old file, if any, is unchanged); free space and retry"


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to tell the files apart")
@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_a_full_disk_leaves_the_old_export_whole(corrected, tmp_path, monkeypatch, fmt):
    store, run, ids, s = corrected
    out = tmp_path / f"labels.{fmt}"
    export_run(store, run, fmt, out)
    old = out.read_bytes()
    s.move([ids[3]], 1)
    _fail_writes_to(monkeypatch, out.name)
    with pytest.raises(WorkspaceError) as e:
        export_run(store, run, fmt, out, overwrite=True)
    assert str(e.value) == f"could not write the export to {out}: {DISK_FULL}"
    assert out.read_bytes() == old and _left_behind(tmp_path) == [] and _left_behind(tmp_path / "ws") == []
    _fail_writes_to(monkeypatch, "exports.json")              # the workspace's disk is the full one
    with pytest.raises(WorkspaceError, match=r"could not record the export in .*exports.json: the disk is full"):
        export_run(store, run, fmt, out, overwrite=True)
    assert out.read_bytes() == old and _left_behind(tmp_path / "ws") == []
    _fail_writes_to(monkeypatch, out.name, errno.EIO)
    with pytest.raises(WorkspaceError) as e:
        export_run(store, run, fmt, out, overwrite=True)
    assert str(e.value) == (f"could not write the export to {out}: {os.strerror(errno.EIO)}; nothing was lost "
                            "(the old file, if any, is unchanged); check that the folder can be written and retry")
    assert out.read_bytes() == old
    monkeypatch.undo()                                     # space freed: the old export is still ours to replace
    export_run(store, run, fmt, out, overwrite=True)
    assert out.read_bytes() != old


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to tell the files apart")
def test_a_full_disk_leaves_the_old_imagefolder_export_whole(corrected, tmp_path, monkeypatch):
    import core.export

    store, run, ids, s = corrected
    out = tmp_path / "folders"
    export_run(store, run, "imagefolder", out)
    before = _snapshot(out)
    s.move([ids[3]], 1)
    copies = []
    real_copy = shutil.copy2

    def copy2(src, dst):
        copies.append(dst)
        if len(copies) == 3:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_copy(src, dst)

    monkeypatch.setattr(core.export.shutil, "copy2", copy2)
    with pytest.raises(WorkspaceError) as e:                # mid-copy
        export_run(store, run, "imagefolder", out, overwrite=True)
    assert str(e.value) == f"could not write the export to {out}: {DISK_FULL.replace('old file', 'old folder')}"
    assert _snapshot(out) == before and _left_behind(tmp_path) == []
    monkeypatch.undo()
    _fail_writes_to(monkeypatch, ".clusterlens-export.json")  # every image copied, then the marker fails
    with pytest.raises(WorkspaceError, match="the disk is full; nothing was lost"):
        export_run(store, run, "imagefolder", out, overwrite=True)
    assert _snapshot(out) == before and _left_behind(tmp_path) == []
    monkeypatch.undo()
    export_run(store, run, "imagefolder", out, overwrite=True)
    assert _snapshot(out) != before and _left_behind(tmp_path) == []


def test_an_imagefolder_export_never_copies_through_a_link_out_of_the_dataset(corrected, tmp_path):
    store, run, ids, s = corrected
    images = tmp_path / "ws-images"
    secret = tmp_path / "secret.txt"
    secret.write_text("not for export")
    (images / ids[3]).unlink()
    (images / ids[3]).symlink_to(secret)            # swapped for a link after the run was made
    with pytest.raises(DataError) as e:
        export_run(store, run, "imagefolder", tmp_path / "out")
    assert str(e.value) == (f"image {images / ids[3]} (sample {ids[3]!r}) cannot be exported: a link pointing "
                            "outside the folder (not read); copy what it points to into the folder to use it; "
                            "put the file back or cluster the folder again")
    assert not (tmp_path / "out").exists() and list(tmp_path.glob(".out*")) == []

    (images / ids[3]).unlink()
    (images / ids[3]).symlink_to(images / ids[5])   # a link that stays inside is the file it names
    export_run(store, run, "imagefolder", tmp_path / "out")
    copied = sorted((tmp_path / "out").rglob(ids[3].replace("/", "__")))
    assert len(copied) == 1 and copied[0].read_bytes() == (images / ids[5]).read_bytes()


def test_corrected_counts_what_a_person_did_not_what_a_merge_moved(corrected, tmp_path):
    """As the Review page counts: two moves and an outlier are corrected; the members a merge
    moved change cluster in the export but are not 'corrected' (nobody looked at them)."""
    store, run, ids, s = corrected
    before = s.current_labels()
    s.merge(2, 1)
    moved_by_merge = np.flatnonzero((before == 1) & (s.current_labels() == 2))
    assert len(moved_by_merge) >= 1
    summary = export_run(store, run, "json", tmp_path / "m.json")
    assert summary["n_corrected"] == 3
    rows = {r["sample_id"]: r for r in json.loads((tmp_path / "m.json").read_text())["samples"]}
    for i in moved_by_merge:
        assert rows[ids[i]]["cluster"] == 2 and rows[ids[i]]["corrected"] is False
    assert [rows[ids[i]]["corrected"] for i in (0, 1, 4)] == [True, True, True]
