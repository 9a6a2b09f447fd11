"""Network architectures that map a normalised (N, 3, H, W) batch to pooled (N, D) features.

``ARCHS`` is the registry the pretrained backbones, the ``checkpoint`` backbone and the
self-supervised trainer share: a checkpoint names its arch, so adding an arch here (e.g. a small
ConvNet for SSL) makes its checkpoints loadable without touching the loader.
Every arch builds with random weights; pretrained weights are loaded by :mod:`backbones`.
"""
from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from core.registry import Registry

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# EfficientNet-Lite was trained on (pixels - 127) / 128; in [0, 1] units that is:
LITE_MEAN = (127 / 255,) * 3
LITE_STD = (128 / 255,) * 3

# Parameter-name prefixes of classifier heads: ignored when a full classifier state dict
# (e.g. torchvision's ImageNet weights) is loaded into the headless feature module.
HEAD_PREFIXES = ("fc.", "classifier.", "heads.", "net._fc.")


@dataclass(frozen=True)
class ArchSpec:
    """How to build one architecture (random init) and what its output looks like."""

    name: str
    description: str
    builder: Callable[..., nn.Module]       # **arch_params -> module (N,3,H,W) -> (N,D)
    dim: Callable[..., int]                 # **arch_params -> D
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    default_size: int = 224
    fixed_size: int | None = None           # the only input size the arch accepts (ViT)

    def build(self, **params: Any) -> nn.Module:
        return self.builder(**params)


ARCHS: Registry[ArchSpec] = Registry("architecture")
# Modules that register more archs when imported (the SSL ConvNets). Loaded on a miss, so a
# checkpoint trained by core.ssl loads in a process that never imported core.ssl.
ARCH_PLUGINS = ["core.ssl.arch"]


def get_arch(name: str) -> ArchSpec:
    """``ARCHS.get`` after importing :data:`ARCH_PLUGINS` if needed; unknown -> lists the names."""
    if name not in ARCHS:
        import importlib

        for mod in ARCH_PLUGINS:
            try:
                importlib.import_module(mod)
            except ImportError:
                pass
    return ARCHS.get(name)


def _torchvision(name: str, head: str) -> Callable[..., nn.Module]:
    """Builder for a torchvision model with its classifier replaced by Identity."""

    def build(**params: Any) -> nn.Module:
        import torchvision

        model = torchvision.models.get_model(name, weights=None, **params)
        if head == "classifier[-1]":   # convnext: keep LayerNorm2d + Flatten, drop the Linear
            model.classifier[-1] = nn.Identity()
        else:
            setattr(model, head, nn.Identity())
        return model

    return build


class LiteFeatures(nn.Module):
    """EfficientNet-Lite0 trunk + global average pool. ``self.net`` keeps the ImageNet classifier
    (``self.net(x)`` gives logits), ``forward`` returns the 1280-d pooled features."""

    def __init__(self) -> None:
        super().__init__()
        from efficientnet_lite_pytorch import EfficientNet

        with contextlib.redirect_stdout(io.StringIO()):   # the package prints on load
            self.net = EfficientNet.from_name("efficientnet-lite0")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.extract_features(x).mean((2, 3))


def _const(d: int) -> Callable[..., int]:
    return lambda **_: d


for _name, _head, _dim, _desc in [
    ("resnet18", "fc", 512, "ResNet-18 (11.7 M params)"),
    ("resnet50", "fc", 2048, "ResNet-50 (25.6 M params)"),
    ("efficientnet_b0", "classifier", 1280, "EfficientNet-B0 (5.3 M params)"),
    ("convnext_tiny", "classifier[-1]", 768, "ConvNeXt-Tiny (28.6 M params)"),
]:
    ARCHS.add(_name, ArchSpec(_name, _desc, _torchvision(_name, _head), _const(_dim)))
ARCHS.add("vit_b_16", ArchSpec("vit_b_16", "ViT-B/16 (86.6 M params), 224 px input only",
                               _torchvision("vit_b_16", "heads"), _const(768), fixed_size=224))
ARCHS.add("efficientnet_lite0", ArchSpec(
    "efficientnet_lite0", "EfficientNet-Lite0 (4.7 M params)", lambda **_: LiteFeatures(),
    _const(1280), mean=LITE_MEAN, std=LITE_STD))
