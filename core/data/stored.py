"""What the workspace keeps besides its database: uploads and extracted archives, and who uses them.

Uploads (``uploads/upload-<hash>[.zip]``, see ui/uploads.py) and extracted archives
(``datasets/zip-<hash>``, see core/data/zipdata.py) are content-addressed and re-used, so nothing
removes them by itself. This lists them with their size and the datasets and runs in the workspace
database opened from them, and removes one, or all that nothing uses. Only entries directly inside
those two folders whose names follow our naming are touched, and links are never followed.
"""
from __future__ import annotations

import os
import re
import shutil
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.data.manifest import file_hash
from core.data.zipdata import read_record
from core.errors import DataError

RECENT_S = 3600.0   # unused but younger than this: an open app session may not have recorded it yet

_UPLOAD = re.compile(r"upload-[0-9a-f]{24}(\.zip)?")
_EXTRACTED = re.compile(r"zip-([0-9a-f]{32})")
# (folder, name, kind): what each stored name means. "unfinished" ones are what an interrupted
# extraction, upload or removal leaves behind (or one still going on: hence the age rule).
_NAMING = (
    ("datasets", _EXTRACTED, "extracted zip"),
    ("uploads", re.compile(r"upload-[0-9a-f]{24}\.zip"), "uploaded zip"),
    ("uploads", re.compile(r"upload-[0-9a-f]{24}"), "uploaded images"),
    ("datasets", re.compile(r"\.tmp-zip-\w+"), "unfinished"),
    ("uploads", re.compile(r"\.tmp-[0-9a-f]{24}(-\w+)?|upload-[0-9a-f]{24}\.zip(\.[0-9a-f]+)?\.tmp"), "unfinished"),
    ("datasets", re.compile(r"\.removing-[\w.-]+"), "unfinished"),
    ("uploads", re.compile(r"\.removing-[\w.-]+"), "unfinished"),
)


@dataclass(frozen=True)
class Use:
    """A dataset in the workspace database opened from a stored entry (or a source open in the app)."""

    source: str
    dataset_id: int | None = None      # None: open in the app, not in the database yet
    dataset: str = ""
    runs: tuple[int, ...] = ()

    def __str__(self) -> str:
        if self.dataset_id is None:
            return "the data open in the app"
        runs = f" (run{'s' if len(self.runs) > 1 else ''} {', '.join(map(str, self.runs))})" if self.runs else ""
        return f"dataset {self.dataset_id} {self.dataset!r}{runs}"


@dataclass(frozen=True)
class StoredItem:
    kind: str                  # "extracted zip" | "uploaded zip" | "uploaded images" | "unfinished"
    name: str                  # unique in the workspace; what --remove takes
    path: Path
    size: int                  # bytes in its files (links counted as links, not followed)
    created: float             # when it was written (its modification time), seconds since the epoch
    used_by: tuple[Use, ...] = ()

    @property
    def used(self) -> bool:
        return bool(self.used_by)

    def row(self) -> dict[str, Any]:
        """One line of the listing (CLI JSON, the Data page's table)."""
        return {"kind": self.kind, "name": self.name, "path": str(self.path), "size": self.size,
                "size_text": human_size(self.size),
                "created": time.strftime("%Y-%m-%d %H:%M", time.localtime(self.created)),
                "used_by": [str(u) for u in self.used_by],
                "runs": sorted({r for u in self.used_by for r in u.runs})}


@dataclass(frozen=True)
class Cleanup:
    removed: list[StoredItem]
    recent: list[StoredItem]   # unused, but kept: younger than the age rule

    @property
    def freed(self) -> int:
        return sum(i.size for i in self.removed)


def human_size(n: float) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{int(n)} B"


# -- listing ---------------------------------------------------------------------------------

def _kind(folder: str, name: str) -> str | None:
    return next((kind for f, rx, kind in _NAMING if f == folder and rx.fullmatch(name)), None)


def _size(path: Path) -> int:
    if not path.is_dir() or path.is_symlink():
        return path.lstat().st_size
    total = 0
    for dirpath, _, filenames in os.walk(path):   # does not follow links to folders
        total += sum(os.lstat(os.path.join(dirpath, f)).st_size for f in filenames)
    return total


def _entries(workspace: Path) -> list[tuple[str, Path]]:
    """(kind, path) of every entry following our naming; links (never ours) are left out."""
    found = []
    for folder in ("datasets", "uploads"):
        base = workspace / folder
        if not base.is_dir():
            continue
        for path in sorted(base.iterdir()):
            kind = _kind(folder, path.name)
            if kind is not None and not path.is_symlink():
                found.append((kind, path))
    return found


def _datasets(workspace: Path, extra_sources: Iterable[str]) -> list[Use]:
    """Every dataset the workspace database records, with its runs, plus the extra sources."""
    from core.store import DB_NAME, Store

    uses = [Use(str(s)) for s in extra_sources]
    if not (workspace / DB_NAME).is_file():   # listing must not create a workspace
        return uses
    with Store(workspace) as store:
        rows = store.query("SELECT d.id, d.name, d.source, r.id AS run FROM datasets d "
                           "LEFT JOIN runs r ON r.dataset_id = d.id ORDER BY d.id, r.id")
    by_id: dict[int, Use] = {}
    for r in rows:
        u = by_id.get(r["id"]) or Use(r["source"], r["id"], r["name"])
        by_id[r["id"]] = Use(u.source, u.dataset_id, u.dataset, u.runs + ((r["run"],) if r["run"] is not None else ()))
    return uses + list(by_id.values())


