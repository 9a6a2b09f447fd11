"""A zip archive of images: checked, extracted once into the workspace by content hash, opened as a folder.

Every member is vetted before anything is written (paths, symlinks, counts, sizes, compression
ratios), bytes are counted again while writing (declared sizes can lie), and extraction goes to a
temporary folder that is renamed into place only when complete.
"""
from __future__ import annotations

import os
import re
import shutil
import stat
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from core.data.folder import FolderDataset, _hidden, open_folder
from core.data.manifest import file_hash
from core.errors import DataError

_DRIVE = re.compile(r"^[A-Za-z]:")
_COPY_CHUNK = 1 << 20


@dataclass(frozen=True)
class ZipLimits:
    max_members: int = 100_000
    max_total_bytes: int = 4 * 1024**3        # uncompressed
    max_ratio: float = 200.0                  # uncompressed / compressed, per member ...
    ratio_min_bytes: int = 16 * 1024**2       # ... only for members at least this large


def _size(n: int) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"


def _safe_parts(name: str, archive: Path) -> tuple[str, ...]:
    """The member's path parts, or DataError if it could land outside the target."""
    norm = name.replace("\\", "/")   # archives made on Windows may use backslashes
    if norm.startswith("/") or _DRIVE.match(norm):
        raise DataError(f"{archive.name} is unsafe: member {name!r} has an absolute path; nothing was extracted")
    parts = tuple(p for p in PurePosixPath(norm).parts if p not in ("", "."))
    if ".." in parts:
        raise DataError(f"{archive.name} is unsafe: member {name!r} points outside the archive (..); "
                        "nothing was extracted")
    return parts


def _check_members(zf: zipfile.ZipFile, archive: Path, limits: ZipLimits) -> list[zipfile.ZipInfo]:
    infos = zf.infolist()
    if len(infos) > limits.max_members:
        raise DataError(f"{archive.name} has {len(infos):,} members, over the limit of {limits.max_members:,}; "
                        "split it or extract it yourself and give the folder")
    total = 0
    for info in infos:
        _safe_parts(info.filename, archive)
        if stat.S_ISLNK(info.external_attr >> 16):
            raise DataError(f"{archive.name} is unsafe: member {info.filename!r} is a symbolic link; "
                            "nothing was extracted")
        if info.flag_bits & 0x1:
            raise DataError(f"{archive.name} is password-protected ({info.filename!r}); "
                            "extract it yourself and give the folder")
        total += info.file_size
        if (info.file_size >= limits.ratio_min_bytes
                and info.file_size > limits.max_ratio * max(info.compress_size, 1)):
            raise DataError(
                f"{archive.name} looks like a zip bomb: {info.filename!r} expands "
                f"{info.file_size / max(info.compress_size, 1):.0f}x (limit {limits.max_ratio:g}x); "
                "nothing was extracted"
            )
    if total > limits.max_total_bytes:
        raise DataError(f"{archive.name} expands to {_size(total)}, over the {_size(limits.max_total_bytes)} "
                        "limit; nothing was extracted")
    return infos


def _extract(zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo], dest: Path, archive: Path,
             limits: ZipLimits) -> None:
    written = 0
    for info in infos:
        parts = _safe_parts(info.filename, archive)
        if not parts or any(_hidden(p) for p in parts):
            continue   # hidden files and __MACOSX forks are ignored by the folder reader anyway
        target = dest.joinpath(*parts)
        if info.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        with zf.open(info) as src, open(target, "wb") as out:
            while chunk := src.read(_COPY_CHUNK):
                written += len(chunk)
                if written > limits.max_total_bytes:
                    raise DataError(f"{archive.name} expands past the {_size(limits.max_total_bytes)} "
                                    "limit (its declared sizes are wrong); nothing was kept")
                out.write(chunk)


def extract_zip(archive: str | os.PathLike, datasets_dir: str | os.PathLike,
                limits: ZipLimits = ZipLimits()) -> Path:
    """Extract ``archive`` into ``datasets_dir/zip-<content hash>/`` (re-used if present); return it."""
    archive = Path(archive).expanduser().resolve()
    if not archive.is_file():
        raise DataError(f"zip file {archive} does not exist; check the path")
    if not zipfile.is_zipfile(archive):
        raise DataError(f"{archive.name} is not a zip archive (it has a .zip name but not zip contents); "
                        "give a real .zip file or a folder of images")
    datasets_dir = Path(datasets_dir)
    final = datasets_dir / f"zip-{file_hash(archive)}"
    if final.is_dir():
        return final
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = _check_members(zf, archive, limits)
            datasets_dir.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(dir=datasets_dir, prefix=".tmp-zip-"))
            try:
                _extract(zf, infos, tmp, archive, limits)
                try:
                    os.rename(tmp, final)
                except OSError:
                    if not final.is_dir():   # not a concurrent extraction of the same archive
                        raise
            finally:
                if tmp.exists():
                    shutil.rmtree(tmp, ignore_errors=True)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError) as e:
        raise DataError(f"{archive.name} is a damaged or unsupported zip archive ({e}); "
                        "re-create it or extract it yourself and give the folder") from None
    except OSError as e:   # e.g. disk full, or a file and a folder with the same name
        raise DataError(f"could not extract {archive.name} into {datasets_dir}: {e}") from None
    return final


def _content_root(folder: Path) -> Path:
    """Unwrap a single top-level folder (``photos.zip`` -> ``photos/cats, photos/dogs``)."""
    entries = [p for p in folder.iterdir() if not _hidden(p.name)]
    if len(entries) == 1 and entries[0].is_dir():
        return _content_root(entries[0])
    return folder


def open_zip(archive: str | os.PathLike, *, workspace: str | os.PathLike,
             limits: ZipLimits = ZipLimits()) -> FolderDataset:
    workspace = Path(workspace)
    folder = extract_zip(archive, workspace / "datasets", limits)
    root = _content_root(folder)
    try:
        return open_folder(root, cache_dir=workspace / "manifests", name=Path(archive).stem)
    except DataError as e:   # speak of the archive, not of our extraction folder
        raise DataError(str(e).replace(str(root.resolve()), Path(archive).name)) from None
