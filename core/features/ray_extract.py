"""Feature extraction on a Ray cluster (issue 28 item 5): Ray Data ``map_batches`` over the rows
still to extract, writing through the same shard writer as this machine's loop.

What runs where: the driver (this process) opens the partial entry (``ShardWriter``), lists the
rows no valid shard holds, and hands them to Ray Data as a dataset of row numbers. Ray runs
:class:`_Actor` (one :class:`~core.features.extract.FeatureMapper` per actor, so the model is
built once per actor; one GPU per actor when ``num_gpus`` is given) on batches of rows wherever
the cluster has room; the dataset object is shipped to the actors, so its files must be readable
there (the same path on every node, or an array dataset). Features come back to the driver, which
writes them as shards (temp file + rename, CRC-32) and, once every row is there, assembles the
memory-mapped cache entry. A stop keeps every shard written; the next run, with Ray or without,
extracts only the rest. No scheduler of our own: Ray Data schedules the actors.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

from core.data.base import ImageDataset
from core.errors import Cancelled, ParameterError
from core.features import cache as _cache
from core.features import extract as _extract
from core.features.cache import FeatureCache, ShardWriter, feature_key, feature_key_parts


class _Actor:
    """A Ray Data callable class: ``{"row": int64 (B,)} -> {"row", "features"}``."""

    def __init__(self, dataset: ImageDataset, backbone: str, options: dict[str, Any]) -> None:
        self.fm = _extract.FeatureMapper(dataset, backbone, **options)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self.fm(batch)


def _runs(rows: np.ndarray) -> list[tuple[int, int]]:
    """Positions [a, b) of the runs of consecutive row numbers in ``rows``."""
    cuts = np.flatnonzero(np.diff(rows) != 1) + 1
    edges = [0, *cuts.tolist(), len(rows)]
    return list(zip(edges[:-1], edges[1:], strict=True))


def ray_extract(cache: FeatureCache, dataset: ImageDataset, backbone: str = "efficientnet_lite0", *,
                address: str | None = None, image_size: int | None = None, batch_size: int = 64,
                device: str = "auto", pca_dim: int | None = None, checkpoint: str | os.PathLike | None = None,
                checkpoint_arch: str | None = None, seed: int = 0, actors: int = 2, num_gpus: float = 0,
                progress: _extract.Progress | None = None,
                should_stop: Callable[[], bool] | None = None) -> tuple[np.ndarray, bool, str]:
    """:func:`~core.features.cache.cached_extract` with the model running on Ray actors.

    ``address``: a running cluster ("ray://host:10001", "auto"), or None when ``ray.init`` was
    already called (a test's local cluster). Returns (features, from_cache, key).
    """
    import ray

    if not dataset.fingerprint:
        raise ParameterError(f"dataset {dataset.name!r} has no fingerprint: its features cannot be cached, "
                             "and Ray extraction writes through the cache; extract it without --ray")
    if actors < 1:
        raise ParameterError(f"actors must be at least 1, got {actors}")
    _extract.check_pca_dim(backbone, pca_dim)
    opts = dict(image_size=image_size, pca_dim=pca_dim, checkpoint=checkpoint, checkpoint_arch=checkpoint_arch,
                seed=seed)
    parts = feature_key_parts(dataset, backbone, **opts)
    key = feature_key(parts)
    hit = cache.get(key)
    if hit is not None and len(hit) == len(dataset):
        return hit, True, key
    if not ray.is_initialized():
        ray.init(address=address)
    n = len(dataset)
    with ShardWriter(cache, key, n, {**parts, "dataset_name": dataset.name}) as writer:
        todo = writer.todo()
        if todo:
            rows = np.concatenate([np.arange(a, b, dtype=np.int64) for a, b in todo])
            ctx = ray.data.DataContext.get_current()
            ctx.execution_options.preserve_order = True   # why: shards are runs of consecutive rows
            options = dict(image_size=image_size, batch_size=batch_size, device=device, checkpoint=checkpoint,
                           checkpoint_arch=checkpoint_arch)
            out = ray.data.from_items([{"row": int(r)} for r in rows]) if len(rows) < 1000 else \
                ray.data.from_numpy(rows).rename_columns({"data": "row"})
            out = out.map_batches(_Actor, fn_constructor_args=(dataset, backbone, options), batch_size=batch_size,
                                  concurrency=actors, num_gpus=num_gpus or None, batch_format="numpy")
            done = writer.done_rows
            for batch in out.iter_batches(batch_size=_cache.SHARD_ROWS, batch_format="numpy"):
                got, feats = np.asarray(batch["row"], np.int64), np.asarray(batch["features"], np.float32)
                for a, b in _runs(got):
                    writer.write(int(got[a]), feats[a:b])
                done += len(got)
                if progress is not None:
                    progress(done, n, 0.0)
                if should_stop is not None and should_stop():
                    raise Cancelled(f"feature extraction on Ray stopped after {done:,} of {n:,} images; the "
                                    f"{done:,} extracted are kept, and extracting again resumes from there")
        return writer.assemble(pca_dim, seed), False, key