def _real(source: str) -> str:
    return os.path.realpath(os.path.expanduser(source))


class _ZipHashes:
    """The content hash of a source .zip: from an extraction's record when its size and time
    match, else read (only archives changed since, or extracted before records were kept)."""

    def __init__(self, stamps: dict[str, tuple[int, int, str]]) -> None:
        self.stamps, self.known = stamps, {}

    def __call__(self, real: str) -> str | None:
        if real not in self.known:
            self.known[real] = None
            if real.lower().endswith(".zip") and os.path.isfile(real):
                st, stamp = os.stat(real), self.stamps.get(real)
                if stamp is not None and stamp[:2] == (st.st_size, st.st_mtime_ns):
                    self.known[real] = stamp[2]
                else:
                    try:
                        self.known[real] = file_hash(real)
                    except OSError:
                        pass
        return self.known[real]


def list_stored(workspace: str | os.PathLike, extra_sources: Iterable[str] = ()) -> list[StoredItem]:
    """Stored uploads, extracted archives and leftovers, each with what uses it.

    ``extra_sources``: sources open elsewhere (the app's session) that count as uses too.
    """
    workspace = Path(workspace)
    entries = _entries(workspace)
    stamps = {}
    for kind, path in entries:
        record = read_record(path) if kind == "extracted zip" else None
        for a in record.archives if record else ():
            stamps[str(a.get("path"))] = (a.get("size"), a.get("mtime_ns"), path.name[len("zip-"):])
    hashes = _ZipHashes(stamps)
    uses = [(u, _real(u.source)) for u in _datasets(workspace, extra_sources)]
    items = []
    for kind, path in entries:
        if kind == "extracted zip":
            digest = _EXTRACTED.fullmatch(path.name).group(1)
            used = tuple(u for u, real in uses if hashes(real) == digest)
        elif kind == "unfinished":
            used = ()
        else:
            real = _real(str(path))
            used = tuple(u for u, r in uses if r == real)
        items.append(StoredItem(kind, path.name, path, _size(path), path.lstat().st_mtime, used))
    return items


# -- removal ---------------------------------------------------------------------------------

def _delete(item: StoredItem) -> None:
    path = item.path
    try:
        if path.is_dir() and not path.is_symlink():
            # Renamed first (atomic), so a removal that stops half-way never leaves a partial
            # extraction that would be re-used as whole: only a hidden leftover, listed as unfinished.
            doomed = path.with_name(f".removing-{path.name}-{uuid.uuid4().hex[:8]}")
            os.rename(path, doomed)
            shutil.rmtree(doomed)
        else:
            path.unlink()
    except OSError as e:
        raise DataError(f"could not remove {item.name} ({e.strerror or e}); check the folder's permissions; "
                        "what was not removed is listed by `python -m core storage`") from None


def remove_stored(workspace: str | os.PathLike, name: str, extra_sources: Iterable[str] = ()) -> StoredItem:
    """Remove one entry by name (used or not: the caller says what used it); return it as it was."""
    workspace = Path(workspace)
    items = list_stored(workspace, extra_sources)
    item = next((i for i in items if i.name == name), None)
    if item is None:
        linked = [workspace / f / name for f in ("datasets", "uploads")
                  if _kind(f, name) and (workspace / f / name).is_symlink()]
        if linked:
            raise DataError(f"{linked[0]} is a symbolic link, not something ClusterLens stored; "
                            "nothing was removed (remove the link yourself if you want it gone)")
        names = ", ".join(i.name for i in items) or "none"
        raise DataError(f"nothing stored is named {name!r} in {workspace}; stored: {names} "
                        "(`python -m core storage` lists them)")
    _delete(item)
    return item


def remove_unused(workspace: str | os.PathLike, extra_sources: Iterable[str] = (),
                  min_age_s: float = RECENT_S) -> Cleanup:
    """Remove every entry no dataset, run or extra source uses, except those under ``min_age_s`` old
    (a session that has just uploaded has not recorded a dataset yet). A half-removed leftover
    (``.removing-*``) is always removed."""
    now, removed, recent = time.time(), [], []
    for item in list_stored(workspace, extra_sources):
        if item.used:
            continue
        if now - item.created < min_age_s and not item.name.startswith(".removing-"):
            recent.append(item)
            continue
        _delete(item)
        removed.append(item)
    return Cleanup(removed, recent)


def raise_if_removed(path: str | os.PathLike) -> None:
    """A stored upload that is gone was removed (only removal deletes one): say so and how to get it back."""
    path = Path(path)
    if path.parent.name == "uploads" and _UPLOAD.fullmatch(path.name) and not path.exists():
        raise DataError(
            f"the uploaded data {path.name} was removed from the workspace's stored uploads; to get it back, "
            f"upload the same files again on the Data page (the same files are stored as {path.name} again), "
            "then open it again"
        )
