"""On-disk feature cache keyed by content; re-running with the same inputs never recomputes.

An entry is ``<root>/<key>/index.json`` + ``features.npy``: one float32 matrix, read back
memory-mapped (read-only), so a million rows are never held twice. Entries written before this
layout (``shard-00000.npy`` … listed in the index) are still read.

Extraction streams into ``<root>/.partial-<key>/``: every few thousand rows (or every
:data:`FLUSH_S` seconds, and when stopped) a ``rows-<start>-<stop>.npy`` shard is written
(temp file + rename) and listed in the partial's ``index.json`` with its CRC-32. A stopped,
interrupted or killed extraction therefore keeps its shards, and the next one with the same key
extracts only the rows no valid shard holds (a damaged or half-written shard is redone). When
every row is there the shards are assembled into the entry's ``features.npy``
(``np.lib.format.open_memmap``, one shard in memory at a time) in a temp folder
``<root>/.tmp-<key>-*`` that is renamed into place in one step, and the partial is removed.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from core.data.base import ImageDataset
from core.errors import Cancelled, ParameterError
from core.features import extract as _extract
from core.features.backbones import get_backbone
from core.features.preprocess import PREPROCESS_VERSION

try:   # why: two processes extracting the same key must not write one partial; POSIX only
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

SHARD_ROWS = 2048          # most rows per partial shard (at most SHARD_ROWS x D float32 in memory)
FLUSH_S = 15.0             # a shard is written at least this often (slow backbones: 224 px on a CPU)
INDEX = "index.json"
MATRIX = "features.npy"
FORMAT = "clusterlens-features/2"          # index.json + features.npy
LEGACY_FORMAT = "clusterlens-features/1"   # index.json + shard-00000.npy …
PARTIAL_FORMAT = "clusterlens-partial/1"
_KEY_RE = re.compile(r"^[0-9a-f]{16,64}$")
_STALE_TMP_S = 24 * 3600


def feature_key_parts(dataset: ImageDataset, backbone: str, *, image_size: int | None = None,
                      pca_dim: int | None = None, checkpoint: str | os.PathLike | None = None,
                      checkpoint_arch: str | None = None, seed: int = 0) -> dict[str, Any]:
    """Everything that changes the numbers: data, backbone + weights, effective size, PCA."""
    bb = get_backbone(backbone, checkpoint, checkpoint_arch)
    parts: dict[str, Any] = {
        "dataset": dataset.fingerprint, "n": len(dataset), "backbone": backbone,
        "weights": bb.weights_id(), "image_size": _extract.resolve_image_size(bb, dataset, image_size),
        "pca_dim": pca_dim, "preprocess": PREPROCESS_VERSION,
    }
    if pca_dim is not None:
        parts["pca_seed"] = seed   # why: PCA may use a randomized solver
    return parts


def feature_key(parts: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:32]


class FeatureCache:
    """``get(key) -> array | None``, ``put(key, array, meta)``; entries are immutable."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    def _dir(self, key: str) -> Path:
        if not _KEY_RE.match(key):   # why: a key becomes a folder name; refuse path tricks
            raise ParameterError(f"feature cache key {key!r} is not a hex digest (use feature_key())")
        return self.root / key

    def __contains__(self, key: str) -> bool:
        return (self._dir(key) / INDEX).is_file()

    def meta(self, key: str) -> dict[str, Any] | None:
        path = self._dir(key) / INDEX
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return None

    def get(self, key: str, *, mmap: bool = True) -> np.ndarray | None:
        """The cached array, or None when absent or unreadable (then it is recomputed).

        Memory-mapped read-only by default (pages are read when touched; nothing is copied);
        ``mmap=False`` reads it into memory.
        """
        index = self.meta(key)
        if index is None or index.get("format") not in (FORMAT, LEGACY_FORMAT):
            return None
        d = self._dir(key)
        try:
            if index["format"] == FORMAT:
                arr = np.load(d / index["file"], mmap_mode="r" if mmap else None, allow_pickle=False)
                arr = np.asarray(arr)   # a plain (read-only) ndarray view; the map stays open under it
            else:
                parts = [np.load(d / name, allow_pickle=False) for name in index["shards"]]
                arr = np.concatenate(parts) if len(parts) > 1 else parts[0]
        except (OSError, ValueError, KeyError, IndexError) as e:
            log.warning("feature cache entry %s is unreadable (%s); recomputing", key, e)
            return None
        if list(arr.shape) != index["shape"] or str(arr.dtype) != index["dtype"]:
            log.warning("feature cache entry %s does not match its index; recomputing", key)
            return None
        return arr

    def put(self, key: str, array: np.ndarray, meta: dict[str, Any] | None = None) -> Path:
        """Write an entry atomically (temp folder + rename). An existing readable entry is kept."""
        self._begin()
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{key}-", dir=self.root))
        try:
            arr = np.asarray(array)
            _write(tmp / MATRIX, lambda f: np.save(f, arr))
            return self._publish(key, tmp, list(arr.shape), str(arr.dtype), meta)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    # -- writing -------------------------------------------------------------------------
    def _begin(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self._remove_stale_temps()

    def _publish(self, key: str, tmp: Path, shape: list[int], dtype: str, meta: dict[str, Any] | None) -> Path:
        """Write ``tmp``'s index and rename ``tmp`` (holding MATRIX) into the entry's place."""
        final = self._dir(key)
        index = {"format": FORMAT, "key": key, "shape": shape, "dtype": dtype, "file": MATRIX,
                 "created": time.time(), "meta": meta or {}}
        _write(tmp / INDEX, lambda f: f.write(json.dumps(index, indent=1, default=str).encode()))
        try:
            os.rename(tmp, final)
        except OSError:
            if self.get(key) is not None:   # a lost race with an identical writer: keep theirs
                return final
            if not final.exists():
                raise
            # an unreadable old entry is in the way: move it aside (removed as a stale temp later)
            os.rename(final, Path(tempfile.mkdtemp(prefix=f".tmp-{key}-broken-", dir=self.root)) / "old")
            os.rename(tmp, final)
        _fsync_dir(self.root)
        return final

    def _remove_stale_temps(self) -> None:
        now = time.time()
        for p in self.root.glob(".tmp-*"):
            try:
                if now - p.stat().st_mtime > _STALE_TMP_S:
                    shutil.rmtree(p, ignore_errors=True)
            except OSError:
                pass

    def partial(self, key: str) -> Path:
        """Where the shards of an unfinished extraction of ``key`` live."""
        self._dir(key)   # validates the key
        return self.root / f".partial-{key}"


def _write(path: Path, fill: Any) -> None:
    with open(path, "wb") as f:
        fill(f)
        f.flush()
        os.fsync(f.fileno())   # why: data on disk before the rename publishes the entry


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):   # why: makes a rename durable; not possible everywhere
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _crc(a: np.ndarray) -> int:
    return zlib.crc32(np.ascontiguousarray(a).data)


