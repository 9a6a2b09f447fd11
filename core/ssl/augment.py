"""Batch augmentations for self-supervised training: every sample gets its own random draw.

All take ``x``: (N, C, H, W) float in [0, 1] on any device and return the same shape, dtype,
device and range. Random parameters are drawn from ``generator`` (a few numbers per sample, on
the generator's device) and moved to the batch's device, so the image math runs on the GPU when
the batch is there. :mod:`core.augment` has the clustering augmentations (affine, cutout); the
crops, full colour jitter, grayscale and blur SimCLR needs live here.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["random_resized_crop", "color_jitter", "random_grayscale", "gaussian_blur", "simclr_view",
           "gentle_view", "mild_view", "random_rotate", "rotate_all"]

_LUMA = (0.299, 0.587, 0.114)


def _rand(n: int, lo: float, hi: float, gen: torch.Generator) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=gen, device=gen.device)


def _coin(n: int, p: float, gen: torch.Generator) -> torch.Tensor:
    return torch.rand(n, generator=gen, device=gen.device) < p


def _gray(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, 1, H, W) luma (C = 1 is returned as is)."""
    if x.shape[1] == 1:
        return x
    w = torch.tensor(_LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)


def random_resized_crop(x: torch.Tensor, *, scale: tuple[float, float] = (0.2, 1.0),
                        ratio: tuple[float, float] = (3 / 4, 4 / 3), hflip: bool = True,
                        generator: torch.Generator) -> torch.Tensor:
    """Crop a random area fraction in ``scale`` with aspect ratio in ``ratio`` (log-uniform),
    resize it back to H x W (bilinear), and mirror left-right with probability 0.5.

    Args:
        x: (N, C, H, W) float in [0, 1].
    Returns:
        (N, C, H, W) float in [0, 1].
    """
    n = x.shape[0]
    area = _rand(n, scale[0], scale[1], generator)
    r = torch.exp(_rand(n, math.log(ratio[0]), math.log(ratio[1]), generator))
    cw = torch.sqrt(area * r).clamp(max=1.0)          # crop width / image width
    ch = torch.sqrt(area / r).clamp(max=1.0)
    cx = (2 * torch.rand(n, generator=generator, device=generator.device) - 1) * (1 - cw)   # centre, [-1, 1]
    cy = (2 * torch.rand(n, generator=generator, device=generator.device) - 1) * (1 - ch)
    flip = torch.where(_coin(n, 0.5 if hflip else 0.0, generator), -1.0, 1.0)
    theta = torch.zeros(n, 2, 3, device=generator.device)
    theta[:, 0, 0] = cw * flip                        # output x -> input x (mirrored when flip = -1)
    theta[:, 0, 2] = cx
    theta[:, 1, 1] = ch
    theta[:, 1, 2] = cy
    theta = theta.to(x.device, torch.float32)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    out = F.grid_sample(x.float(), grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out.clamp_(0.0, 1.0).to(x.dtype)


def color_jitter(x: torch.Tensor, *, brightness: float = 0.4, contrast: float = 0.4, saturation: float = 0.4,
                 hue: float = 0.1, p: float = 0.8, generator: torch.Generator) -> torch.Tensor:
    """SimCLR's colour distortion, per sample with probability ``p``: brightness, contrast and
    saturation factors from [1 - a, 1 + a], hue shifted by up to ``hue`` turns (a rotation in the
    YIQ chroma plane: cheap and batched). Grey (C = 1) images get brightness and contrast only.

    Args:
        x: (N, C, H, W) float in [0, 1], C in {1, 3}.
    Returns:
        (N, C, H, W) float in [0, 1].
    """
    n, c = x.shape[:2]
    on = _coin(n, p, generator)

    def factor(a: float) -> torch.Tensor:
        f = torch.where(on, _rand(n, 1 - a, 1 + a, generator), torch.ones(n, device=generator.device))
        return f.to(x.device, x.dtype).view(n, 1, 1, 1)

    b, k, s = factor(brightness), factor(contrast), factor(saturation)
    h = torch.where(on, _rand(n, -hue, hue, generator), torch.zeros(n, device=generator.device))
    x = (x * b).clamp(0, 1)
    m = _gray(x).mean((1, 2, 3), keepdim=True)
    x = ((x - m) * k + m).clamp(0, 1)
    if c == 3:
        g = _gray(x)
        x = ((x - g) * s + g).clamp(0, 1)
        x = _hue_rotate(x, h.to(x.device, torch.float32) * 2 * math.pi).clamp(0, 1)
    return x


def _hue_rotate(x: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """Rotate chroma by ``angle`` (N,) radians in YIQ space: (N, 3, H, W) -> (N, 3, H, W)."""
    to_yiq = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]],
                          device=x.device)
    cos, sin = torch.cos(angle), torch.sin(angle)
    rot = torch.zeros(len(angle), 3, 3, device=x.device)
    rot[:, 0, 0] = 1
    rot[:, 1, 1], rot[:, 1, 2], rot[:, 2, 1], rot[:, 2, 2] = cos, -sin, sin, cos
    m = torch.linalg.inv(to_yiq) @ rot @ to_yiq                     # (N, 3, 3)
    return torch.einsum("nij,njhw->nihw", m, x.float()).to(x.dtype)


