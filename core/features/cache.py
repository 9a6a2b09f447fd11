"""On-disk feature cache keyed by content; re-running with the same inputs never recomputes.

Layout: ``<root>/<key>/index.json`` + ``shard-00000.npy`` … (``SHARD_ROWS`` rows each), so a
distributed writer can later produce shards independently. An entry is written in a temp folder
``<root>/.tmp-<key>-*`` and renamed into place in one step: a crash leaves only a temp folder,
which :meth:`FeatureCache.get` never reads.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from core.data.base import ImageDataset
from core.errors import ParameterError
from core.features import extract as _extract
from core.features.backbones import get_backbone
from core.features.preprocess import PREPROCESS_VERSION

log = logging.getLogger(__name__)

SHARD_ROWS = 16_384
INDEX = "index.json"
FORMAT = "clusterlens-features/1"
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

    def get(self, key: str) -> np.ndarray | None:
        """The cached array, or None when absent or unreadable (then it is recomputed)."""
        index = self.meta(key)
        if index is None or index.get("format") != FORMAT:
            return None
        try:
            parts = [np.load(self._dir(key) / name, allow_pickle=False) for name in index["shards"]]
            arr = np.concatenate(parts) if len(parts) > 1 else parts[0]
        except (OSError, ValueError, KeyError, IndexError) as e:
            log.warning("feature cache entry %s is unreadable (%s); recomputing", key, e)
            return None
        if list(arr.shape) != index["shape"] or str(arr.dtype) != index["dtype"]:
            log.warning("feature cache entry %s does not match its index; recomputing", key)
            return None
        return arr

    def put(self, key: str, array: np.ndarray, meta: dict[str, Any] | None = None) -> Path:
        """Write an entry atomically (temp folder + rename). An existing entry is kept."""
        final = self._dir(key)
        self.root.mkdir(parents=True, exist_ok=True)
        self._remove_stale_temps()
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{key}-", dir=self.root))
        try:
            names = []
            for s, start in enumerate(range(0, max(len(array), 1), SHARD_ROWS)):
                names.append(f"shard-{s:05d}.npy")
                _write(tmp / names[-1], lambda f, a=array[start: start + SHARD_ROWS]: np.save(f, a))
            index = {"format": FORMAT, "key": key, "shape": list(array.shape), "dtype": str(array.dtype),
                     "shard_rows": SHARD_ROWS, "shards": names, "created": time.time(), "meta": meta or {}}
            _write(tmp / INDEX, lambda f: f.write(json.dumps(index, indent=1, default=str).encode()))
            try:
                os.rename(tmp, final)
            except OSError:
                if not (final / INDEX).is_file():   # not a lost race with an identical writer
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return final

    def _remove_stale_temps(self) -> None:
        now = time.time()
        for p in self.root.glob(".tmp-*"):
            try:
                if now - p.stat().st_mtime > _STALE_TMP_S:
                    shutil.rmtree(p, ignore_errors=True)
            except OSError:
                pass


def _write(path: Path, fill: Any) -> None:
    with open(path, "wb") as f:
        fill(f)
        f.flush()
        os.fsync(f.fileno())   # why: data on disk before the rename publishes the entry


def cached_extract(cache: FeatureCache, dataset: ImageDataset, backbone: str = "efficientnet_lite0", *,
                   image_size: int | None = None, batch_size: int = 64, device: str = "auto",
                   pca_dim: int | None = None, checkpoint: str | os.PathLike | None = None,
                   checkpoint_arch: str | None = None, seed: int = 0,
                   progress: _extract.Progress | None = None,
                   should_stop: Callable[[], bool] | None = None) -> tuple[np.ndarray, bool, str]:
    """(features, from_cache, key). A dataset without a fingerprint is extracted but not cached
    (key ""), since nothing would tell its entry apart from another dataset's."""
    opts = dict(image_size=image_size, pca_dim=pca_dim, checkpoint=checkpoint,
                checkpoint_arch=checkpoint_arch, seed=seed)
    key = ""
    if dataset.fingerprint:
        parts = feature_key_parts(dataset, backbone, **opts)
        key = feature_key(parts)
        hit = cache.get(key)
        if hit is not None and len(hit) == len(dataset):
            return hit, True, key
    else:
        log.warning("dataset %r has no fingerprint; features are not cached", dataset.name)
    feats = _extract.extract_features(dataset, backbone, batch_size=batch_size, device=device,
                                      progress=progress, should_stop=should_stop, **opts)
    if key:
        cache.put(key, feats, meta={**parts, "dataset_name": dataset.name})
    return feats, False, key
