"""What files a folder dataset holds, by content: ids, sizes, mtimes and blake2b hashes.

Hashes are re-used from a previous manifest when size and mtime are unchanged, so re-scanning a
large unchanged folder reads no file contents. A small JSON cache per folder keeps the manifest
and the probe results (why a file cannot be decoded) between sessions.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

CACHE_VERSION = 1
_CHUNK = 1 << 20


@dataclass(frozen=True)
class FileEntry:
    id: str          # posix path relative to the root
    size: int
    mtime_ns: int
    hash: str        # blake2b-128 of the content, hex


def file_hash(path: str | os.PathLike) -> str:
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def fingerprint_of(entries: Iterable[FileEntry]) -> str:
    """Hash over (id, content hash) pairs: a changed, added or removed file changes it."""
    h = hashlib.blake2b(digest_size=16)
    for e in entries:
        h.update(f"{e.id}\0{e.hash}\n".encode())
    return h.hexdigest()


@dataclass
class Manifest:
    root: str
    entries: list[FileEntry] = field(default_factory=list)   # sorted by id

    @property
    def fingerprint(self) -> str:
        return fingerprint_of(self.entries)

    def by_id(self) -> dict[str, FileEntry]:
        return {e.id: e for e in self.entries}

    def duplicates(self) -> list[list[str]]:
        """Groups (each sorted, ≥2 ids) of files with identical content, in id order."""
        groups: dict[str, list[str]] = defaultdict(list)
        for e in self.entries:
            groups[e.hash].append(e.id)
        return sorted((sorted(g) for g in groups.values() if len(g) > 1), key=lambda g: g[0])


def build_manifest(root: str | os.PathLike, ids: Iterable[str], previous: Manifest | None = None, *,
                   on_error: Callable[[str, OSError], None] | None = None) -> Manifest:
    """Stat every id under ``root``; hash only files whose size or mtime changed since ``previous``.

    A file that cannot be read (gone since it was listed, no permission) raises, or with
    ``on_error`` given is reported to it and left out, so one such file does not end the scan.
    """
    root = Path(root)
    old = previous.by_id() if previous is not None else {}
    entries = []
    for id_ in sorted(ids):
        try:
            entries.append(_entry(root, id_, old.get(id_)))
        except OSError as e:
            if on_error is None:
                raise
            on_error(id_, e)
    return Manifest(str(root), entries)


def _entry(root: Path, id_: str, prev: FileEntry | None) -> FileEntry:
    st = (root / id_).stat()
    if prev is not None and prev.size == st.st_size and prev.mtime_ns == st.st_mtime_ns:
        digest = prev.hash
    else:
        digest = file_hash(root / id_)
    return FileEntry(id_, st.st_size, st.st_mtime_ns, digest)


@dataclass
class CachedScan:
    """What the cache remembers about one folder."""

    manifest: Manifest
    problems: dict[str, str | None]   # content hash -> reason it can't be used (None = fine)
    max_pixels: int                   # the limit the problems were found under


class ManifestCache:
    """One JSON file per folder under ``cache_dir`` (e.g. ``<workspace>/manifests/``)."""

    def __init__(self, cache_dir: str | os.PathLike) -> None:
        self.dir = Path(cache_dir)

    def _file(self, root: str | os.PathLike) -> Path:
        key = hashlib.blake2b(str(Path(root).resolve()).encode(), digest_size=12).hexdigest()
        return self.dir / f"folder-{key}.json"

    def load(self, root: str | os.PathLike) -> CachedScan | None:
        try:
            data = json.loads(self._file(root).read_text())
            if data.get("version") != CACHE_VERSION:
                return None
            entries = [FileEntry(**e) for e in data["entries"]]
            return CachedScan(Manifest(data["root"], entries), dict(data["problems"]), int(data["max_pixels"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None   # missing or damaged cache: just scan again

    def save(self, root: str | os.PathLike, scan: CachedScan) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        data = {
            "version": CACHE_VERSION,
            "root": scan.manifest.root,
            "max_pixels": scan.max_pixels,
            "entries": [asdict(e) for e in scan.manifest.entries],
            "problems": scan.problems,
        }
        target = self._file(root)
        # Write then rename, so a crash never leaves a half-written cache behind.
        fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(data, f, separators=(",", ":"))
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
