"""Feature extraction: dataset + backbone -> float32 (N, D), L2-normalised rows aligned to ``ids``.

Extraction is a pure map over batches of sample indices (:class:`FeatureMapper`: a
:class:`BatchMapper` then one forward per batch), so Ray Data's ``map_batches`` can run it.
CPU: ``num_workers=0`` (on small machines workers fight torch's threads, see MEASURED.md);
files are decoded in one prefetch thread only when torch leaves a core free. CUDA: workers +
pinned memory, fp16 autocast and channels_last, every batch in one shape.
"""
from __future__ import annotations

import contextlib
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
import torch

from core.data.base import ImageDataset
from core.device import resolve_device, set_cpu_threads
from core.errors import Cancelled, DataError, ParameterError
from core.features.backbones import PIXELS_DEFAULT_SIZE, Backbone, get_backbone
from core.features.preprocess import BatchMapper, to_model_input

Progress = Callable[[int, int, float], None]     # (done, total, images_per_s)


def resolve_image_size(bb: Backbone, dataset: ImageDataset, image_size: int | None,
                       native: np.ndarray | None = None) -> int | None:
    """The input size actually used; None = the native size of an array dataset (pixels only)."""
    if bb.fixed_size is not None:       # ViT accepts 224 only: resize to it whatever was asked
        return bb.fixed_size
    if image_size is not None:
        if not 8 <= image_size <= 1024:
            raise ParameterError(f"image size must be between 8 and 1024 pixels, got {image_size}")
        return bb.fit_image_size(image_size)   # a ViT rounds to its patch multiple (and says so)
    if bb.default_size is not None:
        return bb.default_size
    if native is None:
        native = dataset.native_array()
    return None if native is not None else PIXELS_DEFAULT_SIZE   # arrays: keep their native size


def _loader(mapper: BatchMapper, lo: int, hi: int, batch_size: int, cuda: bool) -> torch.utils.data.DataLoader:
    sampler = torch.utils.data.BatchSampler(range(lo, hi), batch_size, drop_last=False)
    workers = 0
    if cuda and mapper.native is None:   # decoding files is the bottleneck next to a GPU
        workers = max(0, min(8, (os.cpu_count() or 1) - 1))
    return torch.utils.data.DataLoader(
        mapper, sampler=sampler, batch_size=None, num_workers=workers, pin_memory=cuda,
        persistent_workers=False, prefetch_factor=4 if workers else None)


