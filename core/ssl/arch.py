"""Architectures for self-supervised training, registered in ``core.features.archs.ARCHS``.

Importing this module is what makes ``convnet_small`` / ``resnet18_small`` checkpoints loadable
by the ``checkpoint`` backbone. :func:`choose_arch` picks an arch and input size for a dataset.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from core.errors import ParameterError
from core.features.archs import ARCHS, ArchSpec
from core.nn.convnet_backbone import ConvNetBackbone, resnet18_small

# [0, 1] pixels -> about [-1, 1]; BatchNorm after the first conv absorbs the rest.
SSL_MEAN = (0.5, 0.5, 0.5)
SSL_STD = (0.5, 0.5, 0.5)
SMALL_MAX = 64        # images up to this side go to the small ConvNet by default
MIN_SIZE = 8

if "convnet_small" not in ARCHS:   # why: idempotent under importlib.reload in tests
    ARCHS.add("convnet_small", ArchSpec(
        "convnet_small", "small ConvNet for 8-64 px images (4 conv stages, 0.4 M params at width 32)",
        lambda width=32: ConvNetBackbone(width), lambda width=32: 8 * width,
        mean=SSL_MEAN, std=SSL_STD, default_size=32))
if "resnet18_small" not in ARCHS:
    ARCHS.add("resnet18_small", ArchSpec(
        "resnet18_small", "ResNet-18 with a small-image stem (3x3 stride 1, no max-pool), 11 M params",
        lambda: resnet18_small(), lambda: 512, mean=SSL_MEAN, std=SSL_STD, default_size=64))

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