def random_grayscale(x: torch.Tensor, *, p: float = 0.2, generator: torch.Generator) -> torch.Tensor:
    """Replace each colour image by its luma (repeated over channels) with probability ``p``.

    Args:
        x: (N, C, H, W) float in [0, 1].
    Returns:
        (N, C, H, W); unchanged for C = 1.
    """
    if x.shape[1] == 1:
        return x
    on = _coin(x.shape[0], p, generator).to(x.device).view(-1, 1, 1, 1)
    return torch.where(on, _gray(x).expand_as(x), x)


def gaussian_blur(x: torch.Tensor, *, p: float = 0.5, sigma: tuple[float, float] = (0.1, 2.0),
                  kernel_frac: float = 0.1, generator: torch.Generator) -> torch.Tensor:
    """Blur each image with probability ``p`` by a Gaussian of its own sigma (in pixels, scaled
    to the image: ``sigma`` is for 224 px as in SimCLR). Kernel side ~ ``kernel_frac`` of H, odd.

    Args:
        x: (N, C, H, W) float in [0, 1].
    Returns:
        (N, C, H, W) float in [0, 1].
    """
    n, c, h, w = x.shape
    size = max(3, int(kernel_frac * min(h, w)) // 2 * 2 + 1)
    s = _rand(n, sigma[0], sigma[1], generator) * (min(h, w) / 224)
    on = _coin(n, p, generator)
    r = torch.arange(size, device=generator.device, dtype=torch.float32) - size // 2
    k = torch.exp(-(r[None, :] ** 2) / (2 * s[:, None].clamp_min(1e-3) ** 2))
    k = k / k.sum(1, keepdim=True)
    ident = torch.zeros(size, device=generator.device)
    ident[size // 2] = 1
    k = torch.where(on[:, None], k, ident).to(x.device, torch.float32)         # (N, size)
    # separable blur as grouped convolutions, one group per (sample, channel)
    kx = k.repeat_interleave(c, 0).view(n * c, 1, 1, size)
    ky = k.repeat_interleave(c, 0).view(n * c, 1, size, 1)
    pad = "reflect" if size // 2 < min(h, w) else "replicate"
    y = F.pad(x.float().reshape(1, n * c, h, w), (size // 2,) * 4, mode=pad)
    y = F.conv2d(F.conv2d(y, kx, groups=n * c), ky, groups=n * c)
    return y.view(n, c, h, w).clamp_(0, 1).to(x.dtype)


def simclr_view(x: torch.Tensor, *, generator: torch.Generator, crop_scale: tuple[float, float] = (0.2, 1.0),
                jitter: float = 0.4, blur_p: float = 0.0, hflip: bool = True, degrees: float = 0.0) -> torch.Tensor:
    """One SimCLR view: resized crop (+ mirror when ``hflip``), a rotation up to ``degrees`` when
    > 0, colour jitter (p 0.8), grayscale (p 0.2), blur (p ``blur_p``).

    Blur is off by default: SimCLR's CIFAR recipe drops it for small images. Mirroring and big
    crops suit photos and clothes; for digits and characters use :func:`gentle_view`.

    Args:
        x: (N, C, H, W) float in [0, 1].
    Returns:
        (N, C, H, W) float in [0, 1].
    """
    x = random_resized_crop(x, scale=crop_scale, hflip=hflip, generator=generator)
    if degrees > 0:
        x = random_rotate(x, degrees=degrees, generator=generator)
    x = color_jitter(x, brightness=jitter, contrast=jitter, saturation=jitter, hue=jitter / 4, generator=generator)
    x = random_grayscale(x, generator=generator)
    if blur_p > 0:
        x = gaussian_blur(x, p=blur_p, generator=generator)
    return x


def random_rotate(x: torch.Tensor, *, degrees: float, generator: torch.Generator) -> torch.Tensor:
    """Rotate each image about its centre by its own angle from [-degrees, degrees] (bilinear;
    corners shifted in take the border value, so no black wedges appear on light backgrounds).

    Args:
        x: (N, C, H, W) float in [0, 1].
    Returns:
        (N, C, H, W) float in [0, 1].
    """
    n, _, h, w = x.shape
    ang = _rand(n, -degrees, degrees, generator) * (math.pi / 180.0)
    cos, sin, a = torch.cos(ang), torch.sin(ang), h / w
    theta = torch.zeros(n, 2, 3, device=generator.device)
    theta[:, 0, 0], theta[:, 0, 1] = cos, sin * a
    theta[:, 1, 0], theta[:, 1, 1] = -sin / a, cos
    grid = F.affine_grid(theta.to(x.device, torch.float32), list(x.shape), align_corners=False)
    out = F.grid_sample(x.float(), grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out.clamp_(0.0, 1.0).to(x.dtype)


def gentle_view(x: torch.Tensor, *, generator: torch.Generator, crop_scale: tuple[float, float] = (0.5, 1.0),
                degrees: float = 15.0, jitter: float = 0.4) -> torch.Tensor:
    """A SimCLR view for tiny images whose orientation matters (digits, characters, icons):
    a milder crop (most of the glyph stays in view), a small rotation, no mirroring (a mirrored
    2 is no digit), brightness/contrast jitter, no blur.

    Args:
        x: (N, C, H, W) float in [0, 1].
    Returns:
        (N, C, H, W) float in [0, 1].
    """
    return simclr_view(x, generator=generator, crop_scale=crop_scale, jitter=jitter, hflip=False, degrees=degrees)


def mild_view(x: torch.Tensor, *, generator: torch.Generator, crop_scale: tuple[float, float] = (0.7, 1.0),
              jitter: float = 0.4) -> torch.Tensor:
    """A SimCLR view for small images whose silhouette is the class (Fashion-MNIST's clothes at
    28 px): a crop keeping 70-100 % of the area (a 20 % crop of a 28 px image is a 12 px patch
    that no longer shows what the object is), mirror, brightness/contrast jitter, no rotation,
    no blur.

    Args:
        x: (N, C, H, W) float in [0, 1].
    Returns:
        (N, C, H, W) float in [0, 1].
    """
    return simclr_view(x, generator=generator, crop_scale=crop_scale, jitter=jitter, hflip=True)


def rotate_all(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Every image at 0, 90, 180 and 270 degrees (RotNet).

    Args:
        x: (N, C, S, S) square images.
    Returns:
        (4N, C, S, S) rotated copies (block k holds rotation k·90°) and (4N,) int64 targets 0..3.
    """
    if x.shape[-1] != x.shape[-2]:
        raise ValueError(f"rotation prediction needs square images, got {tuple(x.shape[-2:])}")
    out = torch.cat([torch.rot90(x, k, dims=(2, 3)) for k in range(4)])
    targets = torch.arange(4, device=x.device).repeat_interleave(x.shape[0])
    return out, targets
