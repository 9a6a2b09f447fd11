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
from core.data.imageio import max_pixels, open_image, probe_image
from core.data.manifest import CachedScan, Manifest, ManifestCache, build_manifest, fingerprint_of
from core.errors import DataError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")
_IGNORED_NAMES = {"__MACOSX"}   # resource forks zipped on macOS: never images
Progress = Callable[[int, int], None]


def _hidden(name: str) -> bool:
    return name.startswith(".") or name in _IGNORED_NAMES


def scan_files(root: Path) -> list[str]:
    """All visible files under ``root`` as sorted posix ids relative to it."""
    ids = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not _hidden(d)]   # prunes the walk
        rel = Path(dirpath).relative_to(root)
        for name in filenames:
            if not _hidden(name):
                ids.append((rel / name).as_posix())
    return sorted(ids)


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
        return open_image(self.path(i))


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
    if not root.exists():
        raise DataError(f"folder {root} does not exist; check the path")
    if not root.is_dir():
        raise DataError(f"{root} is not a folder; give a folder of images or a .zip file")
    accepted = ", ".join(IMAGE_EXTENSIONS)
    files = scan_files(root)
    skipped = [SkippedFile(f, "not an image (unsupported file type)") for f in files if not is_image_name(f)]
    candidates = [f for f in files if is_image_name(f)]

    cache = ManifestCache(cache_dir) if cache_dir is not None else None
    previous = cache.load(root) if cache is not None else None
    limit = max_pixels()
    manifest = build_manifest(root, candidates, previous.manifest if previous else None)
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
        if not files:
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
