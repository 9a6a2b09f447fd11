"""A whole dataset as one uint8 image array (N, C, size, size), for models trained end to end."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from core.data.base import ImageDataset
from core.errors import ParameterError

__all__ = ["images_as_array"]


def _resize_array(a: np.ndarray, size: int, chunk: int = 4096) -> np.ndarray:
    """uint8 (N, C, H, W) → (N, C, size, size): shorter side to ``size``, then a centre crop."""
    n, _, h, w = a.shape
    if (h, w) == (size, size):
        return a
    scale = size / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    top, left = (nh - size) // 2, (nw - size) // 2
    out = np.empty((n, a.shape[1], size, size), dtype=np.uint8)
    for s in range(0, n, chunk):
        t = torch.from_numpy(a[s:s + chunk]).float()
        r = F.interpolate(t, size=(nh, nw), mode="bilinear", align_corners=False, antialias=scale < 1)
        r = r[:, :, top:top + size, left:left + size]
        out[s:s + chunk] = r.round_().clamp_(0, 255).to(torch.uint8).numpy()
    return out


def _resize_pil(im: Image.Image, size: int) -> Image.Image:
    """Shorter side to ``size`` then a centre crop — the same geometry as :func:`_resize_array`."""
    w, h = im.size
    scale = size / min(w, h)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    im = im.resize((nw, nh), Image.BILINEAR)
    left, top = (nw - size) // 2, (nh - size) // 2
    return im.crop((left, top, left + size, top + size))


def images_as_array(dataset: ImageDataset, size: int, *, channels: int | None = None) -> np.ndarray:
    """All images of ``dataset`` as uint8 (N, C, size, size).

    Array datasets take a fast path through ``native_array()``; others are loaded one by one.
    Images of any size are brought to ``size`` the same way (shorter side, centre crop).
    ``channels``: 1 (grey), 3 (RGB) or None = 1 if every image is grey (R = G = B), else 3.
    """
    if not isinstance(size, (int, np.integer)) or size < 1:
        raise ParameterError(f"size must be a positive number of pixels, got {size!r}")
    if channels not in (None, 1, 3):
        raise ParameterError(f"channels must be 1, 3 or None (automatic), got {channels!r}")
    n = len(dataset)
    if n == 0:
        raise ParameterError(f"dataset {dataset.name!r} holds no images")

    native = dataset.native_array()
    if native is not None:
        a = np.asarray(native)
        a = a[:, None] if a.ndim == 3 else a.transpose(0, 3, 1, 2)     # → (N, C, H, W)
        if a.dtype != np.uint8:
            raise ParameterError(f"native_array() must be uint8, got {a.dtype}")
        grey = a.shape[1] == 1 or bool((a[:, 0] == a[:, 1]).all() and (a[:, 1] == a[:, 2]).all())
        c = channels or (1 if grey else 3)
        if c == 1 and a.shape[1] == 3:      # ITU-R 601 luma, as PIL's convert("L")
            a = (a[:, 0] * 0.299 + a[:, 1] * 0.587 + a[:, 2] * 0.114).round().astype(np.uint8)[:, None]
        elif c == 3 and a.shape[1] == 1:
            a = np.repeat(a, 3, axis=1)
        return _resize_array(np.ascontiguousarray(a), int(size))

    rgb = np.empty((n, size, size, 3), dtype=np.uint8)
    all_grey = True
    for i in range(n):
        im = _resize_pil(dataset.load(i).convert("RGB"), int(size))
        px = np.asarray(im)
        rgb[i] = px
        if all_grey and not ((px[..., 0] == px[..., 1]).all() and (px[..., 1] == px[..., 2]).all()):
            all_grey = False
    c = channels or (1 if all_grey else 3)
    if c == 1:
        grey = (rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114).round().astype(np.uint8)
        return grey[:, None]
    return np.ascontiguousarray(rgb.transpose(0, 3, 1, 2))
