"""Headless backbones for self-supervised training: normalised (N, 3, H, W) -> pooled (N, D).

- :class:`ConvNetBackbone`: a small VGG-style ConvNet for small images (8-64 px), cheap enough to
  train on a laptop CPU (about 10 M multiply-adds per 28 px image at width 32).
- :func:`resnet18_small`: torchvision ResNet-18 (random init) with a 3x3 stride-1 stem and no
  max-pool, the usual change for 32-96 px inputs, 512-d.
"""
from __future__ import annotations

import torch
from torch import nn


def _conv(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


class ConvNetBackbone(nn.Module):
    """Four conv stages of width w, 2w, 4w, 8w with 2x2 max-pooling between them, then global
    average pooling: D = 8w. Three poolings keep 8 px inputs at 1x1 before the global pool.

    ``forward``: (N, 3, H, W) float, H, W >= 8 -> (N, 8w).
    """

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        if width < 1:
            raise ValueError(f"width must be >= 1, got {width}")
        w = width
        self.dim = 8 * w
        self.features = nn.Sequential(
            *_conv(3, w),
            nn.MaxPool2d(2), *_conv(w, 2 * w),
            nn.MaxPool2d(2), *_conv(2 * w, 4 * w),
            nn.MaxPool2d(2), *_conv(4 * w, 8 * w),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


def resnet18_small() -> nn.Module:
    """ResNet-18, random init, small-image stem, headless: (N, 3, H, W) -> (N, 512)."""
    from torchvision.models import resnet18

    net = resnet18(weights=None)
    net.conv1 = nn.Conv2d(3, 64, 3, stride=1, padding=1, bias=False)
    net.maxpool = nn.Identity()   # why: a 4x downsampling stem leaves 32 px inputs at 1 px
    net.fc = nn.Identity()
    return net