def _prefetch(batches: Iterable[torch.Tensor], depth: int = 2) -> Iterator[torch.Tensor]:
    """Yield ``batches`` while a thread prepares the next ones. Why: PIL decoding and resizing
    release the GIL, so the next batch is decoded while torch runs the current one."""
    q: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def work() -> None:
        try:
            for b in batches:
                while not stop.is_set():
                    try:
                        q.put(("batch", b), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(("end", None))
        except BaseException as e:   # why: re-raised in the consumer, with its traceback
            q.put(("error", e))

    t = threading.Thread(target=work, name="clusterlens-prefetch", daemon=True)
    t.start()
    try:
        while True:
            kind, item = q.get()
            if kind == "end":
                return
            if kind == "error":
                raise item
            yield item
    finally:
        stop.set()
        t.join(timeout=5)


def forward(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The backbone's output for one batch. On the GPU under fp16 autocast: bf16 moved Lite0's
    features up to 2.7 % in cosine from the CPU's fp32 ones, fp16 0.01 % (H200, bench/RESULTS.md
    "GPU"); a batch whose fp16 output overflows is run again in fp32."""
    if x.device.type != "cuda":
        return model(x)
    with torch.autocast("cuda", dtype=torch.float16):
        f = model(x)
    if not bool(torch.isfinite(f).all()):
        f = model(x)
    return f


def pad_rows(x: torch.Tensor, rows: int) -> torch.Tensor:
    """``x`` (B, C, H, W) with its last row repeated up to ``rows`` rows, in x's memory format.
    Why: on the GPU every new batch shape costs seconds of one-off set-up (1.7 s for Lite0's
    last, shorter batch on an H200), far more than computing the few extra rows."""
    if len(x) >= rows:
        return x
    cl = x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last)
    fmt = torch.channels_last if cl else torch.contiguous_format
    return torch.cat([x, x[-1:].expand(rows - len(x), *x.shape[1:])]).contiguous(memory_format=fmt)


def l2_normalize(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Rows scaled to unit length; all-zero rows stay zero. Row by row, so a matrix normalised
    in pieces (``out``: where to write, e.g. a slice of a memory map) is the same to the bit."""
    norms = np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    if out is not None:
        return np.divide(x, norms, out=out, dtype=np.float32)
    return (x / norms).astype(np.float32, copy=False)


class FeatureMapper:
    """The pure map at the heart of extraction: a batch of row indices -> raw float32 features.

    Holds the model and the image mapper, nothing about which rows were done: ``run(ranges)``
    (this machine: loader, prefetch thread, GPU padding) and ``__call__`` (one batch, in the
    shape of Ray Data's ``map_batches``: ``{"row": int64 (B,)} -> {"row", "features"}``) give the
    same numbers for the same batches. Features are raw (not L2-normalised, no PCA): rows are
    finished by :func:`finish` once every row is there.
    """

    def __init__(self, dataset: ImageDataset, backbone: str = "efficientnet_lite0", *,
                 image_size: int | None = None, batch_size: int = 64, device: str = "auto",
                 checkpoint: str | os.PathLike | None = None, checkpoint_arch: str | None = None) -> None:
        if len(dataset) == 0:
            raise DataError(f"dataset {dataset.name!r} has no images to extract features from")
        if batch_size < 1:
            raise ParameterError(f"batch size must be at least 1, got {batch_size}")
        self.bb = get_backbone(backbone, checkpoint, checkpoint_arch)
        self.dev = resolve_device(device)
        self.cuda = self.dev.type == "cuda"
        if not self.cuda:
            set_cpu_threads()
        native = dataset.native_array()
        self.size = resolve_image_size(self.bb, dataset, image_size, native)
        model = self.bb.build(self.dev)
        if self.cuda:   # channels_last pays off only when weights and input both use it
            model = model.to(memory_format=torch.channels_last)
        self.model = model
        self.mapper = BatchMapper(dataset, self.size, native, self.bb.interpolation)
        self.batch_size = int(batch_size)
        self.n = len(dataset)

    def features(self, batch: torch.Tensor) -> np.ndarray:
        """uint8 (B, H, W, C) images -> raw float32 (B, D) features."""
        x = to_model_input(batch.to(self.dev, non_blocking=True), self.size, self.bb.mean, self.bb.std,
                           keep_gray=self.bb.keeps_gray, channels_last=self.cuda,
                           interpolation=self.bb.interpolation)
        rows = len(x)
        if self.cuda:   # a shorter batch runs in the full batch's shape
            x = pad_rows(x, self.batch_size)
        return forward(self.model, x)[:rows].float().cpu().numpy()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows = np.asarray(batch["row"], dtype=np.int64)
        with torch.inference_mode():
            f = self.features(self.mapper[rows.tolist()])
        return {"row": rows, "features": f}

    def run(self, ranges: Iterable[tuple[int, int]], should_stop: Callable[[], bool] | None = None
            ) -> Iterator[tuple[int, np.ndarray]]:
        """(first row, raw features) for each batch of each half-open row range [lo, hi).

        Batches start at each range's ``lo`` (row ``lo + j * batch_size``), so a range that
        starts on a batch boundary gives the very batches an uninterrupted run gives.
        ``should_stop()`` is asked before each batch; True raises :class:`Cancelled`.
        """
        with torch.inference_mode(), contextlib.ExitStack() as stack:
            for lo, hi in ranges:
                batches: Iterable[torch.Tensor] = _loader(self.mapper, lo, hi, self.batch_size, self.cuda)
                if not self.cuda and self.mapper.native is None and (os.cpu_count() or 1) > torch.get_num_threads():
                    gen = _prefetch(batches)   # a core is left over for decoding (never on 2 cores / 2 threads)
                    stack.callback(gen.close)  # why: stops the thread at once when cancelled or failing
                    batches = gen
                start = lo
                for batch in batches:
                    if should_stop is not None and should_stop():
                        raise Cancelled("feature extraction stopped")
                    f = self.features(batch)
                    yield start, f
                    start += len(f)


def finish(raw: np.ndarray, pca_dim: int | None, seed: int) -> np.ndarray:
    """Raw features -> what extraction returns: seeded PCA (pixels' ``pca_dim``), then unit rows.
    Row-wise without PCA, so it may run shard by shard with the same result."""
    if pca_dim is not None:
        raw = _pca(raw, pca_dim, seed)
    return l2_normalize(raw)


def check_pca_dim(backbone: str, pca_dim: int | None) -> None:
    if pca_dim is not None and backbone != "pixels":
        raise ParameterError(f"pca_dim is for the raw 'pixels' backbone only, not {backbone!r}; "
                             "reduce learned features at clustering time instead (reduce='pca:N')")


def extract_features(dataset: ImageDataset, backbone: str = "efficientnet_lite0", *,
                     image_size: int | None = None, batch_size: int = 64, device: str = "auto",
                     pca_dim: int | None = None, checkpoint: str | os.PathLike | None = None,
                     checkpoint_arch: str | None = None, seed: int = 0,
                     progress: Progress | None = None,
                     should_stop: Callable[[], bool] | None = None) -> np.ndarray:
    """float32 (N, D) features, rows L2-normalised (after PCA for pixels), aligned with ``dataset.ids``.

    In memory, nothing kept on disk: :func:`core.features.cache.cached_extract` is the streaming,
    resumable form (shards on disk, one memory-mapped matrix at the end).
    Images: shorter side resized to ``image_size`` (default: the backbone's), then centre-cropped
    to a square. ``pca_dim`` (pixels only) reduces with a seeded PCA fitted on the data itself.
    ``progress(done, total, images_per_s)`` is called after each batch; ``should_stop()``
    returning True raises :class:`Cancelled` before the next batch.
    """
    check_pca_dim(backbone, pca_dim)
    fm = FeatureMapper(dataset, backbone, image_size=image_size, batch_size=batch_size, device=device,
                       checkpoint=checkpoint, checkpoint_arch=checkpoint_arch)
    n = fm.n
    out: np.ndarray | None = None
    done, t0 = 0, time.perf_counter()
    try:
        for start, f in fm.run([(0, n)], should_stop):
            if out is None:
                out = np.empty((n, f.shape[1]), np.float32)
            out[start: start + len(f)] = f
            done += len(f)
            if progress is not None:
                progress(done, n, done / max(time.perf_counter() - t0, 1e-9))
    except Cancelled:
        raise Cancelled(f"feature extraction stopped after {done} of {n} images; nothing was saved") from None
    assert out is not None and done == n
    return finish(out, pca_dim, seed)


def _pca(x: np.ndarray, dim: int, seed: int) -> np.ndarray:
    from sklearn.decomposition import PCA

    if dim > min(x.shape):
        raise ParameterError(f"pca_dim={dim} is more than the data allows (min(images, pixels) = "
                             f"{min(x.shape)}); choose pca_dim <= {min(x.shape)}")
    return PCA(n_components=dim, random_state=seed).fit_transform(x).astype(np.float32)
