"""A read-only workspace: a clear WorkspaceError naming the folder and --workspace; nothing lost.

Permission bits do not stop root, and CI runs as root. So the check runs for real in a subprocess
that imports the engine and then drops to user ``nobody`` (65534) before touching the workspace
(the interpreter lives under /root, which ``nobody`` cannot read, so the privileges are dropped
after the imports rather than before ``exec``). Not root: the same subprocess, permission bits alone.
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from core.store import DB_NAME, Store
from tests.review_helpers import make_run

ROOT = Path(__file__).resolve().parents[1]
NOBODY = 65534
IS_ROOT = os.geteuid() == 0

# Everything the subprocess needs is imported before it gives up its privileges.
SCRIPT = r"""
import contextlib, io, json, os, sys
import tqdm  # noqa: F401  (the CLI's progress printer imports it lazily)
import core.cli, core.export, core.retrain, core.review, core.store
from core.errors import WorkspaceError
core.cli.build_parser().parse_args(["runs"])          # argparse / gettext, imported lazily
if os.geteuid() == 0:
    os.setgroups([]); os.setgid(65534); os.setuid(65534)
ws = sys.argv[1]
out = {"euid": os.geteuid()}
try:
    core.store.Store(ws).close()
    out["store"] = None
except WorkspaceError as e:
    out["store"] = str(e)
for args in (["runs", "--workspace", ws],
             ["export", "--workspace", ws, "--run", "1", "--format", "csv", "--out", os.path.join(ws, "x.csv")],
             ["retrain", "--workspace", ws, "--run", "1", "--json"]):
    err, std = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(std):
        rc = core.cli.main(args)
    out[args[0]] = [rc, err.getvalue(), std.getvalue()]
print(json.dumps(out))
"""


@pytest.fixture
def shared_dir():
    """A folder ``nobody`` can reach (pytest's tmp_path is private to the user running it)."""
    d = Path(tempfile.mkdtemp(prefix="clusterlens-ro-"))
    d.chmod(0o755)
    yield d
    for p in [d, *d.rglob("*")]:           # give write back so it can be removed
        try:
            p.chmod(0o755 if p.is_dir() else 0o644)
        except OSError:
            pass
    shutil.rmtree(d, ignore_errors=True)


def _snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(folder.rglob("*"))}


def _as_unprivileged(ws: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(ws)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    if IS_ROOT and "Operation not permitted" in proc.stderr and "setuid" in proc.stderr:
        pytest.skip("running as root without the right to drop privileges (no CAP_SETUID)")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["euid"] != 0                    # the check really ran without root's powers
    return out


def _assert_clear_read_only_error(out: dict, ws: Path) -> None:
    msg = out["store"]
    assert msg is not None, "opening a read-only workspace must fail, not half-work"
    assert f"the workspace {ws} is read-only" in msg and "choose a writable folder with --workspace" in msg
    assert "not a ClusterLens database" not in msg
    for cmd in ("runs", "export", "retrain"):
        rc, err, std = out[cmd]
        assert rc == 2 and "Traceback" not in err, (cmd, err)
        assert err.startswith("error: the workspace") and "read-only" in err and "--workspace" in err
        assert std == ""


def _make_workspace(parent: Path) -> Path:
    ws = parent / "ws"
    make_run(ws)
    with Store(ws) as s:                       # one correction and a name, so there is work to lose
        from core.review import ReviewSession
        session = ReviewSession(s, 1)
        session.move([0, 1], 2)
        session.rename(2, "kept")
    return ws


def test_read_only_folder_and_database_give_a_clear_error_and_lose_nothing(shared_dir):
    ws = _make_workspace(shared_dir)
    (ws / DB_NAME).chmod(0o444)
    ws.chmod(0o555)                            # readable by everyone, writable by no one (but root)
    before = _snapshot(ws)

    out = _as_unprivileged(ws)

    _assert_clear_read_only_error(out, ws)
    assert _snapshot(ws) == before             # not a byte changed, no file added (no -wal, -shm, x.csv)
    ws.chmod(0o755)
    from core.review import ReviewSession
    with Store(ws) as s:                       # and everything is still there
        session = ReviewSession(s, 1)
        assert session.current_labels()[:2].tolist() == [2, 2] and session.cluster_names()[2] == "kept"


def test_read_only_database_in_a_writable_folder(shared_dir):
    ws = _make_workspace(shared_dir)
    (ws / DB_NAME).chmod(0o444)
    if IS_ROOT:
        os.chown(ws, NOBODY, NOBODY)           # nobody may create files here, but not write the database
    before = _snapshot(ws)

    out = _as_unprivileged(ws)

    _assert_clear_read_only_error(out, ws)
    assert DB_NAME in out["store"]             # says which file is the problem
    assert _snapshot(ws) == before


def test_workspace_that_cannot_be_created_says_so(shared_dir):
    locked = shared_dir / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    ws = locked / "ws"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    code = ("import os, core.store\n"
            "from core.errors import WorkspaceError\n"
            "if os.geteuid() == 0:\n    os.setgroups([]); os.setgid(65534); os.setuid(65534)\n"
            f"try:\n    core.store.Store({str(ws)!r})\nexcept WorkspaceError as e:\n    print(e)\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    if IS_ROOT and "Operation not permitted" in proc.stderr:
        pytest.skip("running as root without the right to drop privileges")
    assert proc.returncode == 0, proc.stderr
    assert f"the workspace {ws} is read-only" in proc.stdout and "--workspace" in proc.stdout
    assert not ws.exists()


def test_a_run_whose_files_cannot_be_written_fails_cleanly(tmp_path, monkeypatch):
    """The folder turned read-only after the database was opened: the run is marked failed with
    a clear message, earlier runs stay as they were."""
    import errno

    from core import pipeline
    from core.config import ClusterConfig, DataConfig, FeatureConfig, MapConfig, RunConfig
    from core.errors import WorkspaceError

    cfg = RunConfig(data=DataConfig("digits", limit=60), features=FeatureConfig(backbone="pixels"),
                    cluster=ClusterConfig(k=3), map=MapConfig(method="none"), workspace=str(tmp_path))
    good = pipeline.run_pipeline(cfg)

    def refuse(folder, *a, **k):
        raise PermissionError(errno.EACCES, "Permission denied", str(folder))

    monkeypatch.setattr(pipeline, "write_artifacts", refuse)
    with pytest.raises(WorkspaceError, match=r"is read-only: cannot write .*choose a writable folder with --workspace"):
        pipeline.run_pipeline(cfg)
    with Store(tmp_path) as s:
        runs = {r["id"]: r["status"] for r in s.runs()}
        assert runs == {good.run_id: "done", good.run_id + 1: "failed"}
        assert s.assignments(good.run_id)[0].tolist() == good.labels.tolist()
