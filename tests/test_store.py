import json
import sqlite3

import numpy as np
import pytest

from core.data.base import ImageDataset, SkippedFile
from core.errors import WorkspaceError
from core.store import DB_NAME, SCHEMA_VERSION, Store


def tiny_dataset(n=5):
    return ImageDataset(name="tiny", ids=[f"img{i}.png" for i in range(n)],
                        labels=np.array([0, 1, 0, 1, -1][:n]), class_names=["a", "b"],
                        skipped=[SkippedFile("bad.png", "zero-byte file")], fingerprint="fp1")


def test_dataset_recorded_once_with_ids_labels_and_skips(tmp_path):
    with Store(tmp_path) as s:
        a = s.upsert_dataset(tiny_dataset(), "src")
        b = s.upsert_dataset(tiny_dataset(), "src")
        assert a == b
        assert s.dataset_ids(a) == [f"img{i}.png" for i in range(5)]
        assert s.skipped(a) == [{"sample_id": "bad.png", "reason": "zero-byte file"}]
        labels = [r["label"] for r in s.query("SELECT label FROM samples ORDER BY idx")]
        assert labels == [0, 1, 0, 1, None]


def test_run_round_trip_and_artifact_paths_are_relative(tmp_path):
    with Store(tmp_path) as s:
        ds = s.upsert_dataset(tiny_dataset(), "src")
        fs = s.record_features(ds, "key1", "pixels", 8, 64, tmp_path / "features" / "key1")
        run = s.start_run(ds, fs, "kmeans", 2, {"k": 2})
        assert s.run(run)["status"] == "running"
        s.finish_run(run, np.array([0, 1, 0, 1, 1]), np.array([0.9, 0.8, 0.7, 0.6, 0.5]),
                     {"acc": np.float64(0.8)}, [{"epoch": 1}], {"labels_csv": tmp_path / "runs/1/labels.csv"})
        r = s.run(run)
        assert r["status"] == "done" and r["scores"] == {"acc": 0.8}
        assert r["artifacts"] == {"labels_csv": "runs/1/labels.csv"}
        labels, conf = s.assignments(run)
        assert labels.tolist() == [0, 1, 0, 1, 1]
        assert np.allclose(conf, [0.9, 0.8, 0.7, 0.6, 0.5])
        assert [x["id"] for x in s.runs()] == [run]


def test_failed_run_keeps_no_half_written_assignments(tmp_path):
    with Store(tmp_path) as s:
        ds = s.upsert_dataset(tiny_dataset(), "src")
        run = s.start_run(ds, None, "kmeans", 2, {})
        with pytest.raises(ValueError):   # lengths differ: the whole transaction rolls back
            s.finish_run(run, np.array([0, 1, 0]), np.array([0.1, 0.2]), {}, [], {})
        assert s.assignments(run)[0].size == 0
        s.fail_run(run, "boom")
        assert s.run(run)["status"] == "failed" and s.run(run)["message"] == "boom"


def test_database_is_wal_and_versioned(tmp_path):
    Store(tmp_path).close()
    db = sqlite3.connect(tmp_path / DB_NAME)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_not_a_database_gives_clear_message(tmp_path):
    (tmp_path / DB_NAME).write_text("hello, I am a text file" * 100)
    with pytest.raises(WorkspaceError, match="not a ClusterLens database"):
        Store(tmp_path)


def test_json_scores_accept_numpy(tmp_path):
    with Store(tmp_path) as s:
        ds = s.upsert_dataset(tiny_dataset(), "src")
        run = s.start_run(ds, None, "kmeans", 2, {})
        s.finish_run(run, np.zeros(5, int), np.ones(5), {"sizes": np.array([5])}, [], {})
        assert json.loads(json.dumps(s.run(run)["scores"])) == {"sizes": [5]}


def test_workspace_that_cannot_be_created(tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(WorkspaceError, match="cannot create the workspace folder"):
        Store(tmp_path / "afile" / "ws")


def test_store_connection_writes_wal_with_full_sync(tmp_path):
    """Per connection, so asked of the Store's own: NORMAL (1) could lose the last commits on power loss."""
    with Store(tmp_path) as s:
        assert s.query("PRAGMA synchronous")[0]["synchronous"] == 2          # FULL
        assert s.query("PRAGMA journal_mode")[0]["journal_mode"] == "wal"
        assert s.query("PRAGMA foreign_keys")[0]["foreign_keys"] == 1
