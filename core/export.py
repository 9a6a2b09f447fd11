"""Export a run's current labels (the run's clusters with every applied correction).

Formats: ``csv`` and ``json`` (sample id, path, cluster, cluster name, corrected — a person moved
it or marked it an outlier, as the Review page counts — confidence) and
``imagefolder`` (one folder per cluster name holding copies of — or links to — the images).
:func:`read_labels_csv` and :func:`read_labels_json` read an export back.

What an export may write, checked on the resolved path (symlinks followed first, then checked):

- never inside the workspace (its database and arrays), in any format; with ``allowed_roots``
  never outside those folders;
- a new file, or an empty / new folder; it replaces only an earlier ClusterLens export, and only
  with ``overwrite=True``. A CSV / JSON export is recorded, with the SHA-256 of what was written, in
  the workspace's ``exports.json`` (updated under ``exports.json.lock``, so two exports at once keep
  both records); a file is replaced only while its content still has that hash,
  so a foreign file, or an export edited by hand since, is refused. (A registry rather than a
  sidecar next to the file: the person's folders get no extra files, a sidecar could be copied or
  left beside a file it does not describe, and the workspace is already ClusterLens's own.) An
  ImageFolder export holds a marker (:data:`MARKER`) listing every file with its size and mtime; it
  is replaced only while it holds nothing else and nothing listed changed.
- atomically: a file is written to a temporary name beside the target and renamed into place, a
  folder is built beside it and swapped in, so a failed export (a full disk, say) leaves the old
  export whole and no temporary files behind. An OSError while writing becomes a one-line
  WorkspaceError (a full disk says so, and that nothing was lost).

CSV cells against formula injection (OWASP): a text cell (sample_id, path, cluster_name) that
starts with ``= + - @``, a tab or a carriage return gets a leading ``'``, so a spreadsheet shows it
as text instead of running it. A text cell that itself starts with ``'`` gets one too, so the rule
can be undone exactly: :func:`read_labels_csv` strips one leading ``'`` where it is followed by one
of ``= + - @ ' \\t \\r`` (cells the writer escaped) and nowhere else — ``'abc`` from an older file
without the rule reads back as ``'abc``. Numbers (cluster ``-1``) are not text and are left alone.
JSON is written exactly as the database has it.
"""
from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from core.errors import DataError, ParameterError, WorkspaceError
from core.review import ReviewSession
from core.store import DISK_FULL_ERRNOS, Store

try:
    import fcntl
except ImportError:   # not POSIX: concurrent exports may then drop each other's record (see _locked)
    fcntl = None

FORMATS = ("csv", "json", "imagefolder")
CSV_COLUMNS = ["sample_id", "path", "cluster", "cluster_name", "corrected", "confidence"]
CSV_TEXT_COLUMNS = ("sample_id", "path", "cluster_name")
MARKER = ".clusterlens-export.json"
REGISTRY = "exports.json"          # under the workspace: the CSV / JSON files ClusterLens exported
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_ESCAPE = "'"


def export_run(store: Store, run_id: int, fmt: str, out: str | Path, *, overwrite: bool = False,
               link: bool = False, allowed_roots: Sequence[str | Path] | None = None) -> dict[str, Any]:
    """Write the export; returns a summary (path, format, n_samples, n_corrected, clusters).

    Refused (ParameterError, one line saying what to do): a path inside ``store.root`` or outside
    ``allowed_roots``; an existing file or folder that is not an unchanged earlier ClusterLens
    export; an earlier export without ``overwrite``."""
    out, replaces = check_target(store, fmt, out, allowed_roots=allowed_roots)
    if replaces and not overwrite:
        what = "already has files" if fmt == "imagefolder" else "already exists"
        raise ParameterError(f"{out} {what} (an earlier ClusterLens export); pass overwrite (--overwrite) "
                             "to replace it, or choose another name")
    rows = export_rows(ReviewSession(store, run_id))
    if fmt == "imagefolder":
        _write_imagefolder(rows, out, replaces=replaces, link=link, run_id=run_id)
    else:
        _write_export_file(store.root, out, render_rows(rows, fmt, run_id), run_id=run_id, fmt=fmt)
    return {"path": str(out), "format": fmt, "n_samples": len(rows),
            "n_corrected": sum(r["corrected"] for r in rows),
            "clusters": len({r["cluster"] for r in rows})}


