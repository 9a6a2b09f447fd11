"""Uploaded files -> a folder or a .zip in the workspace, which the engine then opens as usual.

Checks here are only what the upload itself needs (total size, one zip at a time, safe file
names); everything about the images (decoding, skipping bad files, zip safety) is the engine's.
"""
from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from core.errors import DataError

_MB = 1024 * 1024
_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")


@dataclass(frozen=True)
class Upload:
    name: str
    data: bytes


def over_limit_message(total_bytes: int, max_mb: float) -> str:
    size = f"{total_bytes / _MB:.1f} MB" if total_bytes >= _MB // 10 else f"{total_bytes / 1024:.1f} kB"
    return (f"The upload is {size}, over the {max_mb:g} MB limit. Upload fewer files, "
            "or put them in a folder under the allowed roots and open that folder instead.")


def save_uploads(files: list[Upload], workspace: Path, max_mb: float) -> Path:
    """Write the uploads under ``workspace/uploads`` (content-addressed) and return what to open."""
    if not files:
        raise DataError("nothing was uploaded: choose image files or one .zip file")
    total = sum(len(f.data) for f in files)
    if total > max_mb * _MB:
        raise DataError(over_limit_message(total, max_mb))
    zips = [f for f in files if f.name.lower().endswith(".zip")]
    if zips and len(files) > 1:
        raise DataError("upload one .zip file on its own, or image files without a zip")
    digest = hashlib.blake2b(digest_size=12)
    for f in sorted(files, key=lambda f: f.name):
        digest.update(f.name.encode() + b"\0" + hashlib.blake2b(f.data, digest_size=16).digest())
    root = workspace / "uploads"
    try:
        root.mkdir(parents=True, exist_ok=True)
        if zips:
            target = root / f"upload-{digest.hexdigest()}.zip"
            if not target.exists():
                _write_atomic(target, zips[0].data)
            return target
        folder = root / f"upload-{digest.hexdigest()}"
        if not folder.is_dir():
            _write_folder(folder, files)
        return folder
    except OSError as e:   # e.g. disk full: nothing half-written is left behind
        raise DataError(f"could not save the upload in {root} ({e.strerror or e}); free some space "
                        "or choose another workspace with CLUSTERLENS_HOME") from None


def _write_folder(folder: Path, files: list[Upload]) -> None:
    """Into a temporary folder of its own, renamed into place when whole: a half-written upload is
    never opened, and two sessions uploading the same files do not write into one folder."""
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".tmp-{folder.name[len('upload-'):]}-"))
    try:
        used: set[str] = set()
        for f in files:
            (tmp / _safe_name(f.name, used)).write_bytes(f.data)
        try:
            tmp.rename(folder)
        except OSError:
            if not folder.is_dir():   # else: the same upload, finished by another session first
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _safe_name(name: str, used: set[str]) -> str:
    """The base name only (a browser may send 'dir/x.png'), cleaned, unique within the upload."""
    base = _UNSAFE.sub("_", Path(name.replace("\\", "/")).name).lstrip(".") or "file"
    stem, dot, ext = base.rpartition(".")
    candidate, n = base, 1
    while candidate in used:
        candidate = f"{stem}-{n}.{ext}" if dot else f"{base}-{n}"
        n += 1
    used.add(candidate)
    return candidate


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex[:8]}.tmp")   # one per writer
    try:
        tmp.write_bytes(data)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
