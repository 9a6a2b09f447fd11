"""SimCLR (Chen et al. 2020): two augmented views of each image are pulled together and pushed
away from every other image of the batch (NT-Xent), through a projection head that is thrown
away after training (the layer before it clusters better).

Views ("augment"): "standard" is SimCLR's recipe (big crops, mirror, colour jitter; blur from
64 px); "gentle" is for tiny images whose orientation matters, such as digits (milder crops, a
small rotation, no mirror); "auto" picks "gentle" for images up to ``GENTLE_MAX`` px (tiny array
datasets such as 8 x 8 digits) and "standard" otherwise.
"""
from __future__ import annotations

import torch
from torch import nn

from core.errors import ParameterError
from core.losses.ssl import nt_xent
from core.ssl.augment import gentle_view, simclr_view
from core.ssl.method import Method, MethodConfig, Normalise

PROJ_DIM = 128
GENTLE_MAX = 16
AUGMENTS = ("auto", "standard", "gentle")


class SimCLR(Method):
    name = "simclr"
    default_lr = 1e-3

    def __init__(self, cfg: MethodConfig) -> None:
        super().__init__(cfg)
        if cfg.augment not in AUGMENTS:
            raise ParameterError(f"unknown augment {cfg.augment!r}; choose one of: {', '.join(AUGMENTS)}")

    def make_head(self, dim: int) -> nn.Module:
        return nn.Sequential(nn.Linear(dim, dim), nn.BatchNorm1d(dim), nn.ReLU(inplace=True), nn.Linear(dim, PROJ_DIM))

    def view(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        aug = self.cfg.augment
        if aug == "auto":
            aug = "gentle" if x.shape[-1] <= GENTLE_MAX else "standard"
        if aug == "gentle":
            return gentle_view(x, generator=gen)
        blur = 0.5 if x.shape[-1] >= 64 else 0.0   # blur helps on photos, hurts on tiny images
        return simclr_view(x, generator=gen, blur_p=blur)

    def loss(self, backbone: nn.Module, head: nn.Module, x: torch.Tensor, idx: torch.Tensor,
             gen: torch.Generator, normalise: Normalise) -> torch.Tensor:
        v = torch.cat([self.view(x, gen), self.view(x, gen)])
        z = head(backbone(normalise(v)))   # one forward for both views: BatchNorm sees 2B samples
        z1, z2 = z.chunk(2)
        return nt_xent(z1, z2, self.cfg.temperature)
