"""The workspace: one SQLite database plus array files referenced from it.

Plain enough to inspect with ``sqlite3 workspace/clusterlens.db``. WAL mode with synchronous
writes: once a write method returns, the row is on disk (DESIGN.md: nothing acknowledged is lost).
Arrays (features, 2-D maps) live under the workspace folder; the database stores their paths
relative to it, so a workspace folder can be moved as a whole.
"""
from __future__ import annotations

import errno
import json
import os
import sqlite3
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import WorkspaceError

SCHEMA_VERSION = 2
DB_NAME = "clusterlens.db"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS datasets (
    id           INTEGER PRIMARY KEY,
    source       TEXT NOT NULL,
    name         TEXT NOT NULL,
    fingerprint  TEXT NOT NULL,
    n_samples    INTEGER NOT NULL,
    has_labels   INTEGER NOT NULL,
    class_names  TEXT,                       -- JSON list or NULL
    created_at   REAL NOT NULL,
    UNIQUE (source, fingerprint)
);
CREATE TABLE IF NOT EXISTS samples (
    dataset_id   INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
    idx          INTEGER NOT NULL,            -- row in every array of this dataset
    sample_id    TEXT NOT NULL,
    path         TEXT,
    label        INTEGER,                     -- ground truth (scoring only); NULL if unknown
    PRIMARY KEY (dataset_id, idx),
    UNIQUE (dataset_id, sample_id)
);
CREATE TABLE IF NOT EXISTS skipped (
    dataset_id   INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
    sample_id    TEXT NOT NULL,
    reason       TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS feature_sets (
    id           INTEGER PRIMARY KEY,
    dataset_id   INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
    cache_key    TEXT NOT NULL UNIQUE,
    backbone     TEXT NOT NULL,
    image_size   INTEGER,
    dim          INTEGER NOT NULL,
    path         TEXT NOT NULL,               -- relative to the workspace
    created_at   REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    id             INTEGER PRIMARY KEY,
    dataset_id     INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
    feature_set_id INTEGER REFERENCES feature_sets(id),
    algo           TEXT NOT NULL,
    k              INTEGER NOT NULL,
    config         TEXT NOT NULL,             -- JSON of the RunConfig
    status         TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed', 'cancelled')),
    scores         TEXT,                      -- JSON
    history        TEXT,                      -- JSON list of per-epoch records
    message        TEXT,                      -- why it failed / was cancelled
    created_at     REAL NOT NULL,
    finished_at    REAL
);
CREATE TABLE IF NOT EXISTS assignments (
    run_id       INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    idx          INTEGER NOT NULL,
    cluster      INTEGER NOT NULL,
    confidence   REAL NOT NULL,
    PRIMARY KEY (run_id, idx)
);
CREATE TABLE IF NOT EXISTS artifacts (
    run_id       INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    kind         TEXT NOT NULL,               -- 'labels_csv' | 'scores_json' | 'map' | ...
    path         TEXT NOT NULL,               -- relative to the workspace
    PRIMARY KEY (run_id, kind)
);
"""

# Schema 2: review and corrections. Append-only: nothing here is ever updated or deleted (except by
# deleting the run). An *edit* is one user action (a 500-sample move is one edit); its id is the
# run's version for optimistic concurrency. Undo and redo are edits too, naming the edit they
# revert or re-apply, so the whole history can be replayed.
_SCHEMA_V2 = """
CREATE TABLE IF NOT EXISTS edits (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,   -- the batch id; max per run = its version
    run_id       INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    op           TEXT NOT NULL CHECK (op IN ('move', 'outlier', 'merge', 'split', 'rename', 'undo', 'redo')),
    target       INTEGER REFERENCES edits(id),        -- undo / redo: the edit reverted or re-applied
    detail       TEXT,                                -- JSON: what the person asked for
    created_at   REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS edits_run ON edits (run_id, id);
CREATE TABLE IF NOT EXISTS corrections (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    edit_id      INTEGER NOT NULL REFERENCES edits(id) ON DELETE CASCADE,
    run_id       INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    idx          INTEGER NOT NULL,
    sample_id    TEXT NOT NULL,
    from_cluster INTEGER NOT NULL,                    -- -1 = outlier
    to_cluster   INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS corrections_run ON corrections (run_id, edit_id);
CREATE INDEX IF NOT EXISTS corrections_sample ON corrections (run_id, idx);
CREATE TABLE IF NOT EXISTS cluster_names (
    edit_id      INTEGER NOT NULL REFERENCES edits(id) ON DELETE CASCADE,
    run_id       INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    cluster      INTEGER NOT NULL,
    name         TEXT NOT NULL,
    previous     TEXT
);
CREATE TABLE IF NOT EXISTS reviewed (
    run_id       INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    key          TEXT NOT NULL,                       -- 'cluster:3' or a page key
    created_at   REAL NOT NULL,
    PRIMARY KEY (run_id, key)
);
"""


class Store:
    """Open (creating if needed) the workspace at ``root``."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            if e.errno in _READ_ONLY_ERRNOS:
                why = f"cannot create the folder ({e.strerror})"
                raise WorkspaceError(_read_only_message(self.root, why)) from None
            if e.errno in DISK_FULL_ERRNOS:
                raise WorkspaceError(disk_full_message(f"the workspace {self.root}", saved=_UNTOUCHED)) from None
            raise WorkspaceError(f"cannot create the workspace folder {self.root}: {e.strerror}; "
                                 "choose another with --workspace or CLUSTERLENS_HOME") from None
        self.path = self.root / DB_NAME
        # Found out before SQLite touches anything: a read-only folder or database would otherwise
        # surface as a misleading "unable to open database file" / "not a database" error.
        why = _why_not_writable(self.root, self.path)
        if why:
            raise WorkspaceError(_read_only_message(self.root, why))
        db = None
        try:
            db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
            version = db.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.DatabaseError as e:
            if db is not None:
                db.close()
            raise _open_error(e, self.root, self.path) from None
        self._db = db
        if version > SCHEMA_VERSION:
            self._db.close()
            raise WorkspaceError(
                f"{self.path} was written by a newer ClusterLens (schema {version}, this one reads "
                f"up to {SCHEMA_VERSION}); upgrade ClusterLens — the workspace was not touched"
            )
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            if version < SCHEMA_VERSION:
                # One transaction: a crash mid-creation or mid-migration (1 -> 2 adds the review
                # tables; runs are kept) leaves the old version behind, whole.
                try:
                    self._db.executescript(
                        f"BEGIN IMMEDIATE; {_SCHEMA} {_SCHEMA_V2} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;")
                except BaseException:
                    if self._db.in_transaction:
                        self._db.execute("ROLLBACK")
                    raise
        except sqlite3.OperationalError as e:
            self._db.close()
            raise (_workspace_error(e, self.root, saved=_UNTOUCHED) or WorkspaceError(
                f"cannot write the workspace database {self.path} ({e}); "
                "is the folder read-only? Choose another with --workspace")) from None

    # -- plumbing -------------------------------------------------------------------------
    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE … COMMIT; rolled back on any exception. A workspace that turned
        read-only since it was opened, or whose disk is full, raises :class:`WorkspaceError`
        (nothing was written; once space is freed the next transaction works)."""
        with self._as_workspace_error():
            self._db.execute("BEGIN IMMEDIATE")
        try:
            with self._as_workspace_error():
                yield self._db
                self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                try:
                    self._db.execute("ROLLBACK")
                except sqlite3.Error:
                    pass   # SQLite already rolled back what it could not write; keep the first error
            raise

    @contextmanager
    def _as_workspace_error(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.OperationalError as e:
            err = _workspace_error(e, self.root)
            if err is None:
                raise
            raise err from None

    def rel(self, path: str | Path) -> str:
        """Path relative to the workspace when inside it (stored that way), else absolute."""
        p = Path(path).resolve()
        try:
            return p.relative_to(self.root.resolve()).as_posix()
        except ValueError:
            return str(p)

    def abs(self, rel: str) -> Path:
        p = Path(rel)
        return p if p.is_absolute() else self.root / p

    def query(self, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
        cur = self._db.execute(sql, args)
        cols = [c[0] for c in cur.description or ()]
        return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]

    # -- datasets -------------------------------------------------------------------------
    def upsert_dataset(self, dataset: Any, source: str) -> int:
        """Record a dataset (ids, paths, ground truth, skipped files); re-use an identical one.
        Two processes recording the same dataset at once get the same id and one row."""
        find = ("SELECT id FROM datasets WHERE source=? AND fingerprint=?", (source, dataset.fingerprint))
        row = self._db.execute(*find).fetchone()
        if row:
            return int(row[0])
        labels = dataset.labels
        with self.transaction() as db:
            row = db.execute(*find).fetchone()   # again under the write lock: another process may
            if row:                              # have recorded it since the first look
                return int(row[0])
            cur = db.execute(
                "INSERT INTO datasets (source, name, fingerprint, n_samples, has_labels, class_names, "
                "created_at) VALUES (?,?,?,?,?,?,?)",
                (source, dataset.name, dataset.fingerprint, len(dataset), int(dataset.has_labels),
                 json.dumps(dataset.class_names) if dataset.class_names else None, time.time()),
            )
            ds_id = int(cur.lastrowid)
            db.executemany(
                "INSERT INTO samples (dataset_id, idx, sample_id, path, label) VALUES (?,?,?,?,?)",
                ((ds_id, i, sid, dataset.path(i),
                  None if labels is None or labels[i] < 0 else int(labels[i]))
                 for i, sid in enumerate(dataset.ids)),
            )
            db.executemany("INSERT INTO skipped (dataset_id, sample_id, reason) VALUES (?,?,?)",
                           ((ds_id, s.id, s.reason) for s in dataset.skipped))
        return ds_id

    def dataset_ids(self, dataset_id: int) -> list[str]:
        rows = self._db.execute("SELECT sample_id FROM samples WHERE dataset_id=? ORDER BY idx",
                                (dataset_id,)).fetchall()
        return [r[0] for r in rows]

    def skipped(self, dataset_id: int) -> list[dict[str, str]]:
        return self.query("SELECT sample_id, reason FROM skipped WHERE dataset_id=? ORDER BY sample_id",
                          (dataset_id,))

    # -- features -------------------------------------------------------------------------
    def record_features(self, dataset_id: int, cache_key: str, backbone: str,
                        image_size: int | None, dim: int, path: str | Path) -> int:
        find = ("SELECT id FROM feature_sets WHERE cache_key=?", (cache_key,))
        row = self._db.execute(*find).fetchone()
        if row:
            return int(row[0])
        with self.transaction() as db:
            row = db.execute(*find).fetchone()   # again under the write lock (see upsert_dataset)
            if row:
                return int(row[0])
            cur = db.execute(
                "INSERT INTO feature_sets (dataset_id, cache_key, backbone, image_size, dim, path, "
                "created_at) VALUES (?,?,?,?,?,?,?)",
                (dataset_id, cache_key, backbone, image_size, dim, self.rel(path), time.time()),
            )
        return int(cur.lastrowid)

    # -- runs -----------------------------------------------------------------------------
    def start_run(self, dataset_id: int, feature_set_id: int | None, algo: str, k: int,
                  config: dict[str, Any]) -> int:
        with self.transaction() as db:
            cur = db.execute(
                "INSERT INTO runs (dataset_id, feature_set_id, algo, k, config, status, created_at) "
                "VALUES (?,?,?,?,?, 'running', ?)",
                (dataset_id, feature_set_id, algo, k, json.dumps(config), time.time()),
            )
        return int(cur.lastrowid)

    def finish_run(self, run_id: int, labels: np.ndarray, confidence: np.ndarray,
                   scores: dict[str, Any], history: list[dict[str, Any]],
                   artifacts: dict[str, str | Path], *, config_extra: dict[str, Any] | None = None) -> None:
        """Write the assignments, scores and artifact paths, and mark the run done — atomically.
        ``config_extra`` is merged into the run's stored config (what only the result tells,
        e.g. the cluster names a retrained run carries over)."""
        with self.transaction() as db:
            if config_extra:
                row = db.execute("SELECT config FROM runs WHERE id=?", (run_id,)).fetchone()
                config = {**(json.loads(row[0]) if row and row[0] else {}), **config_extra}
                db.execute("UPDATE runs SET config=? WHERE id=?", (json.dumps(config, default=_json_default), run_id))
            db.executemany(
                "INSERT INTO assignments (run_id, idx, cluster, confidence) VALUES (?,?,?,?)",
                zip([run_id] * len(labels), range(len(labels)), labels.tolist(),
                    confidence.astype(float).tolist(), strict=True),
            )
            db.executemany("INSERT INTO artifacts (run_id, kind, path) VALUES (?,?,?)",
                           ((run_id, kind, self.rel(p)) for kind, p in artifacts.items()))
            db.execute("UPDATE runs SET status='done', scores=?, history=?, finished_at=? WHERE id=?",
                       (json.dumps(scores, default=_json_default), json.dumps(history, default=_json_default),
                        time.time(), run_id))

    def fail_run(self, run_id: int, message: str, *, cancelled: bool = False) -> None:
        with self.transaction() as db:
            db.execute("UPDATE runs SET status=?, message=?, finished_at=? WHERE id=?",
                       ("cancelled" if cancelled else "failed", message, time.time(), run_id))

    def run(self, run_id: int) -> dict[str, Any]:
        rows = self.query("SELECT * FROM runs WHERE id=?", (run_id,))
        if not rows:
            raise WorkspaceError(f"there is no run {run_id} in {self.path}; list runs with `python -m core runs`")
        r = rows[0]
        for key in ("config", "scores", "history"):
            r[key] = json.loads(r[key]) if r[key] else None
        r["artifacts"] = {a["kind"]: a["path"] for a in
                          self.query("SELECT kind, path FROM artifacts WHERE run_id=?", (run_id,))}
        return r

    def runs(self, dataset_id: int | None = None) -> list[dict[str, Any]]:
        sql = "SELECT id, dataset_id, algo, k, status, scores, message, created_at FROM runs"
        rows = self.query(sql + (" WHERE dataset_id=?" if dataset_id else "") + " ORDER BY id",
                          (dataset_id,) if dataset_id else ())
        for r in rows:
            r["scores"] = json.loads(r["scores"]) if r["scores"] else None
        return rows

    def assignments(self, run_id: int) -> tuple[np.ndarray, np.ndarray]:
        """(labels, confidence) of a finished run, row-aligned with the dataset's ids."""
        rows = self._db.execute("SELECT cluster, confidence FROM assignments WHERE run_id=? ORDER BY idx",
                                (run_id,)).fetchall()
        arr = np.asarray(rows, dtype=np.float64).reshape(-1, 2)
        return arr[:, 0].astype(np.int64), arr[:, 1].astype(np.float32)

    def samples(self, dataset_id: int) -> tuple[list[str], list[str | None]]:
        """(sample ids, paths) of a dataset, in row order."""
        rows = self._db.execute("SELECT sample_id, path FROM samples WHERE dataset_id=? ORDER BY idx",
                                (dataset_id,)).fetchall()
        return [r[0] for r in rows], [r[1] for r in rows]

    # -- review: edits, corrections, names, reviewed ---------------------------------------
    def run_version(self, run_id: int) -> int:
        """The id of the run's last edit (0 when none): what a caller must quote to edit."""
        row = self._db.execute("SELECT MAX(id) FROM edits WHERE run_id=?", (run_id,)).fetchone()
        return int(row[0] or 0)

    def append_edit(self, run_id: int, op: str, *, expected_version: int,
                    corrections: Sequence[tuple[int, str, int, int]] = (),
                    target: int | None = None, detail: dict[str, Any] | None = None,
                    name: tuple[int, str, str | None] | None = None) -> int:
        """Append one edit (and its per-sample rows / rename row) if nobody wrote since
        ``expected_version``; returns the new version. Committed with synchronous=FULL before it
        returns. ``corrections``: (idx, sample_id, from_cluster, to_cluster) rows."""
        from core.errors import StaleEditError

        with self.transaction() as db:
            current = self.run_version(run_id)
            if current != expected_version:
                raise StaleEditError(
                    f"run {run_id} was edited elsewhere (another tab or process) since you loaded it "
                    f"(version {expected_version}, now {current}); reload the review and redo this edit")
            cur = db.execute("INSERT INTO edits (run_id, op, target, detail, created_at) VALUES (?,?,?,?,?)",
                             (run_id, op, target, json.dumps(detail, default=_json_default) if detail else None,
                              time.time()))
            edit_id = int(cur.lastrowid)
            if corrections:
                db.executemany(
                    "INSERT INTO corrections (edit_id, run_id, idx, sample_id, from_cluster, to_cluster) "
                    "VALUES (?,?,?,?,?,?)",
                    ((edit_id, run_id, int(i), sid, int(a), int(b)) for i, sid, a, b in corrections))
            if name is not None:
                db.execute("INSERT INTO cluster_names (edit_id, run_id, cluster, name, previous) VALUES (?,?,?,?,?)",
                           (edit_id, run_id, int(name[0]), name[1], name[2]))
        return edit_id

    def edits(self, run_id: int) -> list[dict[str, Any]]:
        rows = self.query("SELECT id, op, target, detail, created_at FROM edits WHERE run_id=? ORDER BY id",
                          (run_id,))
        for r in rows:
            r["detail"] = json.loads(r["detail"]) if r["detail"] else None
        return rows

    def corrections(self, run_id: int) -> np.ndarray:
        """(M, 4) int64 array of (edit_id, idx, from_cluster, to_cluster), in log order."""
        rows = self._db.execute("SELECT edit_id, idx, from_cluster, to_cluster FROM corrections "
                                "WHERE run_id=? ORDER BY id", (run_id,)).fetchall()
        return np.asarray(rows, dtype=np.int64).reshape(-1, 4)

    def sample_corrections(self, run_id: int, idx: int) -> list[dict[str, Any]]:
        return self.query("SELECT c.edit_id, e.op, c.from_cluster, c.to_cluster, e.created_at FROM corrections c "
                          "JOIN edits e ON e.id = c.edit_id WHERE c.run_id=? AND c.idx=? ORDER BY c.id",
                          (run_id, idx))

    def name_records(self, run_id: int) -> list[dict[str, Any]]:
        return self.query("SELECT edit_id, cluster, name, previous FROM cluster_names WHERE run_id=? "
                          "ORDER BY edit_id", (run_id,))

    def mark_reviewed(self, run_id: int, key: str) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR IGNORE INTO reviewed (run_id, key, created_at) VALUES (?,?,?)",
                       (run_id, key, time.time()))

    def reviewed_keys(self, run_id: int) -> set[str]:
        return {r[0] for r in self._db.execute("SELECT key FROM reviewed WHERE run_id=?", (run_id,))}


_READ_ONLY_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS}
DISK_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}

