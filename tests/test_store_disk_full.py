"""A full disk: one clear WorkspaceError, nothing half-written, and the store works once space is freed.

Two variants. The injected one always runs: the Store's connection is wrapped so that one statement
raises the sqlite3.OperationalError a full disk gives (SQLITE_FULL, 13). The real one runs only as
root where a 2 MiB tmpfs can be mounted; it fills the disk for real.
"""
import errno
import os
import sqlite3
import subprocess
import uuid

import numpy as np
import pytest

import core.cli
import core.store as st
from core.errors import WorkspaceError
from core.review import ReviewSession
from core.store import DB_NAME, Store
from tests.review_helpers import make_run
from tests.test_store import tiny_dataset


def full_message(ws, saved="the last change was not saved"):
    return f"the disk holding the workspace {ws} is full; nothing was lost ({saved}); free some space and retry"


def sqlite_error(code, name, text):
    e = sqlite3.OperationalError(text)
    e.sqlite_errorcode, e.sqlite_errorname = code, name
    return e


def disk_full():
    return sqlite_error(13, "SQLITE_FULL", "database or disk is full")


class FullDisk:
    """A connection whose statements starting with ``when`` raise what a full disk raises, while armed."""

    def __init__(self, db, when, error=disk_full):
        self._db, self.when, self.error, self.armed, self.hits = db, when.upper(), error, True, 0

    def _check(self, sql):
        if self.armed and sql.lstrip().upper().startswith(self.when):
            self.hits += 1
            raise self.error()

    def execute(self, sql, *args):
        self._check(sql)
        return self._db.execute(sql, *args)

    def executemany(self, sql, *args):
        self._check(sql)
        return self._db.executemany(sql, *args)

    def executescript(self, sql):
        self._check(sql)
        return self._db.executescript(sql)

    def __getattr__(self, name):
        return getattr(self._db, name)


def counts(ws):
    """Rows per table, read by a plain sqlite3 connection."""
    db = sqlite3.connect(ws / DB_NAME)
    try:
        return {t: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]   # noqa: S608 - fixed names
                for t in ("datasets", "samples", "feature_sets", "runs", "assignments", "edits",
                          "corrections", "cluster_names", "reviewed")}
    finally:
        db.close()


@pytest.mark.parametrize("when", ["COMMIT", "INSERT INTO CORRECTIONS"])
def test_full_disk_during_an_edit_rolls_back_and_the_store_recovers(tmp_path, when):
    ws = tmp_path / "ws"
    run, ids, base = make_run(ws, n=12, k=3)
    with Store(ws) as store:
        s = ReviewSession(store, run)
        s.move([ids[0]], 1)
        s.move([ids[1]], 2)
        before = counts(ws)
        store._db = proxy = FullDisk(store._db, when)
        with pytest.raises(WorkspaceError) as e:
            s.move([ids[2], ids[4]], 0)
        assert str(e.value) == full_message(ws)
        assert proxy.hits == 1 and not store._db.in_transaction        # rolled back, not left open
        assert counts(ws) == before                                    # the edit row went with it
        proxy.armed = False                                            # space freed
        v = s.move([ids[2], ids[4]], 0)
        assert v == s.store.run_version(run)
    with Store(ws) as store:
        assert [e["op"] for e in store.edits(run)] == ["move"] * 3
        want = base.copy()
        want[[0, 1, 2, 4]] = [1, 2, 0, 0]
        assert ReviewSession(store, run).current_labels().tolist() == want.tolist()


WRITES = {
    "upsert_dataset": lambda s, ids: s.upsert_dataset(tiny_dataset(), "other-source"),
    "record_features": lambda s, ids: s.record_features(1, "k2", "pixels", 8, 64, s.root / "f"),
    "start_run": lambda s, ids: s.start_run(1, None, "kmeans", 3, {}),
    "finish_run": lambda s, ids: s.finish_run(s.start_run(1, None, "kmeans", 3, {}), np.zeros(12, int),
                                               np.ones(12), {}, [], {}),
    "fail_run": lambda s, ids: s.fail_run(1, "boom"),
    "append_edit": lambda s, ids: s.append_edit(1, "move", expected_version=0, corrections=[(0, ids[0], 0, 1)]),
    "rename": lambda s, ids: ReviewSession(s, 1).rename(0, "zeros"),
    "mark_reviewed": lambda s, ids: s.mark_reviewed(1, "cluster:0"),
}


@pytest.mark.parametrize("write", sorted(WRITES))
def test_every_store_write_turns_a_full_disk_into_one_message(tmp_path, write):
    ws = tmp_path / "ws"
    run, ids, _ = make_run(ws, n=12, k=3)
    assert run == 1
    before = counts(ws)
    with Store(ws) as store:
        real = store._db
        store._db = FullDisk(real, "COMMIT")
        with pytest.raises(WorkspaceError) as e:
            WRITES[write](store, ids)
        assert str(e.value) == full_message(ws)
        store._db = real
    assert counts(ws) == before                                        # nothing half-written


