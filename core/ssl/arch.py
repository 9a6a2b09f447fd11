"""Architectures for self-supervised training, registered in ``core.features.archs.ARCHS``.

Importing this module is what makes ``convnet_small`` / ``resnet18_small`` checkpoints loadable
by the ``checkpoint`` backbone. :func:`choose_arch` picks an arch and input size for a dataset.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from core.errors import ParameterError
from core.features.archs import ARCHS, ArchSpec
from core.nn.convnet_backbone import ConvNetBackbone, resnet18_small

# [0, 1] pixels -> about [-1, 1]; BatchNorm after the first conv absorbs the rest.
SSL_MEAN = (0.5, 0.5, 0.5)
SSL_STD = (0.5, 0.5, 0.5)
SMALL_MAX = 64        # images up to this side go to the small ConvNet by default
MIN_SIZE = 8
PROJ_DIM = 128        # SimCLR's projection size


def projection_head(dim: int, out: int = PROJ_DIM) -> nn.Sequential:
    """SimCLR's projection MLP: (N, dim) -> (N, out), Linear-BN-ReLU-Linear."""
    return nn.Sequential(nn.Linear(dim, dim), nn.BatchNorm1d(dim), nn.ReLU(inplace=True), nn.Linear(dim, out))


class Projected(nn.Module):
    """A backbone followed by its trained projection head, saved as one feature extractor when
    the projection's output clusters better than the backbone's (``feature="projection"``).

    ``forward``: (N, 3, H, W) -> (N, proj_dim).
    """

    def __init__(self, encoder: nn.Module, proj: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.proj = proj

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.encoder(x))


def _convnet(width: int = 32, proj_dim: int = 0) -> nn.Module:
    net = ConvNetBackbone(width)
    return Projected(net, projection_head(8 * width, proj_dim)) if proj_dim else net


def _resnet(proj_dim: int = 0) -> nn.Module:
    net = resnet18_small()
    return Projected(net, projection_head(512, proj_dim)) if proj_dim else net


if "convnet_small" not in ARCHS:   # why: idempotent under importlib.reload in tests
    ARCHS.add("convnet_small", ArchSpec(
        "convnet_small", "small ConvNet for 8-64 px images (4 conv stages, 0.4 M params at width 32)",
        _convnet, lambda width=32, proj_dim=0: proj_dim or 8 * width,
        mean=SSL_MEAN, std=SSL_STD, default_size=32))
if "resnet18_small" not in ARCHS:
    ARCHS.add("resnet18_small", ArchSpec(
        "resnet18_small", "ResNet-18 with a small-image stem (3x3 stride 1, no max-pool), 11 M params",
        _resnet, lambda proj_dim=0: proj_dim or 512, mean=SSL_MEAN, std=SSL_STD, default_size=64))

TRAINABLE = ("auto", "convnet_small", "resnet18_small")


@dataclass(frozen=True)
class ArchChoice:
    arch: str
    params: dict[str, Any]
    image_size: int


def choose_arch(arch: str, native: np.ndarray | None, image_size: int | None) -> ArchChoice:
    """"auto": the ConvNet at the native size (at least 16 px) for small array datasets, else
    ResNet-18 at 64 px. An explicit arch keeps its default size unless ``image_size`` is given."""
    if image_size is not None and not MIN_SIZE <= image_size <= 512:
        raise ParameterError(f"image_size must be between {MIN_SIZE} and 512 pixels, got {image_size}")
    side = None if native is None else int(min(native.shape[1:3]))
    if arch == "auto":
        arch = "convnet_small" if side is not None and side <= SMALL_MAX else "resnet18_small"
    spec = ARCHS.get(arch)   # unknown name: fails listing every arch
    if image_size is None:
        image_size = max(16, side) if arch == "convnet_small" and side is not None else spec.default_size
    return ArchChoice(arch, {}, int(image_size))
