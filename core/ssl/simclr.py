"""SimCLR (Chen et al. 2020): two augmented views of each image are pulled together and pushed
away from every other image of the batch (NT-Xent), through a projection head that is thrown
away after training (the layer before it clusters better)."""
from __future__ import annotations

import torch
from torch import nn

from core.losses.ssl import nt_xent
from core.ssl.augment import simclr_view
from core.ssl.method import Method, Normalise

PROJ_DIM = 128


class SimCLR(Method):
    name = "simclr"
    default_lr = 1e-3

    def make_head(self, dim: int) -> nn.Module:
        return nn.Sequential(nn.Linear(dim, dim), nn.BatchNorm1d(dim), nn.ReLU(inplace=True), nn.Linear(dim, PROJ_DIM))

    def loss(self, backbone: nn.Module, head: nn.Module, x: torch.Tensor, idx: torch.Tensor,
             gen: torch.Generator, normalise: Normalise) -> torch.Tensor:
        blur = 0.5 if x.shape[-1] >= 64 else 0.0   # blur helps on photos, hurts on tiny images
        v = torch.cat([simclr_view(x, generator=gen, blur_p=blur), simclr_view(x, generator=gen, blur_p=blur)])
        z = head(backbone(normalise(v)))   # one forward for both views: BatchNorm sees 2B samples
        z1, z2 = z.chunk(2)
        return nt_xent(z1, z2, self.cfg.temperature)
