"""A zip archive of images: checked, extracted once into the workspace by content hash, opened as a folder.

Every member is vetted before anything is written (paths, symlinks, counts, sizes, compression
ratios of each image and of the whole archive), bytes are counted again while writing (declared
sizes can lie), and extraction goes to a temporary folder that is renamed into place only when
complete. Only images are written: other members are listed as skipped without being unpacked,
through a small hidden record in the extraction folder (which also names the archive it came from).
"""
from __future__ import annotations

import copy
import json
import os
import re
import shutil
import stat
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from core.data.base import SkippedFile
from core.data.folder import IMAGE_EXTENSIONS, FolderDataset, _hidden, is_image_name, open_folder
from core.data.manifest import file_hash
from core.errors import DataError

_DRIVE = re.compile(r"^[A-Za-z]:")
_COPY_CHUNK = 1 << 20
RECORD = ".clusterlens-zip.json"   # hidden: the folder scan and the content-root unwrap pass it by
NOT_AN_IMAGE = "not an image (unsupported file type)"   # open_folder's words for the same files


@dataclass(frozen=True)
class ZipLimits:
    max_members: int = 100_000
    max_total_bytes: int = 4 * 1024**3        # uncompressed images, all together
    # Uncompressed / compressed, for each image and for the whole archive. PNG and JPEG do not
    # compress (~1x); BMP and TIFF of flat scans reach 50-100x; zeros deflate ~1000x.
    max_ratio: float = 200.0
    ratio_min_bytes: int = 1024**2            # a member or archive expanding to less is never a bomb


def _size(n: float) -> str:
    if n >= 1e8:
        return f"{n / 1e9:.1f} GB"
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n / 1e3:.0f} kB"


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


@dataclass
class _Plan:
    """What extraction will do: write the images, make the folders, list the other files."""

    images: list[tuple[zipfile.ZipInfo, tuple[str, ...]]] = field(default_factory=list)
    dirs: list[tuple[str, ...]] = field(default_factory=list)
    others: list[tuple[str, ...]] = field(default_factory=list)

    def root(self) -> tuple[str, ...]:
        """The single top-level folder(s) to unwrap (``photos.zip`` -> ``photos/cats, photos/dogs``)."""
        entries = [p for _, p in self.images] + self.dirs + self.others
        dirs = set(self.dirs)
        root: tuple[str, ...] = ()
        while entries:
            d = len(root)
            children = {p[d] for p in entries if len(p) > d}
            child_is_dir = all(len(p) > d + 1 or p in dirs for p in entries if len(p) > d)
            if len(children) != 1 or not child_is_dir:
                break
            root += (children.pop(),)
            entries = [p for p in entries if len(p) > d + 1]
        return root


def _plan(infos: list[zipfile.ZipInfo], archive: Path) -> _Plan:
    plan = _Plan()
    for info in infos:
        parts = _safe_parts(info.filename, archive)
        if not parts or any(_hidden(p) for p in parts):
            continue   # hidden files and __MACOSX forks: the folder reader ignores them too
        if info.is_dir():
            plan.dirs.append(parts)
        elif is_image_name(parts[-1]):
            plan.images.append((info, parts))
        else:
            plan.others.append(parts)   # listed as skipped, never unpacked
    return plan


def _bomb(archive: Path, what: str, size: int, packed: int, limits: ZipLimits) -> None:
    if size > limits.ratio_min_bytes and size > limits.max_ratio * max(packed, 1):
        raise DataError(
            f"{archive.name} looks like a zip bomb: {what} expands {size / max(packed, 1):.0f}x "
            f"(limit {limits.max_ratio:g}x) to {_size(size)}; nothing was extracted. If these are real "
            "images, extract the archive yourself and open the folder"
        )


def _check_members(zf: zipfile.ZipFile, archive: Path, limits: ZipLimits) -> _Plan:
    infos = zf.infolist()
    if len(infos) > limits.max_members:
        raise DataError(f"{archive.name} has {len(infos):,} members, over the limit of {limits.max_members:,}; "
                        "split it or extract it yourself and give the folder")
    for info in infos:
        _safe_parts(info.filename, archive)
        if stat.S_ISLNK(info.external_attr >> 16):
            raise DataError(f"{archive.name} is unsafe: member {info.filename!r} is a symbolic link; "
                            "nothing was extracted")
        if info.flag_bits & 0x1:
            raise DataError(f"{archive.name} is password-protected ({info.filename!r}); "
                            "extract it yourself and give the folder")
    plan = _plan(infos, archive)
    total = 0
    for info, _ in plan.images:   # only what is written can fill the disk
        total += info.file_size
        _bomb(archive, repr(info.filename), info.file_size, info.compress_size, limits)
    if total > limits.max_total_bytes:
        raise DataError(f"{archive.name} expands to {_size(total)}, over the {_size(limits.max_total_bytes)} "
                        "limit; nothing was extracted")
    # many members each too small to judge can still add up to a bomb
    packed = archive.stat().st_size
    _bomb(archive, f"the whole archive ({_size(packed)})", total, packed, limits)
    return plan