# SQLite primary result codes (an extended code's low byte), as sqlite3.Error.sqlite_errorcode gives.
SQLITE_CANTOPEN, SQLITE_FULL, SQLITE_IOERR, SQLITE_NOTADB = 14, 13, 10, 26
# A full disk reaches SQLite as SQLITE_FULL on a write, but as an I/O error (SQLITE_IOERR_SHMSIZE,
# _FSYNC, _TRUNCATE ...) when it grows the WAL index or syncs: with less than this left free, the
# I/O error is the full disk, not a failing one.
_LOW_SPACE = 8 << 20
_UNTOUCHED = "the workspace was not changed"


def disk_full_message(where: str | Path, *, saved: str = "the last change was not saved") -> str:
    """One line for a full disk under ``where`` (e.g. "the workspace ./workspace")."""
    return f"the disk holding {where} is full; nothing was lost ({saved}); free some space and retry"


def is_disk_full(e: BaseException, root: str | Path) -> bool:
    """Whether ``e`` (an OSError or a SQLite error) came from the disk holding ``root`` being full."""
    if isinstance(e, OSError):
        return e.errno in DISK_FULL_ERRNOS
    if not isinstance(e, sqlite3.Error):
        return False
    code = getattr(e, "sqlite_errorcode", None)
    if code is None:
        return "database or disk is full" in str(e)
    primary = code & 0xFF
    return primary == SQLITE_FULL or (primary in (SQLITE_IOERR, SQLITE_CANTOPEN)
                                      and _free_bytes(root) < _LOW_SPACE)


