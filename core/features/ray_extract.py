"""Feature extraction on a Ray cluster (issue 28 item 5): Ray Data ``map_batches`` over the rows
still to extract, written through the same shard writer as this machine's loop.

What runs where. The driver (the process that calls :func:`ray_extract`, e.g. ``python -m core
extract --ray ADDRESS``) computes the cache key, opens the partial entry (:class:`ShardWriter`),
lists the rows no valid shard holds and hands them to Ray Data as a dataset of row numbers. The
cluster runs :class:`_Actor` (a class-based UDF: one :class:`~core.features.extract.FeatureMapper`,
so one model, per actor; one GPU per actor when the cluster has GPUs) on batches of rows: the
actors decode the images and run the forward pass. Raw features come back to the driver in row
order (``iter_batches``), which writes them as shards (temp file + rename, CRC-32; the very
``_stream`` loop a local extraction uses) and, once every row is there, assembles and publishes
the entry exactly as a local run does: the same key, the same numbers.

The actors open the data themselves: given ``source`` (a folder, a .zip, a demo name, as typed)
they reopen it by that string and check its fingerprint against the driver's, so every node needs
the same files at the same path (shared storage, or a copy); an array demo (digits) is reopened by
name. Without ``source`` the dataset object is shipped (its paths must still resolve there).
Every node also needs ClusterLens importable (same checkout on PYTHONPATH, or installed).

A stop (``should_stop``, Ctrl-C, a failed actor) keeps every shard written; the next run, with
Ray or without, extracts only the rest. Ray Data schedules the actors; there is no scheduler here.
"""
from __future__ import annotations

import contextlib
import math
import os
import re
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from core.data.base import ImageDataset
from core.errors import Cancelled, ClusterLensError, DataError, ParameterError
from core.features import cache as _cache
from core.features import extract as _extract
from core.features.cache import FeatureCache, ShardWriter, feature_key, feature_key_parts

INSTALL = "pip install 'ray[data]'"


def import_ray() -> Any:
    """``ray`` with Ray Data, or a ParameterError that says how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as e:
        raise ParameterError(f"extracting on a Ray cluster needs Ray Data, which is not installed here ({e}); "
                             f"run `{INSTALL}`, or extract without --ray") from None
    return ray


def open_on_worker(source: str, limit: int | None, workspace: str, fingerprint: str) -> ImageDataset:
    """The dataset as a worker sees it at ``source``; refuses one that differs from the driver's."""
    from core.data import open_dataset

    ds = open_dataset(source, workspace=workspace, limit=limit)
    if ds.fingerprint != fingerprint:
        import socket

        raise DataError(f"the data at {source!r} on worker {socket.gethostname()} is not what the driver opened "
                        f"(fingerprint {ds.fingerprint[:12] or 'none'} vs {fingerprint[:12]}): give every node "
                        "of the Ray cluster the same files at the same path (shared storage)")
    return ds


class _Actor:
    """Ray Data callable class: ``{"row": int64 (B,)} -> {"row", "features"}`` (raw float32)."""

    def __init__(self, dataset: ImageDataset | None, reopen: tuple[str, int, str, str] | None,
                 backbone: str, options: dict[str, Any]) -> None:
        self.fm: _extract.FeatureMapper | None = None
        self.error: ClusterLensError | None = None
        try:
            ds = dataset if dataset is not None else open_on_worker(*reopen)   # type: ignore[misc]
            self.fm = _extract.FeatureMapper(ds, backbone, **options)
        except ClusterLensError as e:   # why: raised from a batch, Ray hands the driver the error itself
            self.error = e              # (an actor that dies in __init__ comes back as text only)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self.error is not None:
            raise self.error
        assert self.fm is not None
        return self.fm(batch)


def _runs(rows: np.ndarray) -> list[tuple[int, int]]:
    """Positions [a, b) of the runs of consecutive row numbers in ``rows``."""
    cuts = np.flatnonzero(np.diff(rows) != 1) + 1
    edges = [0, *cuts.tolist(), len(rows)]
    return list(zip(edges[:-1], edges[1:], strict=True))


class _RayMapper:
    """``run(todo, should_stop)`` as :class:`FeatureMapper` has it, its batches computed by Ray Data;
    so :func:`core.features.cache._stream` (shards, flushes, stop, progress) writes them."""

    def __init__(self, make: Callable[[list[tuple[int, int]]], Any]) -> None:
        self.make = make

    def run(self, ranges: list[tuple[int, int]], should_stop: Callable[[], bool] | None = None
            ) -> Iterator[tuple[int, np.ndarray]]:
        it = self.make(ranges).iter_batches(batch_size=None, batch_format="numpy")
        try:
            for batch in it:
                if should_stop is not None and should_stop():
                    raise Cancelled("feature extraction on Ray stopped")
                rows = np.asarray(batch["row"], np.int64)
                feats = np.asarray(batch["features"], np.float32)
                for a, b in _runs(rows):
                    yield int(rows[a]), feats[a:b]
        finally:
            with contextlib.suppress(Exception):
                it.close()   # why: a stop ends the Ray Data execution (and its actors) now


def _our_error(e: BaseException) -> ClusterLensError | None:
    """The ClusterLens error (a bad file, other data at the path) an actor raised, if it was one.
    Why the text: Ray Data sends a UDF's exception back as a RayTaskError(UserCodeException) whose
    cause is only its traceback's text (``core.errors.DataError: ...``), not the object."""
    from core import errors

    todo, seen = [e], set()
    while todo:
        x = todo.pop()
        if x is None or id(x) in seen:
            continue
        seen.add(id(x))
        if isinstance(x, ClusterLensError):
            return x
        todo += [getattr(x, "cause", None), x.__cause__, x.__context__]
    for name, message in re.findall(r"core\.errors\.(\w+): (.+)", str(e)):
        cls = getattr(errors, name, None)
        if isinstance(cls, type) and issubclass(cls, ClusterLensError):
            return cls(message.strip())
    return None