def _copy_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, archive: Path,
                 limits: ZipLimits, written: int) -> int:
    """Copy one member, counting its bytes and checking its CRC here: zipfile would stop at the
    declared size without a word, but a member holding more than it declares was made to mislead."""
    grown = copy.copy(info)
    grown.file_size = info.file_size + 1   # one byte past the declared size shows the lie
    del grown.CRC                          # checked below, over what was really read
    crc = n = 0
    with zf.open(grown) as src, open(target, "wb") as out:
        while chunk := src.read(_COPY_CHUNK):
            n += len(chunk)
            written += len(chunk)
            if n > info.file_size:
                raise DataError(f"{archive.name} is damaged or crafted: member {info.filename!r} holds more "
                                f"than the {info.file_size:,} bytes it declares; nothing was kept")
            if written > limits.max_total_bytes:
                raise DataError(f"{archive.name} expands past the {_size(limits.max_total_bytes)} "
                                "limit (its declared sizes are wrong); nothing was kept")
            crc = zlib.crc32(chunk, crc)
            out.write(chunk)
    if crc != info.CRC:
        raise zipfile.BadZipFile(f"Bad CRC-32 for file {info.filename!r}")
    return written


def _extract(zf: zipfile.ZipFile, plan: _Plan, dest: Path, archive: Path, limits: ZipLimits) -> None:
    for parts in plan.dirs:
        dest.joinpath(*parts).mkdir(parents=True, exist_ok=True)
    written = 0
    for info, parts in plan.images:
        target = dest.joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        written = _copy_member(zf, info, target, archive, limits, written)
    root = plan.root()
    n = len(root)
    _write_json(dest / RECORD, {
        "version": 1, "root": "/".join(root), "images": len(plan.images),
        "skipped": sorted("/".join(p[n:]) for p in plan.others), "archives": [_archive_stamp(archive)],
    })


# -- the record: what was left out, and which archive(s) the folder came from -----------------

@dataclass(frozen=True)
class ZipRecord:
    root: tuple[str, ...]                 # the content root inside the extraction folder
    images: int                           # image members written
    skipped: list[str]                    # other members (ids relative to the root), not written
    archives: list[dict]                  # {"path", "size", "mtime_ns"} of each archive seen with this content


def read_record(folder: str | os.PathLike) -> ZipRecord | None:
    """The extraction's record, or None (a folder extracted before records were kept, or damaged)."""
    try:
        data = json.loads((Path(folder) / RECORD).read_text())
        return ZipRecord(tuple(p for p in str(data["root"]).split("/") if p), int(data["images"]),
                         [str(s) for s in data["skipped"]], [dict(a) for a in data["archives"]])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _archive_stamp(archive: Path) -> dict:
    st = archive.stat()
    return {"path": str(archive), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(path)


def _remember_archive(folder: Path, archive: Path) -> None:
    """Add ``archive`` to the record of a re-used extraction, so the storage listing knows who uses it."""
    record = read_record(folder)
    stamp = _archive_stamp(archive)
    if record is None or stamp in record.archives:
        return
    try:
        data = json.loads((folder / RECORD).read_text())
        data["archives"] = [a for a in record.archives if a.get("path") != stamp["path"]] + [stamp]
        _write_json(folder / RECORD, data)
    except OSError:
        pass   # a read-only workspace still opens; only the listing knows less


# -- extraction and opening ------------------------------------------------------------------

def extract_zip(archive: str | os.PathLike, datasets_dir: str | os.PathLike,
                limits: ZipLimits = ZipLimits()) -> Path:
    """Extract ``archive``'s images into ``datasets_dir/zip-<content hash>/`` (re-used if present); return it."""
    archive = Path(archive).expanduser().resolve()
    if not archive.is_file():
        raise DataError(f"zip file {archive} does not exist; check the path")
    if not zipfile.is_zipfile(archive):
        raise DataError(f"{archive.name} is not a zip archive (it has a .zip name but not zip contents); "
                        "give a real .zip file or a folder of images")
    datasets_dir = Path(datasets_dir)
    final = datasets_dir / f"zip-{file_hash(archive)}"
    if final.is_dir():
        _remember_archive(final, archive)
        return final
    try:
        with zipfile.ZipFile(archive) as zf:
            plan = _check_members(zf, archive, limits)
            datasets_dir.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(dir=datasets_dir, prefix=".tmp-zip-"))
            try:
                _extract(zf, plan, tmp, archive, limits)
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


def _no_images(name: str, skipped: list[SkippedFile]) -> DataError:
    accepted = ", ".join(IMAGE_EXTENSIONS)
    if not skipped:
        return DataError(f"no images found in {name} (sub-folders searched too); accepted extensions: {accepted}")
    return DataError(f"no usable images in {name}: {len(skipped)} file(s) skipped ({len(skipped)} {NOT_AN_IMAGE}); "
                     f"accepted extensions: {accepted}")


def open_zip(archive: str | os.PathLike, *, workspace: str | os.PathLike,
             limits: ZipLimits = ZipLimits()) -> FolderDataset:
    workspace = Path(workspace)
    name = Path(archive).name
    folder = extract_zip(archive, workspace / "datasets", limits)
    record = read_record(folder)
    if record is None:   # extracted before non-images were left out: they are on disk, open_folder lists them
        root, skipped = _content_root(folder), []
    else:
        root, skipped = folder.joinpath(*record.root), [SkippedFile(s, NOT_AN_IMAGE) for s in record.skipped]
        if record.images == 0:
            raise _no_images(name, skipped)
    try:
        ds = open_folder(root, cache_dir=workspace / "manifests", name=Path(archive).stem)
    except DataError as e:   # speak of the archive, not of our extraction folder
        raise DataError(str(e).replace(str(root.resolve()), name)) from None
    if skipped:
        ds.skipped = sorted([*ds.skipped, *skipped], key=lambda s: s.id)
    return ds
