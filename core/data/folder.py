"""A folder of image files (searched recursively); sub-folder names become classes when they fit."""
from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from core.data.base import ImageDataset, SkippedFile
from core.data.imageio import BadImageError, inside_root, max_pixels, open_image, probe_image
from core.data.manifest import CachedScan, Manifest, ManifestCache, build_manifest, fingerprint_of
from core.errors import DataError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")
_IGNORED_NAMES = {"__MACOSX"}   # resource forks zipped on macOS: never images
NOT_IMAGE_TYPE = "not an image (unsupported file type)"
NOT_UTF8_FILE = "file name is not valid UTF-8; rename it"
NOT_UTF8_FOLDER = "folder name is not valid UTF-8 (its files were not read); rename it"
LINKED_FOLDER = "a link to a folder inside this one (not followed, so nothing is read twice)"
NOT_REGULAR = "not a regular file (a pipe, socket or device)"
Progress = Callable[[int, int], None]


def _hidden(name: str) -> bool:
    return name.startswith(".") or name in _IGNORED_NAMES


def _utf8(text: str) -> bool:
    """False for a name holding bytes that are not UTF-8 (surrogate escapes): SQLite and JSON cannot store it."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _shown(id_: str) -> str:
    """A name with non-UTF-8 bytes as text that can be stored and printed: b'caf\\xe9' -> 'caf\\\\xe9'."""
    return os.fsencode(id_).decode("utf-8", "backslashreplace")


def _refusal(entry: os.DirEntry, root: Path) -> str | None:
    """Why a non-folder entry is not read, or None for a regular file (or a link to one inside ``root``)."""
    try:
        if entry.is_symlink():
            real = inside_root(entry.path, root)
            if real.is_dir():
                return LINKED_FOLDER
            return None if real.is_file() else NOT_REGULAR
        return None if entry.is_file(follow_symlinks=False) else NOT_REGULAR
    except BadImageError as e:
        return str(e)
    except OSError as e:
        return f"cannot read file ({e.strerror or e})"


def scan_folder(root: Path) -> tuple[list[str], list[SkippedFile]]:
    """Visible files under ``root`` as sorted posix ids relative to it, and the entries refused on sight.

    Links to files are followed only when they end inside ``root``. Links to folders are never
    followed: a cycle of them cannot trap the walk, and no file is read twice or from outside.
    """
    files: list[str] = []
    skipped: list[SkippedFile] = []
    folders = [(root, "")]
    while folders:
        folder, folder_id = folders.pop()
        try:
            with os.scandir(folder) as it:
                entries = list(it)
        except OSError as e:
            if not folder_id:
                raise DataError(f"cannot read the folder {root} ({e.strerror or e}); check its permissions") from None
            skipped.append(SkippedFile(folder_id, f"cannot read folder ({e.strerror or e}); its files were not read"))
            continue
        for entry in entries:
            if _hidden(entry.name):
                continue
            id_ = f"{folder_id}/{entry.name}" if folder_id else entry.name
            is_dir = entry.is_dir(follow_symlinks=False)
            if not _utf8(id_):
                skipped.append(SkippedFile(_shown(id_), NOT_UTF8_FOLDER if is_dir else NOT_UTF8_FILE))
            elif is_dir:
                folders.append((Path(entry.path), id_))
            elif (reason := _refusal(entry, root)) is not None:
                skipped.append(SkippedFile(id_, reason))
            else:
                files.append(id_)
    return sorted(files), skipped


def is_image_name(id_: str) -> bool:
    return id_.lower().endswith(IMAGE_EXTENSIONS)


def _class_labels(ids: list[str]) -> tuple[np.ndarray | None, list[str] | None]:
    """Classes from first-level sub-folders, only if every image is in one and there are ≥ 2."""
    if not ids or any("/" not in i for i in ids):
        return None, None
    tops = [i.split("/", 1)[0] for i in ids]
    names = sorted(set(tops))
    if len(names) < 2:
        return None, None
    index = {n: k for k, n in enumerate(names)}
    return np.array([index[t] for t in tops], dtype=np.int64), names


def _read_error(e: OSError) -> str:
    if isinstance(e, FileNotFoundError):
        return "file disappeared during the scan"
    if isinstance(e, PermissionError):
        return "cannot read file (permission denied)"
    return f"cannot read file ({e.strerror or e})"


def _summarise(skipped: list[SkippedFile]) -> str:
    counts = Counter(s.reason for s in skipped)
    return ", ".join(f"{n} {reason}" for reason, n in counts.most_common())


@dataclass
class FolderDataset(ImageDataset):
    """Images under ``root``; ids are posix paths relative to it."""

    manifest: Manifest | None = None   # every image-named file, kept or not

    def path(self, i: int) -> str:
        return str(Path(self.root or "") / self.ids[i])

    def load(self, i: int) -> Image.Image:
        # root: a file swapped for a link to elsewhere since the scan is refused, not read
        return open_image(self.path(i), root=self.root)


def _probe_new(root: Path, manifest: Manifest, known: dict[str, str | None],
               progress: Progress | None) -> dict[str, str | None]:
    """Probe result per content hash: from ``known`` when cached, else by decoding one file holding it."""
    todo = {}
    for e in manifest.entries:
        if e.hash not in known:
            todo.setdefault(e.hash, root / e.id)
    results = {h: known[h] for h in {e.hash for e in manifest.entries} if h in known}
    if not todo:
        return results
    # PIL releases the GIL while decoding, so threads use every core on a first scan.
    workers = min(8, os.cpu_count() or 1, len(todo))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for done, (h, reason) in enumerate(zip(todo, pool.map(probe_image, todo.values()), strict=True), 1):
            results[h] = reason
            if progress is not None:
                progress(done, len(todo))
    return results


def open_folder(
    root: str | os.PathLike, *, cache_dir: str | os.PathLike | None = None, name: str | None = None,
    progress: Progress | None = None,
) -> FolderDataset:
    """Scan ``root``, decode-check each image (cached by content under ``cache_dir``) and build the dataset.

    Bad files are listed in ``skipped`` with their reason; only an empty result is an error.
    ``progress(done, total)`` is called as new files are decode-checked.
    """
    root = Path(root).expanduser().resolve()
    if not _utf8(str(root)):
        raise DataError(f"the folder path {_shown(str(root))} is not valid UTF-8; rename it or move the images "
                        "to a folder with a plain name")
    if not root.exists():
        raise DataError(f"folder {root} does not exist; check the path")
    if not root.is_dir():
        raise DataError(f"{root} is not a folder; give a folder of images or a .zip file")
    accepted = ", ".join(IMAGE_EXTENSIONS)
    files, skipped = scan_folder(root)
    skipped += [SkippedFile(f, NOT_IMAGE_TYPE) for f in files if not is_image_name(f)]
    candidates = [f for f in files if is_image_name(f)]

    cache = ManifestCache(cache_dir) if cache_dir is not None else None
    previous = cache.load(root) if cache is not None else None
    limit = max_pixels()
    manifest = build_manifest(root, candidates, previous.manifest if previous else None,
                              on_error=lambda id_, e: skipped.append(SkippedFile(id_, _read_error(e))))
    # A probe result belongs to the content (hash) and the pixel limit it was judged under.
    known = previous.problems if previous is not None and previous.max_pixels == limit else {}
    problems = _probe_new(root, manifest, known, progress)
    kept = []
    for entry in manifest.entries:
        reason = problems[entry.hash]
        if reason is None:
            kept.append(entry)
        else:
            skipped.append(SkippedFile(entry.id, reason))
    if cache is not None:
        cache.save(root, CachedScan(manifest, problems, limit))

    skipped.sort(key=lambda s: s.id)
    if not kept:
        if not files and not skipped:
            raise DataError(
                f"no images found in {root} (sub-folders searched too); accepted extensions: {accepted}"
            )
        raise DataError(
            f"no usable images in {root}: {len(skipped)} file(s) skipped ({_summarise(skipped)}); "
            f"accepted extensions: {accepted}"
        )
    ids = [e.id for e in kept]
    labels, class_names = _class_labels(ids)
    kept_manifest = Manifest(str(root), kept)
    return FolderDataset(
        name=name or root.name,
        ids=ids,
        labels=labels,
        class_names=class_names,
        skipped=skipped,
        fingerprint=fingerprint_of(kept),
        root=str(root),
        duplicates=kept_manifest.duplicates(),
        manifest=manifest,
    )