def _free_bytes(root: str | Path) -> float:
    try:
        st = os.statvfs(root)
    except OSError:
        return float("inf")   # cannot tell: not called full
    return st.f_bavail * st.f_frsize


def _workspace_error(e: sqlite3.Error, root: Path, *,
                     saved: str = "the last change was not saved") -> WorkspaceError | None:
    """The WorkspaceError a person can act on for a full disk or a read-only workspace, else None."""
    if is_disk_full(e, root):
        return WorkspaceError(disk_full_message(f"the workspace {root}", saved=saved))
    if _is_read_only_error(e):
        return WorkspaceError(_read_only_message(root, str(e)))
    return None


def _open_error(e: sqlite3.Error, root: Path, db: Path) -> WorkspaceError:
    """Why the database could not be opened. Only a file SQLite says is not a database is called
    one: an I/O error or a full disk says nothing about a healthy workspace's contents."""
    err = _workspace_error(e, root, saved=_UNTOUCHED)
    if err is not None:
        return err
    code = getattr(e, "sqlite_errorcode", None)
    if (code & 0xFF) == SQLITE_NOTADB if code is not None else "file is not a database" in str(e):
        return WorkspaceError(f"{db} is not a ClusterLens database ({e}); point --workspace at another folder")
    return WorkspaceError(f"cannot read the workspace database {db} ({e}); it was not changed — check the "
                          "disk it is on and retry, or point --workspace at another folder")


