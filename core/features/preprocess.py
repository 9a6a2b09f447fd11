"""Turning images into model input: resize the shorter side to S, centre-crop S×S, normalise.

The work is split so extraction is a pure map over batches of sample indices:
``BatchMapper[indices] -> uint8 (B, H, W, C)`` (CPU, PIL or array slicing; picklable for
DataLoader workers / Ray Data) and ``to_model_input`` (float math on the target device).
The whole image is kept up to the crop (no 256→224 margin crop as in ImageNet evaluation):
dataset images are usually framed on their subject already.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from core.data.base import ImageDataset
from core.errors import DataError

# Bump when anything below changes the numbers it produces: it is part of the feature-cache key.
PREPROCESS_VERSION = 1


def shorter_side_size(h: int, w: int, size: int) -> tuple[int, int]:
    """(h, w) scaled so the shorter side is ``size`` (the longer side never below ``size``)."""
    scale = size / min(h, w)
    return max(size, round(h * scale)), max(size, round(w * scale))


_PIL_RESAMPLE = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC}


def _check_interpolation(interpolation: str) -> None:
    if interpolation not in _PIL_RESAMPLE:
        raise ValueError(f"interpolation must be one of {sorted(_PIL_RESAMPLE)}, got {interpolation!r}")


def pil_to_array(img: Image.Image, size: int | None, interpolation: str = "bilinear") -> np.ndarray:
    """RGB PIL -> uint8 (S, S, 3): shorter side to ``size`` (PIL ``interpolation``, antialiased),
    centre crop. A grayscale (or palette, RGBA...) image becomes RGB."""
    if size is not None:
        w, h = img.size
        nh, nw = shorter_side_size(h, w, size)
        if (nw, nh) != (w, h):
            # reducing_gap: PIL first shrinks by an integer factor (cheap box filter) on big photos
            img = img.resize((nw, nh), _PIL_RESAMPLE[interpolation], reducing_gap=3.0)
        left, top = (nw - size) // 2, (nh - size) // 2
        if (nw, nh) != (size, size):
            img = img.crop((left, top, left + size, top + size))
    if img.mode != "RGB":
        img = img.convert("RGB")
    return np.asarray(img)   # read-only view; BatchMapper copies it into the batch buffer


class BatchMapper(torch.utils.data.Dataset):
    """``mapper[list_of_indices]`` -> uint8 tensor (B, H, W, C), row-aligned with the indices.

    Array datasets are sliced straight from ``native_array()`` (C = 1 for grayscale, resized
    later on the device); file datasets are decoded with PIL and resized here (C = 3).
    """

    def __init__(self, dataset: ImageDataset, size: int | None, native: np.ndarray | None,
                 interpolation: str = "bilinear") -> None:
        _check_interpolation(interpolation)
        self.dataset, self.size, self.native, self.interpolation = dataset, size, native, interpolation

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, indices: Sequence[int]) -> torch.Tensor:  # type: ignore[override]
        if self.native is not None:
            a = self.native[indices[0]: indices[-1] + 1] if _contiguous(indices) else self.native[list(indices)]
            a = np.ascontiguousarray(a)
            return torch.from_numpy(a[..., None] if a.ndim == 3 else a)
        out = np.empty((len(indices), self.size, self.size, 3), np.uint8) if self.size else None
        rows = []
        for j, i in enumerate(indices):
            try:
                arr = pil_to_array(self.dataset.load(i), self.size, self.interpolation)
            except Exception as e:   # why: name the image; a bare PIL error says nothing useful
                raise DataError(f"could not read image {self.dataset.ids[i]!r} ({type(e).__name__}: {e}); "
                                "remove or replace the file and run again") from e
            if out is not None:
                out[j] = arr
            else:
                rows.append(arr)
        if out is None:   # no size: images must already share one size
            try:
                out = np.stack(rows)
            except ValueError:
                raise DataError("images differ in size; pass an image_size to resize them") from None
        return torch.from_numpy(out)


def _contiguous(indices: Sequence[int]) -> bool:
    return len(indices) > 0 and indices[-1] - indices[0] == len(indices) - 1


def to_model_input(x: torch.Tensor, size: int | None, mean: Sequence[float], std: Sequence[float],
                   *, keep_gray: bool = False, channels_last: bool = False,
                   interpolation: str = "bilinear") -> torch.Tensor:
    """uint8 (B, H, W, C) -> float (B, C', S, S) normalised as ``(x/255 - mean) / std``.

    Resize (``interpolation``, antialiased; bicubic clamped to [0, 255] as PIL does) + centre
    crop happen here only when the batch is not already S×S (array datasets); C = 1 becomes 3
    unless ``keep_gray``.
    """
    _check_interpolation(interpolation)
    h, w = x.shape[1:3]
    resize = size is not None and (h, w) != (size, size)
    # why: NHWC -> NCHW while still uint8 (1 byte/value), then one float pass and in-place affine;
    # a float permute + broadcast ops made 224 px batches ~10x slower than the decode.
    x = x.permute(0, 3, 1, 2).contiguous().float()
    if resize:
        assert size is not None
        nh, nw = shorter_side_size(h, w, size)
        if (nh, nw) != (h, w):
            x = F.interpolate(x, size=(nh, nw), mode=interpolation, align_corners=False, antialias=True)
            if interpolation == "bicubic":   # why: cubic overshoots; PIL clamps to the uint8 range
                x = x.clamp_(0, 255)
        top, left = (nh - size) // 2, (nw - size) // 2
        x = x[:, :, top: top + size, left: left + size]
    c = x.shape[1]
    if c == 1 and not keep_gray:
        x = x.expand(-1, 3, -1, -1)
        c = 3
    scale = torch.tensor([1 / (255 * s) for s in std[:c]], dtype=x.dtype, device=x.device).view(1, c, 1, 1)
    shift = torch.tensor([-m / s for m, s in zip(mean[:c], std[:c], strict=True)], dtype=x.dtype,
                         device=x.device).view(1, c, 1, 1)
    if resize or x.stride(1) == 0:   # a view (crop / expanded gray): materialise once, then in place
        x = x * scale
    else:
        x.mul_(scale)
    x.add_(shift)
    return x.contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
