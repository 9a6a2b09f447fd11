"""Per-sample random augmentation of float image batches, on the batch's own device.

All functions take ``x``: (N, C, H, W) float in [0, 1] and return a tensor of the same shape,
dtype, device and value range. Randomness comes only from the ``generator`` argument, so one seed
gives one result. Random parameters are drawn on the generator's device (usually the CPU: they are
a few numbers per sample) and then moved to the batch's device.

Why hand-written: torchvision.transforms.v2 draws one set of parameters per call, i.e. the whole
batch would get the same rotation/shift/crop. Clustering losses need every sample to differ.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["random_affine", "weak_augment", "strong_augment", "color_jitter", "cutout"]


def _uniform(n: int, lo: float, hi: float, generator: torch.Generator) -> torch.Tensor:
    """(n,) float32 uniform in [lo, hi], drawn on the generator's device."""
    u = torch.rand(n, generator=generator, device=generator.device)
    return lo + (hi - lo) * u


def _coin(n: int, p: float, generator: torch.Generator) -> torch.Tensor:
    """(n,) bool, each True with probability p."""
    return torch.rand(n, generator=generator, device=generator.device) < p


def _check(x: torch.Tensor) -> None:
    if x.dim() != 4:
        raise ValueError(f"expected an image batch (N, C, H, W), got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"expected a float batch in [0, 1], got dtype {x.dtype}")


def random_affine(
    x: torch.Tensor,
    *,
    degrees: float,
    translate: float,
    scale: tuple[float, float] = (1.0, 1.0),
    hflip: bool = False,
    generator: torch.Generator,
    snap_to_pixels: bool = False,
) -> torch.Tensor:
    """Rotate, shift, zoom (and optionally mirror) every image by its own random amount.

    Args:
        x: (N, C, H, W) float in [0, 1].
        degrees: rotation angle drawn uniformly from [-degrees, degrees].
        translate: shift drawn uniformly from [-translate, translate] as a fraction of width/height.
        scale: zoom factor drawn uniformly from [scale[0], scale[1]] (>1 enlarges the content).
        hflip: mirror each image left-right with probability 0.5.
        generator: the only source of randomness.
        snap_to_pixels: round shifts to whole pixels and sample the nearest pixel (with no
            rotation/zoom this copies pixels exactly instead of blurring them).
    Returns:
        (N, C, H, W), same dtype/device; areas shifted in from outside are 0.
    """
    _check(x)
    n, _, h, w = x.shape
    ang = _uniform(n, -degrees, degrees, generator) * (math.pi / 180.0)
    s = _uniform(n, scale[0], scale[1], generator)
    tx = _uniform(n, -translate, translate, generator) * 2.0   # normalised coords span 2
    ty = _uniform(n, -translate, translate, generator) * 2.0
    if snap_to_pixels:
        tx = torch.round(tx * w / 2.0) * (2.0 / w)
        ty = torch.round(ty * h / 2.0) * (2.0 / h)
    flip = _coin(n, 0.5, generator) if hflip else torch.zeros(n, dtype=torch.bool, device=generator.device)

    # affine_grid wants the map output -> input: p_in = (1/s) R^T (p_out - t).
    # Rotation in pixel space expressed in normalised coordinates needs the aspect ratio terms.
    cos, sin = torch.cos(ang) / s, torch.sin(ang) / s
    a = h / w
    theta = torch.zeros(n, 2, 3, dtype=torch.float32, device=generator.device)
    theta[:, 0, 0] = cos
    theta[:, 0, 1] = sin * a
    theta[:, 1, 0] = -sin / a
    theta[:, 1, 1] = cos
    theta[:, 0, 2] = -(theta[:, 0, 0] * tx + theta[:, 0, 1] * ty)
    theta[:, 1, 2] = -(theta[:, 1, 0] * tx + theta[:, 1, 1] * ty)
    theta[flip, :, 0] *= -1.0      # mirror the output's x axis
    theta = theta.to(device=x.device, dtype=x.dtype if x.dtype != torch.float16 else torch.float32)

    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    mode = "nearest" if snap_to_pixels else "bilinear"
    out = F.grid_sample(x.to(grid.dtype), grid, mode=mode, padding_mode="zeros", align_corners=False)
    return out.clamp_(0.0, 1.0).to(x.dtype)


def color_jitter(
    x: torch.Tensor, *, brightness: float, contrast: float, generator: torch.Generator
) -> torch.Tensor:
    """Per-sample brightness and contrast factors from [1 - b, 1 + b] and [1 - c, 1 + c].

    Args:
        x: (N, C, H, W) float in [0, 1].
    Returns:
        (N, C, H, W) clamped to [0, 1].
    """
    _check(x)
    n = x.shape[0]
    b = _uniform(n, 1.0 - brightness, 1.0 + brightness, generator).to(x.device, x.dtype).view(n, 1, 1, 1)
    c = _uniform(n, 1.0 - contrast, 1.0 + contrast, generator).to(x.device, x.dtype).view(n, 1, 1, 1)
    x = x * b
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return ((x - mean) * c + mean).clamp_(0.0, 1.0)


def cutout(x: torch.Tensor, *, size: float, generator: torch.Generator, p: float = 1.0) -> torch.Tensor:
    """Blank one random square (side = size * min(H, W)) per sample, with probability p.

    Args:
        x: (N, C, H, W) float in [0, 1].
    Returns:
        (N, C, H, W); the square is filled with 0.5 (mid-grey, neutral for dark and light images).
    """
    _check(x)
    n, _, h, w = x.shape
    side = max(1, int(round(size * min(h, w))))
    cy = (_uniform(n, 0.0, 1.0, generator) * h).long().to(x.device).view(n, 1, 1)
    cx = (_uniform(n, 0.0, 1.0, generator) * w).long().to(x.device).view(n, 1, 1)
    on = _coin(n, p, generator).to(x.device).view(n, 1, 1)
    ys = torch.arange(h, device=x.device).view(1, h, 1)
    xs = torch.arange(w, device=x.device).view(1, 1, w)
    half = side // 2
    mask = (ys >= cy - half) & (ys < cy - half + side) & (xs >= cx - half) & (xs < cx - half + side) & on
    return x.masked_fill(mask.unsqueeze(1), 0.5)


def weak_augment(
    x: torch.Tensor, *, generator: torch.Generator, hflip: bool = True, strength: float = 1.0
) -> torch.Tensor:
    """Small whole-pixel shift (up to 1/8 of the side) plus an optional left-right mirror.

    Args:
        x: (N, C, H, W) float in [0, 1].
        strength: multiplies the shift range (0 = identity apart from the mirror).
    Returns:
        (N, C, H, W), same range.
    """
    return random_affine(
        x, degrees=0.0, translate=0.125 * strength, hflip=hflip, generator=generator, snap_to_pixels=True
    )


def strong_augment(
    x: torch.Tensor, *, generator: torch.Generator, hflip: bool = True, strength: float = 1.0
) -> torch.Tensor:
    """Affine (rotate ±15°, shift ±12.5 %, zoom 0.85–1.15) + brightness/contrast jitter + cutout.

    Args:
        x: (N, C, H, W) float in [0, 1].
        strength: multiplies every range (1 = the defaults above; 0 = only the mirror).
    Returns:
        (N, C, H, W), same range.
    """
    s = strength
    x = random_affine(
        x, degrees=15.0 * s, translate=0.125 * s, scale=(1.0 - 0.15 * s, 1.0 + 0.15 * s),
        hflip=hflip, generator=generator,
    )
    if s > 0:
        x = color_jitter(x, brightness=0.4 * s, contrast=0.4 * s, generator=generator)
        x = cutout(x, size=min(0.5, 0.25 * s), generator=generator, p=0.5)
    return x