def check_target(store: Store, fmt: str, out: str | Path, *,
                 allowed_roots: Sequence[str | Path] | None = None) -> tuple[Path, bool]:
    """(the resolved target, whether an export there replaces an earlier one); ParameterError
    where no export may be written there at all. The app asks "replace?" only when this says so."""
    if fmt not in FORMATS:
        raise ParameterError(f"unknown export format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    out = Path(out).expanduser().resolve()          # symlinks first: the checks see where it really goes
    if allowed_roots is not None:
        roots = [Path(r).expanduser().resolve() for r in allowed_roots]
        if not any(out == r or out.is_relative_to(r) for r in roots):
            raise ParameterError(f"{out} is outside the folders exports may go to "
                                 f"({', '.join(str(r) for r in roots)}); choose a path inside one")
    ws = store.root.resolve()
    if out == ws or out.is_relative_to(ws):
        raise ParameterError(f"{out} is inside the workspace {ws}, where an export could overwrite its "
                             "database; choose a path outside it")
    if fmt == "imagefolder":
        if ws.is_relative_to(out):
            raise ParameterError(f"the workspace {ws} is inside {out}, which an export could replace; "
                                 "choose a folder outside it")
        return out, _folder_is_our_export(out)
    return out, _file_is_our_export(out, ws)


def export_rows(session: ReviewSession) -> list[dict[str, Any]]:
    labels = session.current_labels()
    # "corrected" as the Review page counts it: a person moved it or marked it an outlier; a split
    # or merge changes the cluster of images nobody looked at one by one (their cluster column says so)
    corrected = session.person_mask()
    names = session.cluster_names()
    return [{"sample_id": sid, "path": session.paths[i], "cluster": int(labels[i]),
             "cluster_name": names[int(labels[i])], "corrected": bool(corrected[i]),
             "confidence": round(float(session.confidence[i]), 6)}
            for i, sid in enumerate(session.ids)]


def render_export(store: Store, run_id: int, fmt: str) -> bytes:
    """A CSV or JSON export's bytes, written nowhere (for a download); the same bytes export_run
    writes."""
    if fmt not in ("csv", "json"):
        raise ParameterError(f"only csv and json exports can be downloaded, not {fmt!r}")
    return render_rows(export_rows(ReviewSession(store, run_id)), fmt, run_id)


def render_rows(rows: list[dict[str, Any]], fmt: str, run_id: int) -> bytes:
    if fmt == "csv":
        return _csv_text(rows).encode("utf-8")
    return json.dumps({"run": run_id, "samples": rows}, indent=1).encode("utf-8")


def csv_cell(text: str) -> str:
    """A text cell as written to CSV: formula-leading text (and text starting with the escape
    quote itself) gets a leading ``'``."""
    return _ESCAPE + text if text.startswith((*FORMULA_START, _ESCAPE)) else text


def csv_uncell(text: str) -> str:
    """The inverse of :func:`csv_cell`: strip the one quote the writer added, nothing else."""
    if text.startswith(_ESCAPE) and text[1:].startswith((*FORMULA_START, _ESCAPE)):
        return text[1:]
    return text


def read_labels_csv(path: str | Path) -> tuple[list[str], np.ndarray]:
    """(sample ids, (N,) int64 clusters) from a CSV export (or a run's labels.csv)."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if not reader.fieldnames or not {"sample_id", "cluster"} <= set(reader.fieldnames):
                raise DataError(f"{path} is not a ClusterLens labels CSV (needs sample_id and cluster columns)")
            ids, labels = [], []
            for row in reader:
                ids.append(csv_uncell(row["sample_id"]))
                labels.append(int(row["cluster"]))
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror}") from None
    except ValueError as e:
        raise DataError(f"{path}: a cluster value is not an integer ({e})") from None
    return ids, np.asarray(labels, dtype=np.int64)


def read_labels_json(path: str | Path) -> tuple[list[str], np.ndarray]:
    """(sample ids, (N,) int64 clusters) from a JSON export: ``{"run": …, "samples": [{"sample_id":
    …, "cluster": …, …}, …]}`` (a bare list of such objects is read too)."""
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"{path} is not valid JSON ({e}); is it a ClusterLens JSON export?") from None
    rows = doc.get("samples") if isinstance(doc, dict) else doc
    if not isinstance(rows, list):
        raise DataError(f"{path} is not a ClusterLens labels JSON (needs a \"samples\" list)")
    ids, labels = [], []
    for n, row in enumerate(rows):
        if not isinstance(row, dict) or "sample_id" not in row or "cluster" not in row:
            raise DataError(f"{path}: sample {n} lacks sample_id or cluster; is it a ClusterLens JSON export?")
        c = row["cluster"]
        if isinstance(c, bool) or not isinstance(c, int | str):
            raise DataError(f"{path}: sample {row['sample_id']!r} has cluster {c!r}, not an integer")
        try:
            labels.append(int(c))
        except ValueError:
            raise DataError(f"{path}: sample {row['sample_id']!r} has cluster {c!r}, not an integer") from None
        ids.append(str(row["sample_id"]))
    return ids, np.asarray(labels, dtype=np.int64)


# -- internals: CSV -------------------------------------------------------------------------
def _csv_text(rows: list[dict[str, Any]]) -> str:
    lines = [_csv_line(CSV_COLUMNS)]
    for r in rows:
        cells = {**r, "path": r["path"] or "", "corrected": int(r["corrected"])}
        cells.update({c: csv_cell(str(cells[c])) for c in CSV_TEXT_COLUMNS})
        lines.append(_csv_line([str(cells[c]) for c in CSV_COLUMNS]))
    return "".join(lines)


def _csv_line(cells: Sequence[str]) -> str:
    """One CSV line as the csv module writes it, but a cell holding a carriage return is quoted
    too (with "\n" line ends the csv module leaves it bare, and the file then reads back broken)."""
    return ",".join('"' + c.replace('"', '""') + '"' if any(ch in c for ch in ',"\r\n') else c
                    for c in cells) + "\n"


# -- internals: single files and their registry ---------------------------------------------
def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _file_is_our_export(out: Path, ws: Path) -> bool:
    """Whether ``out`` exists and is an unchanged earlier export; ParameterError where it exists
    and may not be replaced."""
    if out.is_dir():
        raise ParameterError(f"{out} is a folder; give a file name for a csv or json export")
    if not out.exists():
        return False
    if not out.is_file():
        raise ParameterError(f"{out} is not a regular file, so it will not be replaced; choose another file name")
    hashes = _read_registry(ws).get(str(out), {}).get("sha256", [])
    if not hashes:
        raise ParameterError(f"{out} already exists and was not written by a ClusterLens export, so it will "
                             "not be replaced; choose another file name")
    try:
        current = _sha256(out)
    except OSError as e:
        raise ParameterError(f"{out} already exists and cannot be read ({e.strerror}), so it will not be "
                             "replaced; choose another file name") from None
    if current not in hashes:
        raise ParameterError(f"{out} was changed since ClusterLens exported it (edited by hand?), so it will "
                             "not be replaced; choose another file name")
    return True


def _read_registry(ws: Path) -> dict[str, dict[str, Any]]:
    """Resolved path → {"sha256": [...], "run", "format", "written"}. Unreadable counts as empty:
    that only ever refuses a replacement, never allows one."""
    try:
        doc = json.loads((ws / REGISTRY).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    files = doc.get("files") if isinstance(doc, dict) else None
    return files if isinstance(files, dict) else {}


@contextlib.contextmanager
def _locked(ws: Path) -> Iterator[None]:
    """Two exports at once (two app sessions, app and CLI) must not drop each other's record."""
    if fcntl is None:
        yield
        return
    fd = os.open(ws / f"{REGISTRY}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _write_export_file(ws: Path, out: Path, data: bytes, *, run_id: int, fmt: str) -> None:
    """Record, then write. The record comes first so every path is true to what it says: if it
    fails nothing changed; if the file write fails after it, the record lists a hash no file has
    (harmless) beside the old file's, which stays replaceable."""
    try:
        with _locked(ws.resolve()):
            registry = {p: e for p, e in _read_registry(ws).items() if Path(p).exists()}
            keep = [_sha256(out)] if out.is_file() and str(out) in registry else []
            registry[str(out)] = {"sha256": [*keep, hashlib.sha256(data).hexdigest()], "run": run_id,
                                  "format": fmt, "written": datetime.now(timezone.utc).isoformat(timespec="seconds")}
            _atomic_write(ws / REGISTRY, json.dumps({"version": 1, "files": registry}, indent=1).encode("utf-8"))
    except OSError as e:
        raise WorkspaceError(_write_error(ws / REGISTRY, e, "could not record the export in")) from None
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(out, data)
    except OSError as e:
        raise WorkspaceError(_write_error(out, e)) from None


def _write_error(path: Path, e: OSError, doing: str = "could not write the export to",
                 old: str = "the old file") -> str:
    why = "the disk is full" if e.errno in DISK_FULL_ERRNOS else (e.strerror or str(e))
    todo = "free space and retry" if e.errno in DISK_FULL_ERRNOS else "check that the folder can be written and retry"
    return f"{doing} {path}: {why}; nothing was lost ({old}, if any, is unchanged); {todo}"


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _new_temp(path: Path) -> tuple[int, Path]:
    """An exclusive temp file beside ``path``; mode 0666 less the umask, as an ordinary file
    (mkstemp's 0600 would leave the export unreadable to others)."""
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
        except FileExistsError:
            continue


def _atomic_write(path: Path, data: bytes) -> None:
    """Write to a temp file beside ``path``, fsync, rename over it: ``path`` is old or new, never half."""
    fd, tmp = _new_temp(path)
    try:
        try:
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    """The rename itself survives a power cut (best effort: not every system can open a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# -- internals: ImageFolder -----------------------------------------------------------------
def _folder_names(rows: list[dict[str, Any]]) -> dict[int, str]:
    """Cluster → a safe, unique folder name derived from the cluster name."""
    out: dict[int, str] = {}
    used: set[str] = set()
    for c, name in sorted({(r["cluster"], r["cluster_name"]) for r in rows}):
        safe = re.sub(r"[^\w.\- ]+", "_", name).strip(" .") or f"cluster_{c}"
        if safe.lower() in used:
            safe = f"{safe}_{c}"
        used.add(safe.lower())
        out[c] = safe
    return out


def _stamp(path: Path) -> list[int]:
    st = os.lstat(path)
    return [st.st_size, st.st_mtime_ns]


def _folder_is_our_export(out: Path) -> bool:
    """Whether ``out`` is a non-empty earlier export holding only what it wrote, unchanged;
    ParameterError where it has files and may not be replaced."""
    if out.exists() and not out.is_dir():
        raise ParameterError(f"{out} is a file; give a folder for an imagefolder export")
    if not out.is_dir() or not any(out.iterdir()):
        return False
    try:
        doc = json.loads((out / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        doc = None
    if not isinstance(doc, dict):
        raise ParameterError(f"{out} already has files and is not an earlier ClusterLens export, so it will "
                             "not be replaced; choose an empty or new folder")
    files = doc.get("files")
    if not isinstance(files, dict):
        raise ParameterError(f"{out} is an export by an older ClusterLens that did not list its files, so it "
                             "will not be replaced; choose an empty or new folder")
    for d, dirs, names in os.walk(out):
        for name in names + [x for x in dirs if os.path.islink(os.path.join(d, x))]:
            p = Path(d, name)
            rel = p.relative_to(out).as_posix()
            if rel != MARKER and files.get(rel) != _stamp(p):
                raise ParameterError(f"{out} has files that ClusterLens did not write or that changed since "
                                     f"its export (e.g. {rel}), so it will not be replaced; move them out or "
                                     "choose another folder")
    return True


def _write_imagefolder(rows: list[dict[str, Any]], out: Path, *, replaces: bool, link: bool, run_id: int) -> None:
    missing = [r["sample_id"] for r in rows if not r["path"]]
    if missing:
        raise DataError(f"{len(missing)} sample(s) have no image file (an array dataset, e.g. {missing[0]!r}); "
                        "export csv or json instead")
    if replaces:
        inside = next((r["path"] for r in rows if Path(r["path"]).resolve().is_relative_to(out)), None)
        if inside:
            raise ParameterError(f"this run's images are inside {out} (e.g. {inside}); replacing it would delete "
                                 "them; choose another folder")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp"))
    except OSError as e:
        raise WorkspaceError(_write_error(out, e, old="the old folder")) from None
    try:
        folders = _folder_names(rows)
        files: dict[str, list[int]] = {}
        for r in rows:
            src = _source_file(r)
            d = tmp / folders[r["cluster"]]
            d.mkdir(exist_ok=True)
            dst = d / r["sample_id"].replace("/", "__").replace("\\", "__")
            if link:
                dst.symlink_to(src.resolve())
            else:
                shutil.copy2(src, dst)
            files[dst.relative_to(tmp).as_posix()] = _stamp(dst)
        marker = {"run": run_id, "folders": {str(k): v for k, v in folders.items()}, "files": files}
        fd = os.open(tmp / MARKER, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            _write_all(fd, json.dumps(marker).encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        _swap_in(tmp, out, replaces)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise WorkspaceError(_write_error(out, e, old="the old folder")) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _source_file(row: dict[str, Any]) -> Path:
    """The real file behind a sample, refused when it is gone or a link now leads it out of its
    dataset's folder (a file swapped for a link after the scan must not be copied)."""
    from core.data.imageio import BadImageError, inside_root

    src = Path(row["path"])
    depth = len(PurePosixPath(row["sample_id"]).parts)   # path = dataset root / sample id
    root = src.parents[depth - 1] if 0 < depth <= len(src.parents) else src.parent
    try:
        real = inside_root(src, root)
    except BadImageError as e:
        raise DataError(f"image {src} (sample {row['sample_id']!r}) cannot be exported: {e}; put the file back "
                        "or cluster the folder again") from None
    if not real.is_file():
        raise DataError(f"image {src} (sample {row['sample_id']!r}) is gone; cannot export it")
    return real


def _swap_in(tmp: Path, out: Path, replaces: bool) -> None:
    """Rename the finished folder into place; an earlier export is moved aside first and put back
    if the rename fails, then removed."""
    if not replaces:
        os.replace(tmp, out)                 # onto nothing or an empty folder
        return
    old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.old"))
    try:
        os.replace(out, old)                 # onto the empty folder just made: a name nobody else uses
    except BaseException:
        old.rmdir()
        raise
    try:
        os.replace(tmp, out)
    except BaseException:
        os.replace(old, out)
        raise
    shutil.rmtree(old, ignore_errors=True)