def _read_only_message(root: Path, why: str) -> str:
    return (f"the workspace {root} is read-only: {why}; nothing in it was changed — "
            "choose a writable folder with --workspace (or CLUSTERLENS_HOME)")


def _is_read_only_error(e: sqlite3.Error) -> bool:
    msg = str(e).lower()
    return any(s in msg for s in ("readonly", "read-only", "unable to open database file",
                                  "permission denied"))


def _why_not_writable(root: Path, db: Path) -> str | None:
    """Why ``root`` (and the database in it) cannot be written, or None. Tried for real (a probe
    file; the database opened for writing, nothing written), not guessed from permission bits."""
    try:
        fd, probe = tempfile.mkstemp(dir=root, prefix=".clusterlens-write-test-")
    except OSError as e:
        if e.errno in _READ_ONLY_ERRNOS:
            return f"cannot create files in it ({e.strerror})"
        if e.errno in DISK_FULL_ERRNOS:   # else SQLite would say "unable to open", read like read-only
            raise WorkspaceError(disk_full_message(f"the workspace {root}", saved=_UNTOUCHED)) from None
        return None   # something else: let SQLite report it
    os.close(fd)
    os.unlink(probe)
    for path in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        try:
            os.close(os.open(path, os.O_RDWR))
        except FileNotFoundError:
            continue
        except OSError as e:
            if e.errno in _READ_ONLY_ERRNOS:
                return f"cannot write {path.name} ({e.strerror})"
    return None


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"cannot store {type(o).__name__} as JSON")
