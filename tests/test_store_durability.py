"""Nothing acknowledged is lost: kill -9 mid-stream, two writer processes, schema migration."""
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from core.errors import WorkspaceError
from core.review import ReviewSession
from core.store import _SCHEMA, DB_NAME, SCHEMA_VERSION, Store
from tests.review_helpers import make_run

ROOT = Path(__file__).resolve().parents[1]

WRITER = """
import sys
from core.errors import StaleEditError
from core.review import ReviewSession
from core.store import Store
ws, run, n_edits, tag = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
with Store(ws) as store:
    s = ReviewSession(store, run)
    n = len(s.ids)
    done = 0
    stale = 0
    while done < n_edits:
        i = (done * 7 + (0 if tag == "a" else 3)) % n
        to = int(s.current_labels()[i] + 1) % 3
        try:
            v = s.move([i], to)
        except StaleEditError:
            stale += 1
            continue           # reload (current_labels refreshes) and redo the edit
        print(f"ack {v} {i} {to}", flush=True)
        done += 1
    print(f"stale {stale}", flush=True)
"""


def writer(ws, run, n, tag="a"):
    return subprocess.Popen([sys.executable, "-c", WRITER, str(ws), str(run), str(n), tag], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_every_acknowledged_edit_survives_sigkill(tmp_path):
    ws = tmp_path / "ws"
    run, ids, base = make_run(ws, n=50, k=3)
    p = writer(ws, run, 1000)
    acked = []
    for line in p.stdout:
        acked.append(tuple(int(x) for x in line.split()[1:]))
        if len(acked) == 300:
            os.kill(p.pid, signal.SIGKILL)
            break
    p.wait(timeout=60)
    assert p.returncode == -signal.SIGKILL
    acked += [tuple(int(x) for x in line.split()[1:]) for line in p.stdout.read().splitlines()
              if line.startswith("ack")]
    with Store(ws) as store:
        rows = {r["edit_id"]: (r["idx"], r["to_cluster"])
                for r in store.query("SELECT edit_id, idx, to_cluster FROM corrections WHERE run_id=?", (run,))}
        for v, i, to in acked:
            assert rows[v] == (i, to), f"acknowledged edit {v} lost"
        assert len(rows) in (len(acked), len(acked) + 1)   # at most one written but not yet acknowledged
        s = ReviewSession(store, run)
        last = {}
        for v in sorted(rows):                 # replay what is stored, in version order
            i, to = rows[v]
            last[i] = to
        lab = s.current_labels()
        assert all(lab[i] == to for i, to in last.items()) and len(rows) >= 300


def test_two_writer_processes_lose_no_update(tmp_path):
    ws = tmp_path / "ws"
    run, ids, base = make_run(ws, n=20, k=3)
    a, b = writer(ws, run, 60, "a"), writer(ws, run, 60, "b")
    outs = [p.communicate(timeout=300) for p in (a, b)]
    assert a.returncode == 0 and b.returncode == 0, outs
    acks = [tuple(int(x) for x in line.split()[1:]) for out, _ in outs
            for line in out.splitlines() if line.startswith("ack")]
    assert len(acks) == 120
    with Store(ws) as store:
        edits = store.edits(run)
        assert len(edits) == 120 and sorted(e["id"] for e in edits) == sorted(v for v, _, _ in acks)
        # replaying the acknowledged edits in version order gives the stored state: none lost
        want = base.copy()
        for _, i, to in sorted(acks):
            want[i] = to
        assert (ReviewSession(store, run).current_labels() == want).all()
        # each edit was based on the state it saw: from_cluster = the label just before it
        prev = base.copy()
        for r in store.query("SELECT idx, from_cluster, to_cluster FROM corrections WHERE run_id=? ORDER BY id",
                             (run,)):
            assert prev[r["idx"]] == r["from_cluster"]
            prev[r["idx"]] = r["to_cluster"]


def test_newer_database_is_refused_untouched(tmp_path):
    db = sqlite3.connect(tmp_path / DB_NAME)
    db.execute("CREATE TABLE future (x)")
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    before = (tmp_path / DB_NAME).read_bytes()
    with pytest.raises(WorkspaceError, match="newer ClusterLens"):
        Store(tmp_path)
    assert (tmp_path / DB_NAME).read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [DB_NAME]


def test_v1_workspace_upgrades_in_place_and_keeps_its_runs(tmp_path):
    assert SCHEMA_VERSION == 2
    db = sqlite3.connect(tmp_path / DB_NAME)
    db.executescript(_SCHEMA)                      # the version-1 schema, as ClusterLens 1 wrote it
    db.execute("INSERT INTO datasets VALUES (1, 'src', 't', 'fp', 2, 0, NULL, 0)")
    db.executemany("INSERT INTO samples VALUES (1, ?, ?, NULL, NULL)", [(0, "a"), (1, "b")])
    db.execute("INSERT INTO runs (id, dataset_id, algo, k, config, status, created_at) "
               "VALUES (7, 1, 'kmeans', 2, '{}', 'done', 0)")
    db.executemany("INSERT INTO assignments VALUES (7, ?, ?, 0.5)", [(0, 0), (1, 1)])
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()
    with Store(tmp_path) as store:
        assert store.query("PRAGMA user_version")[0]["user_version"] == 2
        assert store.assignments(7)[0].tolist() == [0, 1]
        s = ReviewSession(store, 7)
        s.move(["a"], 1)
        assert s.current_labels().tolist() == [1, 1]
    with Store(tmp_path) as store:                  # re-opening a v2 workspace changes nothing
        assert ReviewSession(store, 7).current_labels().tolist() == [1, 1]


def test_migration_is_one_transaction(tmp_path, monkeypatch):
    """A migration that fails half-way leaves the v1 database as it was."""
    import core.store as st

    Store(tmp_path).close()
    db = sqlite3.connect(tmp_path / DB_NAME)
    db.execute("DROP TABLE edits")
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()
    monkeypatch.setattr(st, "_SCHEMA_V2", st._SCHEMA_V2 + "\nCREATE TABLE broken (;")
    with pytest.raises(WorkspaceError):
        Store(tmp_path)
    db = sqlite3.connect(tmp_path / DB_NAME)
    assert db.execute("PRAGMA user_version").fetchone()[0] == 1
    assert not db.execute("SELECT name FROM sqlite_master WHERE name='edits'").fetchall()
