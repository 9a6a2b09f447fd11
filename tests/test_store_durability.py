"""Nothing acknowledged is lost: kill -9 mid-stream, two writer processes, schema migration."""
import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from core.errors import StaleEditError, WorkspaceError
from core.review import ReviewSession
from core.store import _SCHEMA, DB_NAME, SCHEMA_VERSION, Store
from tests.review_helpers import FileDataset, make_run

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


def test_an_edit_holds_the_write_lock_from_its_version_check_to_its_commit(tmp_path):
    """Writer A checks the version, then waits while writer B tries to edit the same run. With
    BEGIN IMMEDIATE, B cannot even start until A commits, then sees A's edit and is refused.
    (With a deferred BEGIN, B would read the same version, commit, and A's edit fail.)"""
    ws = tmp_path / "ws"
    run, ids, base = make_run(ws, n=6, k=3)
    a_checked, b_done = threading.Event(), threading.Event()
    out = {}
    with Store(ws) as a, Store(ws) as b:
        v0 = a.run_version(run)
        read = a.run_version

        def checked_then_wait(run_id):
            v = read(run_id)
            a_checked.set()
            b_done.wait(timeout=2.0)       # B cannot finish while A holds the lock: go on after 2 s
            return v
        a.run_version = checked_then_wait

        def writer_a():
            try:
                out["a"] = a.append_edit(run, "move", expected_version=v0, corrections=[(0, ids[0], 0, 1)])
            except Exception as e:          # noqa: BLE001 - reported by the asserts below
                out["a"] = e
        t = threading.Thread(target=writer_a)
        t.start()
        assert a_checked.wait(timeout=30)
        try:
            out["b"] = b.append_edit(run, "move", expected_version=v0, corrections=[(1, ids[1], 1, 2)])
        except Exception as e:              # noqa: BLE001
            out["b"] = e
        b_done.set()
        t.join(timeout=60)
    assert out["a"] == v0 + 1, out
    assert isinstance(out["b"], StaleEditError) and f"(version {v0}, now {v0 + 1})" in str(out["b"]), out
    with Store(ws) as store:
        assert [(r["idx"], r["from_cluster"], r["to_cluster"])
                for r in store.query("SELECT * FROM corrections WHERE run_id=?", (run,))] == [(0, 0, 1)]
        assert ReviewSession(store, run).current_labels().tolist() == [1, 1, 2, 0, 1, 2]


def _record_at_once(ws, what, start, out):
    """One of two processes recording the same new dataset (or feature set) at the same moment."""
    try:
        with Store(ws) as store:
            ds = FileDataset(name="race", ids=[f"img{i}.png" for i in range(50)], fingerprint="race-fp")
            start.wait(timeout=60)
            if what == "dataset":
                out.put(store.upsert_dataset(ds, "src"))
            else:
                out.put(store.record_features(1, "race-key", "pixels", 8, 64, ws / "features" / "race-key"))
    except BaseException as e:  # noqa: BLE001 - the parent asserts on what came back
        out.put(f"{type(e).__name__}: {e}")


@pytest.mark.parametrize("what", ["dataset", "features"])
def test_two_processes_recording_the_same_new_dataset_get_one_row(tmp_path, what):
    """Both processes look, find nothing, and want to insert. The parent holds the write lock while
    they look, so both have looked before either can insert: a check outside the write
    transaction fails this every time (IntegrityError); inside it, both get the same id."""
    ctx = multiprocessing.get_context("fork")
    for trial in range(10):
        ws = tmp_path / f"ws{trial}"
        with Store(ws) as store:
            if what == "features":
                store.upsert_dataset(FileDataset(name="race", ids=["a.png"], fingerprint="other"), "src")
        start, out = ctx.Barrier(3), ctx.Queue()
        procs = [ctx.Process(target=_record_at_once, args=(ws, what, start, out)) for _ in range(2)]
        for p in procs:
            p.start()
        lock = sqlite3.connect(ws / DB_NAME, isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")
        start.wait(timeout=60)
        time.sleep(0.3)                     # both look (a read: not blocked) and queue for the lock
        lock.execute("ROLLBACK")
        lock.close()
        got = [out.get(timeout=60) for _ in procs]
        for p in procs:
            p.join(timeout=60)
        assert got[0] == got[1] and isinstance(got[0], int), f"trial {trial}: {got}"
        with Store(ws) as store:
            if what == "dataset":
                assert store.query("SELECT COUNT(*) n FROM datasets")[0]["n"] == 1
                assert len(store.dataset_ids(got[0])) == 50
            else:
                assert store.query("SELECT COUNT(*) n FROM feature_sets")[0]["n"] == 1


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