def test_opening_on_a_full_disk_never_calls_the_workspace_not_a_database(tmp_path, monkeypatch):
    """A full disk shows as SQLITE_IOERR_SHMSIZE when SQLite grows the WAL index at open."""
    ws = tmp_path / "ws"
    make_run(ws, n=6, k=3)
    connect = sqlite3.connect
    ioerr = lambda: sqlite_error(4874, "SQLITE_IOERR_SHMSIZE", "disk I/O error")   # noqa: E731
    monkeypatch.setattr(st.sqlite3, "connect", lambda *a, **k: FullDisk(connect(*a, **k), "PRAGMA USER_VERSION",
                                                                          ioerr))
    monkeypatch.setattr(st, "_free_bytes", lambda root: 4096, raising=False)   # the disk is full
    with pytest.raises(WorkspaceError) as e:
        Store(ws)
    assert str(e.value) == full_message(ws, "the workspace was not changed")
    monkeypatch.setattr(st, "_free_bytes", lambda root: 50 << 30)      # a failing disk, not a full one
    with pytest.raises(WorkspaceError) as e:
        Store(ws)
    assert "not a ClusterLens database" not in str(e.value)
    assert str(e.value) == (f"cannot read the workspace database {ws / DB_NAME} (disk I/O error); it was not "
                            "changed — check the disk it is on and retry, or point --workspace at another folder")
    monkeypatch.setattr(st.sqlite3, "connect", connect)
    with Store(ws) as store:                                           # untouched and healthy
        assert len(store.runs()) == 1


def test_creating_a_workspace_on_a_full_disk(tmp_path, monkeypatch):
    connect = sqlite3.connect
    monkeypatch.setattr(st.sqlite3, "connect", lambda *a, **k: FullDisk(connect(*a, **k), "BEGIN IMMEDIATE"))
    with pytest.raises(WorkspaceError) as e:
        Store(tmp_path / "a")
    assert str(e.value) == full_message(tmp_path / "a", "the workspace was not changed")

    def no_space(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(st.tempfile, "mkstemp", no_space)              # not even an empty file fits
    with pytest.raises(WorkspaceError) as e:
        Store(tmp_path / "b")
    assert str(e.value) == full_message(tmp_path / "b", "the workspace was not changed")


def test_cli_turns_a_full_disk_into_one_line_and_exit_code_2(tmp_path, monkeypatch, capsys):
    def full(args):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setitem(core.cli.COMMANDS, "runs", full)
    assert core.cli.main(["runs", "--workspace", str(tmp_path / "ws")]) == 2   # as every refusal
    err = capsys.readouterr().err
    assert err == f"error: {full_message(tmp_path / 'ws')}\n"

    def other(args):
        raise OSError(errno.EIO, "Input/output error")
    monkeypatch.setitem(core.cli.COMMANDS, "runs", other)
    with pytest.raises(OSError, match="Input/output"):                 # only a full disk is translated
        core.cli.main(["runs", "--workspace", str(tmp_path / "ws")])


# -- for real: a 2 MiB tmpfs -----------------------------------------------------------------

@pytest.fixture
def tiny_disk(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root; the injected variants above cover the same paths")
    mnt = tmp_path / "disk"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.decode().strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill(disk):
    """Write a file until the disk refuses one more byte; returns its path."""
    path = disk / f"filler-{uuid.uuid4().hex}"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    try:
        for size in (1 << 16, 4096, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError as e:
                assert e.errno == errno.ENOSPC
    finally:
        os.close(fd)
    return path


def test_a_really_full_disk(tiny_disk):
    ws = tiny_disk / "ws"
    run, ids, base = make_run(ws, n=20, k=3)
    with Store(ws) as store:
        ReviewSession(store, run).move([ids[0]], 1)
    filler = fill(tiny_disk)
    with pytest.raises(WorkspaceError) as e:                           # opening (the WAL index cannot grow)
        Store(ws)
    assert str(e.value) == full_message(ws, "the workspace was not changed")
    filler.unlink()

    with Store(ws) as store:                                           # full while the workspace is open
        s = ReviewSession(store, run)
        s.move([ids[1]], 2)
        filler = fill(tiny_disk)
        with pytest.raises(WorkspaceError) as e:
            for i in range(2, 20):                                     # a few pages may still fit
                s.move([ids[i]], int(base[i] + 1) % 3)
        assert str(e.value) == full_message(ws)
        assert not store._db.in_transaction
        saved = len(store.edits(run))
        filler.unlink()                                                # space freed: the same store goes on
        s.move([ids[19]], 0)
        assert len(store.edits(run)) == saved + 1
    with Store(ws) as store:
        edits = store.edits(run)
        assert len(edits) == saved + 1 and saved >= 2
        lab = ReviewSession(store, run).current_labels()
        assert lab[0] == 1 and lab[1] == 2 and lab[19] == 0
        moved = saved - 2                                              # the moves that fit before it filled
        assert all(lab[i] == (base[i] + 1) % 3 for i in range(2, 2 + moved))
        assert all(lab[i] == base[i] for i in range(2 + moved, 19))