class ShardWriter:
    """The shards of one unfinished extraction (``FeatureCache.partial(key)``).

    ``todo()`` lists the row ranges no valid shard holds; ``write(start, raw)`` publishes one
    shard (any writer: this machine's loop or Ray Data's results), then the index; ``assemble``
    makes the cache entry once ``todo()`` is empty. Raw features, as :class:`FeatureMapper`
    gives them: L2-normalising (and pixels' PCA) happen in ``assemble``.
    """

    def __init__(self, cache: FeatureCache, key: str, n: int, meta: dict[str, Any]) -> None:
        self.cache, self.key, self.n, self.meta = cache, key, int(n), meta
        self.dir = cache.partial(key)
        self.shards: list[dict[str, Any]] = []
        self.dim: int | None = None
        self.redone = 0          # shards found damaged and dropped when opened
        self._lock_fd: int | None = None

    # -- opening ---------------------------------------------------------------------------
    def open(self) -> ShardWriter:
        """Lock the partial (another process on the same key: a private partial instead) and
        keep the shards that are listed, readable, the right shape and unchanged (CRC-32)."""
        self.cache._begin()
        self.dir.mkdir(parents=True, exist_ok=True)
        if not self._lock():
            log.warning("features %s are being extracted by another process; extracting separately", self.key)
            self.dir = Path(tempfile.mkdtemp(prefix=f".tmp-{self.key}-partial-", dir=self.cache.root))
            return self
        index = _read_json(self.dir / INDEX)
        if (index is None or index.get("format") != PARTIAL_FORMAT or index.get("n") != self.n
                or index.get("key") != self.key):
            return self
        for s in index.get("shards", []):
            if self._valid(s, index.get("dim")):
                self.shards.append(s)
                self.dim = int(index["dim"])
            else:
                self.redone += 1
                log.warning("feature shard %s of %s is damaged; its rows are extracted again", s.get("name"), self.key)
        self.shards.sort(key=lambda s: s["start"])
        return self

    def _lock(self) -> bool:
        if fcntl is None:
            return True
        fd = os.open(self.dir / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._lock_fd = fd
        return True

    def _valid(self, s: dict[str, Any], dim: Any) -> bool:
        try:
            start, stop = int(s["start"]), int(s["stop"])
            if not (0 <= start < stop <= self.n) or not isinstance(dim, int):
                return False
            a = np.load(self.dir / s["name"], allow_pickle=False)
            return a.dtype == np.float32 and a.shape == (stop - start, dim) and _crc(a) == s["crc32"]
        except (OSError, ValueError, KeyError, TypeError):
            return False

    def close(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)   # releases the flock
            self._lock_fd = None

    def __enter__(self) -> ShardWriter:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- state -----------------------------------------------------------------------------
    @property
    def done_rows(self) -> int:
        return sum(s["stop"] - s["start"] for s in self.shards)

    def todo(self) -> list[tuple[int, int]]:
        """Half-open row ranges no shard holds, in order."""
        out, at = [], 0
        for s in self.shards:   # sorted, never overlapping
            if s["start"] > at:
                out.append((at, s["start"]))
            at = max(at, s["stop"])
        if at < self.n:
            out.append((at, self.n))
        return out

    # -- writing ---------------------------------------------------------------------------
    def write(self, start: int, raw: np.ndarray) -> None:
        """Publish rows [start, start + len(raw)) as one shard (temp file + rename), then the index."""
        raw = np.ascontiguousarray(raw, dtype=np.float32)
        stop = start + len(raw)
        if len(raw) == 0:
            return
        if self.dim is None:
            self.dim = int(raw.shape[1])
        if raw.ndim != 2 or raw.shape[1] != self.dim or not 0 <= start < stop <= self.n:
            raise ValueError(f"shard rows [{start}, {stop}) x {raw.shape[1:]} do not fit {self.n} x {self.dim}")
        if any(s["start"] < stop and start < s["stop"] for s in self.shards):
            raise ValueError(f"shard rows [{start}, {stop}) overlap a written shard")
        name = f"rows-{start:010d}-{stop:010d}.npy"
        tmp = self.dir / f".{name}.tmp"
        _write(tmp, lambda f: np.save(f, raw))
        os.replace(tmp, self.dir / name)
        self.shards.append({"name": name, "start": start, "stop": stop, "crc32": _crc(raw)})
        self.shards.sort(key=lambda s: s["start"])
        index = {"format": PARTIAL_FORMAT, "key": self.key, "n": self.n, "dim": self.dim,
                 "shards": self.shards, "meta": self.meta}
        tmp_index = self.dir / f".{INDEX}.tmp"
        _write(tmp_index, lambda f: f.write(json.dumps(index, default=str).encode()))
        os.replace(tmp_index, self.dir / INDEX)

    def assemble(self, pca_dim: int | None = None, seed: int = 0) -> np.ndarray:
        """Every row is in a shard: build the entry (one memory-mapped float32 matrix), publish
        it, remove the partial, return the entry memory-mapped."""
        if self.todo():
            raise ValueError(f"rows {self.todo()[:3]} of {self.key} are not extracted yet")
        assert self.dim is not None
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{self.key}-", dir=self.cache.root))
        try:
            if pca_dim is not None:   # pixels' PCA is fitted on every row: the raw matrix in memory
                raw = np.concatenate([self._load(s) for s in self.shards])
                _write(tmp / MATRIX, lambda f: np.save(f, _extract.finish(raw, pca_dim, seed)))
                shape = [self.n, int(pca_dim)]
            else:
                out = np.lib.format.open_memmap(tmp / MATRIX, mode="w+", dtype=np.float32, shape=(self.n, self.dim))
                for s in self.shards:   # one shard in memory at a time, normalised into the map
                    _extract.l2_normalize(self._load(s), out=out[s["start"]: s["stop"]])
                out.flush()
                del out
                with open(tmp / MATRIX, "rb+") as f:
                    os.fsync(f.fileno())
                shape = [self.n, self.dim]
            self.cache._publish(self.key, tmp, shape, "float32", self.meta)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        self.close()
        shutil.rmtree(self.dir, ignore_errors=True)
        arr = self.cache.get(self.key)
        if arr is None:   # pragma: no cover - the disk lost what was just written
            raise OSError(f"feature cache entry {self.key} could not be read back after writing it")
        return arr

    def _load(self, s: dict[str, Any]) -> np.ndarray:
        return np.load(self.dir / s["name"], allow_pickle=False)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def extract_to_cache(cache: FeatureCache, key: str, dataset: ImageDataset, backbone: str, *,
                     meta: dict[str, Any], image_size: int | None = None, batch_size: int = 64,
                     device: str = "auto", pca_dim: int | None = None,
                     checkpoint: str | os.PathLike | None = None, checkpoint_arch: str | None = None,
                     seed: int = 0, progress: _extract.Progress | None = None,
                     should_stop: Callable[[], bool] | None = None) -> np.ndarray:
    """Extract ``dataset`` into cache entry ``key`` shard by shard, resuming an earlier partial.

    ``progress(done, total, images_per_s)``: done counts the rows kept from before too, the rate
    only this call's. A stop (``should_stop()``), Ctrl-C or an error keeps every finished batch
    (the rows in memory are written as one more shard first) and raises; the next call with the
    same key extracts only what is missing. Returns the entry, memory-mapped.
    """
    _extract.check_pca_dim(backbone, pca_dim)
    n = len(dataset)
    with ShardWriter(cache, key, n, meta) as writer:
        todo = writer.todo()
        if todo:
            fm = _extract.FeatureMapper(dataset, backbone, image_size=image_size, batch_size=batch_size,
                                        device=device, checkpoint=checkpoint, checkpoint_arch=checkpoint_arch)
            _stream(fm, writer, todo, progress, should_stop)
        return writer.assemble(pca_dim, seed)


def _stream(fm: _extract.FeatureMapper, writer: ShardWriter, todo: list[tuple[int, int]],
            progress: _extract.Progress | None, should_stop: Callable[[], bool] | None) -> None:
    n, kept = writer.n, writer.done_rows
    buf: np.ndarray | None = None        # one shard's rows, filled batch by batch
    buf_start, buf_rows = 0, 0
    new, t0 = 0, time.perf_counter()
    last_flush = t0

    def flush() -> None:
        nonlocal buf_rows, last_flush
        if buf is not None and buf_rows:
            writer.write(buf_start, buf[:buf_rows])
        buf_rows, last_flush = 0, time.perf_counter()

    try:
        for start, f in fm.run(todo, should_stop):
            if buf_rows and start != buf_start + buf_rows:   # the next range: shards never span a gap
                flush()
            if buf is None or buf.shape[1] != f.shape[1] or buf_rows + len(f) > len(buf):
                flush()
                buf = np.empty((max(SHARD_ROWS, len(f)), f.shape[1]), np.float32)
            if not buf_rows:
                buf_start = start
            buf[buf_rows: buf_rows + len(f)] = f
            buf_rows += len(f)
            new += len(f)
            if buf_rows >= SHARD_ROWS or time.perf_counter() - last_flush >= FLUSH_S:
                flush()
            if progress is not None:
                progress(kept + new, n, new / max(time.perf_counter() - t0, 1e-9))
    except BaseException as e:   # stop, Ctrl-C, a bad file: keep every finished batch
        with contextlib.suppress(Exception):
            flush()
        if isinstance(e, Cancelled):
            done = kept + new
            raise Cancelled(f"feature extraction stopped after {done:,} of {n:,} images; the {done:,} "
                            "extracted are kept, and extracting again resumes from there") from None
        raise
    flush()


def cached_extract(cache: FeatureCache, dataset: ImageDataset, backbone: str = "efficientnet_lite0", *,
                   image_size: int | None = None, batch_size: int = 64, device: str = "auto",
                   pca_dim: int | None = None, checkpoint: str | os.PathLike | None = None,
                   checkpoint_arch: str | None = None, seed: int = 0,
                   progress: _extract.Progress | None = None,
                   should_stop: Callable[[], bool] | None = None) -> tuple[np.ndarray, bool, str]:
    """(features, from_cache, key). Streams into the cache and resumes a stopped extraction
    (:func:`extract_to_cache`); the features come back memory-mapped, read-only. A dataset
    without a fingerprint is extracted in memory but not cached (key ""), since nothing would
    tell its entry apart from another dataset's."""
    opts = dict(image_size=image_size, pca_dim=pca_dim, checkpoint=checkpoint,
                checkpoint_arch=checkpoint_arch, seed=seed)
    if not dataset.fingerprint:
        log.warning("dataset %r has no fingerprint; features are not cached", dataset.name)
        feats = _extract.extract_features(dataset, backbone, batch_size=batch_size, device=device,
                                          progress=progress, should_stop=should_stop, **opts)
        return feats, False, ""
    parts = feature_key_parts(dataset, backbone, **opts)
    key = feature_key(parts)
    hit = cache.get(key)
    if hit is not None and len(hit) == len(dataset):
        return hit, True, key
    feats = extract_to_cache(cache, key, dataset, backbone, meta={**parts, "dataset_name": dataset.name},
                             batch_size=batch_size, device=device, progress=progress,
                             should_stop=should_stop, **opts)
    return feats, False, key