def _cluster(ray: Any, address: str | None) -> dict[str, float]:
    if not ray.is_initialized():
        try:
            ray.init(address=address, log_to_driver=False)
        except ConnectionError as e:
            raise ParameterError(f"could not connect to a Ray cluster at {address!r} ({e}). Is one running there "
                                 "(`ray start --head`)? Give its address (HOST:6379, ray://HOST:10001 or auto); "
                                 "a cluster with token authentication also needs its token here "
                                 "(RAY_AUTH_MODE=token and RAY_AUTH_TOKEN or ~/.ray/auth_token)") from None
    return ray.cluster_resources()


def ray_extract(cache: FeatureCache, dataset: ImageDataset, backbone: str = "efficientnet_lite0", *,
                address: str | None = None, source: str | None = None, workspace: str | os.PathLike = "",
                image_size: int | None = None, batch_size: int = 64, device: str = "auto",
                pca_dim: int | None = None, checkpoint: str | os.PathLike | None = None,
                checkpoint_arch: str | None = None, seed: int = 0, actors: int | None = None,
                num_gpus: float | None = None, progress: _extract.Progress | None = None,
                should_stop: Callable[[], bool] | None = None) -> tuple[np.ndarray, bool, str]:
    """:func:`~core.features.cache.cached_extract` with decoding and the model on Ray actors.

    ``address``: the cluster ("HOST:6379", "ray://HOST:10001", "auto"); ignored when this process
    already called ``ray.init``. ``source`` (and ``workspace``, for a .zip): how the actors
    reopen the data, its first ``len(dataset)`` images (see the module doc); without it the
    dataset object is shipped. ``num_gpus`` per actor: default 1 when the cluster has GPUs, else
    0; ``actors``: default one per GPU, or one per node on CPUs.
    Returns (features memory-mapped, from_cache, key), as ``cached_extract``.
    """
    if not dataset.fingerprint:
        raise ParameterError(f"dataset {dataset.name!r} has no fingerprint: its features cannot be cached, and "
                             "Ray extraction writes through the cache; extract it without --ray")
    _extract.check_pca_dim(backbone, pca_dim)
    if actors is not None and actors < 1:
        raise ParameterError(f"actors must be at least 1, got {actors}")
    if num_gpus is not None and num_gpus < 0:
        raise ParameterError(f"GPUs per actor must be 0 or more, got {num_gpus}")
    opts = dict(image_size=image_size, pca_dim=pca_dim, checkpoint=checkpoint, checkpoint_arch=checkpoint_arch,
                seed=seed)
    parts = feature_key_parts(dataset, backbone, **opts)
    key = feature_key(parts)
    hit = cache.get(key)
    if hit is not None and len(hit) == len(dataset):
        return hit, True, key
    ray = import_ray()
    res = _cluster(ray, address)
    gpus = float(res.get("GPU", 0))
    per = (1.0 if gpus >= 1 else 0.0) if num_gpus is None else float(num_gpus)
    if per > gpus:
        raise ParameterError(f"{per:g} GPU(s) per actor asked, but the Ray cluster has {gpus:g}; "
                             "use --gpus-per-actor 0 for CPU actors")
    if actors is None:
        alive = [nd for nd in ray.nodes() if nd.get("Alive")]
        actors = max(1, int(gpus // per) if per else len(alive))
    reopen = (source, len(dataset), str(workspace), dataset.fingerprint) if source else None
    options = dict(image_size=image_size, batch_size=batch_size, device=device, checkpoint=checkpoint,
                   checkpoint_arch=checkpoint_arch)

    def make(ranges: list[tuple[int, int]]) -> Any:
        rows = np.concatenate([np.arange(a, b, dtype=np.int64) for a, b in ranges])
        block = max(batch_size, min(_cache.SHARD_ROWS, math.ceil(len(rows) / (4 * actors))))
        blocks = [rows[i: i + block] for i in range(0, len(rows), block)]   # why: a block is one task
        ds = ray.data.from_numpy(blocks).rename_columns({"data": "row"})
        return ds.map_batches(_Actor, fn_constructor_args=(None if reopen else dataset, reopen, backbone, options),
                              batch_size=batch_size, compute=ray.data.ActorPoolStrategy(size=actors),
                              num_gpus=per or None,
                              batch_format="numpy")

    ctx = ray.data.DataContext.get_current()
    saved = ctx.execution_options.preserve_order, ctx.enable_progress_bars
    ctx.execution_options.preserve_order = True   # why: rows come back in order, so shards are long runs
    ctx.enable_progress_bars = False              # the caller's progress says how far it is
    try:
        with ShardWriter(cache, key, len(dataset), {**parts, "dataset_name": dataset.name}) as writer:
            todo = writer.todo()
            if todo:
                _cache._stream(_RayMapper(make), writer, todo, progress, should_stop)
            return writer.assemble(pca_dim, seed), False, key
    except ray.exceptions.RayError as e:   # an actor failed: its own error when it is one of ours
        ours = _our_error(e)
        if ours is not None:
            raise ours from None
        raise
    finally:
        ctx.execution_options.preserve_order, ctx.enable_progress_bars = saved
