"""SimCLR (Chen et al. 2020): two augmented views of each image are pulled together and pushed
away from every other image of the batch (NT-Xent), through a projection head.

Views ("augment"): "standard" is SimCLR's recipe (big crops, mirror, colour jitter; blur from
64 px); "gentle" is for tiny images whose orientation matters, such as digits (milder crops, a
small rotation, no mirror); "mild" is for small images whose silhouette is the class, such as
Fashion-MNIST (crops keeping 70-100 % of the area, mirror, no rotation). "auto" picks "gentle"
up to ``GENTLE_MAX`` px (8 x 8 digits are trained at 16), "mild" up to ``MILD_MAX`` px
(Fashion-MNIST's 28) and "standard" above.

Features ("feature"): what the saved checkpoint outputs. "backbone" (= "auto") is the layer
before the projection head; "projection" keeps the head and outputs its 128-d projection. On
Fashion-MNIST (mild views, 3 seeds) k-means scored the two alike on average (ACC 0.661 vs 0.660)
but the projection varied more between seeds (0.637-0.700 vs 0.657-0.663), so the backbone
stays the default (bench/RESULTS.md, "Self-supervised backbones").
"""
from __future__ import annotations

import torch
from torch import nn

from core.errors import ParameterError
from core.losses.ssl import nt_xent
from core.ssl.arch import PROJ_DIM, projection_head
from core.ssl.augment import gentle_view, mild_view, simclr_view
from core.ssl.method import Method, MethodConfig, Normalise

GENTLE_MAX = 16
MILD_MAX = 32
AUGMENTS = ("auto", "standard", "gentle", "mild")
FEATURES = ("auto", "backbone", "projection")


def auto_augment(side: int) -> str:
    """The views "auto" uses for ``side`` px training images."""
    return "gentle" if side <= GENTLE_MAX else "mild" if side <= MILD_MAX else "standard"


class SimCLR(Method):
    name = "simclr"
    default_lr = 1e-3

    def __init__(self, cfg: MethodConfig) -> None:
        super().__init__(cfg)
        if cfg.augment not in AUGMENTS:
            raise ParameterError(f"unknown augment {cfg.augment!r}; choose one of: {', '.join(AUGMENTS)}")
        if cfg.feature not in FEATURES:
            raise ParameterError(f"unknown feature {cfg.feature!r}; choose one of: {', '.join(FEATURES)}")

    def make_head(self, dim: int) -> nn.Module:
        return projection_head(dim, PROJ_DIM)

    def exports_projection(self) -> bool:
        return self.cfg.feature == "projection"   # "auto": the backbone (steadier over seeds)

    def view(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        aug = self.cfg.augment
        if aug == "auto":
            aug = auto_augment(x.shape[-1])
        if aug == "gentle":
            return gentle_view(x, generator=gen)
        if aug == "mild":
            return mild_view(x, generator=gen)
        blur = 0.5 if x.shape[-1] >= 64 else 0.0   # blur helps on photos, hurts on tiny images
        return simclr_view(x, generator=gen, blur_p=blur)

    def loss(self, backbone: nn.Module, head: nn.Module, x: torch.Tensor, idx: torch.Tensor,
             gen: torch.Generator, normalise: Normalise) -> torch.Tensor:
        v = torch.cat([self.view(x, gen), self.view(x, gen)])
        z = head(backbone(normalise(v)))   # one forward for both views: BatchNorm sees 2B samples
        z1, z2 = z.chunk(2)
        return nt_xent(z1, z2, self.cfg.temperature)
